/**
 * The one durable-file layer: every file Ambulink rewrites (credentials, the spool's cursor, the
 * alert journal, the audit head, dataspace keys) goes through here, so a power cut leaves either
 * the old file or the new one, never a torn or empty one.
 *
 * - writeFileAtomic: write a temp file, fsync it, rename it over the target, fsync the folder
 *   (the rename is only durable once the directory entry is on disk).
 * - syncDir: fsync a folder after creating, renaming or deleting in it.
 * - withFileLock: a cross-process lock file holding its owner's pid; a lock left by a process
 *   that died (kill -9, power cut) is recovered instead of blocking everyone for good.
 */
import { randomBytes } from 'node:crypto'
import { constants as fsc } from 'node:fs'
import { open, readFile, rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { catalogue, CodedError, createError, type ErrorDefinition } from '../../decoders/index.js'

/** fsyncs a folder so entries created, renamed or removed in it survive a power cut. */
export async function syncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } catch (err) {
    // Some file systems cannot fsync a directory (EINVAL); the data itself was already synced.
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err
  } finally {
    await fh.close()
  }
}

export interface AtomicWriteOptions {
  /** File mode of a new file (default 0o600: Ambulink's files are not for other users). */
  mode?: number
  /** Skip the directory fsync (the caller syncs the folder once after several renames). */
  noDirSync?: boolean
}

/**
 * Replaces `path` with `data` atomically and durably. The temp name is unique per call, so two
 * writers never share a temp file; on failure the temp file is removed and `path` is untouched.
 */
export async function writeFileAtomic (path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  let renamed = false
  try {
    const fh = await open(tmp, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, options.mode ?? 0o600)
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
    renamed = true
    if (options.noDirSync !== true) await syncDir(dirname(path))
  } finally {
    if (!renamed) await unlink(tmp).catch(() => {})
  }
}

export type DurableErrorCode = 'AMB_ERR_LOCK_TIMEOUT'

export const DURABLE_ERRORS: Readonly<Record<DurableErrorCode, ErrorDefinition<DurableErrorCode>>> = catalogue<DurableErrorCode>(
  createError('AMB_ERR_LOCK_TIMEOUT', 'a lock file (credentials, audit log) stayed held by a live process for longer than the wait allows', 503)
)

export class LockTimeoutError extends CodedError<DurableErrorCode> {
  override readonly name = 'LockTimeoutError'
  constructor (readonly path: string, readonly owner: number | null, waitedMs: number) {
    super(DURABLE_ERRORS.AMB_ERR_LOCK_TIMEOUT, `lock ${path} held for more than ${waitedMs} ms by ${owner === null ? 'an unknown process' : `pid ${owner}`}`)
  }
}

export interface LockOptions {
  /** Give up after this long, in ms (default 10 s). */
  timeoutMs?: number
  /** Pause between attempts while a live process holds the lock, in ms (default 20). */
  retryMs?: number
}

/** True when `pid` names a running process (EPERM: it runs, under another user). */
export function processAlive (pid: number): boolean {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Runs `fn` holding the lock file `path` (created with O_EXCL, holding this process' pid), then
 * removes it. A lock whose pid is no longer running is stale and is removed. A lock with no
 * readable pid (its owner died between create and write) counts as stale once it is older than
 * the timeout. Two processes breaking the same stale lock in the same millisecond is the one
 * race left; the lock serialises short CLI and gateway writes, where that is acceptable.
 */
export async function withFileLock<T> (path: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000
  const retryMs = options.retryMs ?? 20
  const started = Date.now()
  let unknownSince: number | null = null
  for (;;) {
    try {
      const fh = await open(path, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600)
      try {
        await fh.writeFile(`${process.pid}\n`)
      } finally {
        await fh.close()
      }
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const text = await readFile(path, 'utf8').catch(() => null)
    if (text === null) continue // released between our open and our read: try again at once
    const owner = Number.parseInt(text, 10)
    if (Number.isInteger(owner) && owner > 0) {
      unknownSince = null
      if (!processAlive(owner)) {
        await unlink(path).catch(() => {})
        continue
      }
    } else {
      unknownSince ??= Date.now()
      if (Date.now() - unknownSince > timeoutMs) {
        await unlink(path).catch(() => {})
        continue
      }
    }
    if (Date.now() - started > timeoutMs) throw new LockTimeoutError(path, Number.isInteger(owner) ? owner : null, timeoutMs)
    await new Promise(resolve => setTimeout(resolve, retryMs))
  }
  try {
    return await fn()
  } finally {
    await unlink(path).catch(() => {})
  }
}
