// A small tmpfs for full-disk tests: a real ENOSPC, far below the spool's own bound. Mounting
// needs root (CI runs the tests as root); unmount() is registered as cleanup by the caller.
import { execFile } from 'node:child_process'
import { mkdtemp, open, rm, statfs, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface Tmpfs {
  dir: string
  /** Fills the file system with a filler file until only about `leaveBytes` remain free. */
  fill: (leaveBytes: number) => Promise<void>
  /** Deletes the filler: the space returns. */
  free: () => Promise<void>
  /** Bytes free now. */
  available: () => Promise<number>
  unmount: () => Promise<void>
}

export async function mountTmpfs (sizeBytes: number): Promise<Tmpfs> {
  const dir = await mkdtemp(join(tmpdir(), 'ambulink-tmpfs-'))
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', dir])
  const filler = join(dir, 'filler.bin')
  let mounted = true
  const available = async (): Promise<number> => {
    const s = await statfs(dir)
    return s.bavail * s.bsize
  }
  return {
    dir,
    available,
    fill: async leaveBytes => {
      const fh = await open(filler, 'a')
      try {
        const chunk = Buffer.alloc(64 * 1024)
        for (;;) {
          const room = await available() - leaveBytes
          if (room <= 0) break
          await fh.write(chunk, 0, Math.min(chunk.length, room))
        }
        await fh.sync()
      } finally {
        await fh.close()
      }
    },
    free: async () => { await unlink(filler).catch(() => {}) },
    unmount: async () => {
      if (!mounted) return
      mounted = false
      await run('umount', ['-l', dir]).catch(() => {})
      await rm(dir, { recursive: true, force: true })
    }
  }
}
