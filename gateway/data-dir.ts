/**
 * DATA_DIR holds patient data (spool, dead letters, alert journal, dataspace) and secrets
 * (credentials, keys). At start every directory under it is made 0700 and every file 0600,
 * whatever modes an older version, a restore or an operator's `cp -r` left (issue #10, item 15);
 * what was fixed is logged as counts per top-level folder, never as file names (which may carry
 * identifiers). The process umask becomes 077, so files and folders created later are
 * owner-only too, whichever module creates them.
 *
 * Symbolic links are not followed: a link (the shared credentials.json of a cluster) points at
 * storage that its owner secures.
 */
import { chmod, lstat, mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'

export const DIR_MODE = 0o700
export const FILE_MODE = 0o600

export interface DataDirReport {
  /** Entries whose mode was changed, by top-level name under DATA_DIR ('.' = DATA_DIR itself). */
  fixed: Record<string, number>
  /** Entries whose mode could not be changed (not ours), by top-level name. */
  failed: Record<string, number>
}

/** Creates DATA_DIR if needed and enforces 0700 / 0600 below it; returns what it changed. */
export async function secureDataDir (dataDir: string, log?: Logger): Promise<DataDirReport> {
  try {
    process.umask(0o077)
  } catch {
    // Worker threads may not change the umask; the modes passed at creation still apply.
  }
  await mkdir(dataDir, { recursive: true, mode: DIR_MODE })
  const report: DataDirReport = { fixed: {}, failed: {} }
  const bump = (m: Record<string, number>, top: string): void => { m[top] = (m[top] ?? 0) + 1 }

  const visit = async (path: string, top: string): Promise<void> => {
    let st
    try {
      st = await lstat(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return // removed meanwhile
      throw err
    }
    if (st.isSymbolicLink()) return
    const want = st.isDirectory() ? DIR_MODE : FILE_MODE
    if ((st.mode & 0o7777) !== want) {
      try {
        await chmod(path, want)
        bump(report.fixed, top)
      } catch {
        bump(report.failed, top)
      }
    }
    if (!st.isDirectory()) return
    for (const name of await readdir(path)) await visit(join(path, name), top === '.' ? name : top)
  }
  await visit(dataDir, '.')

  if (Object.keys(report.fixed).length > 0) {
    log?.warn({ fixed: report.fixed, dirMode: '0700', fileMode: '0600' }, 'DATA_DIR had entries readable by others: modes fixed')
  }
  if (Object.keys(report.failed).length > 0) {
    log?.error({ failed: report.failed }, 'DATA_DIR has entries whose mode could not be fixed (owned by another user?)')
  }
  return report
}
