// A small btrfs file system on a loop device, for the backup test: docs/operations.md's
// procedure takes a read-only snapshot of the subvolume holding DATA_DIR while the gateway runs.
// Needs root and btrfs-progs (CI runs the tests as root); unmount() is registered as cleanup by
// the caller.
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface BtrfsVolume {
  /** Where the file system is mounted. */
  dir: string
  /** Creates a subvolume `name` under the mount point; returns its path. */
  subvolume: (name: string) => Promise<string>
  /** `btrfs subvolume snapshot -r src dst` (one instant, whole subvolume). */
  snapshot: (src: string, dst: string) => Promise<void>
  /** `btrfs subvolume delete path`. */
  deleteSubvolume: (path: string) => Promise<void>
  unmount: () => Promise<void>
}

export async function mountBtrfs (sizeBytes = 256 * 1024 * 1024): Promise<BtrfsVolume> {
  const base = await mkdtemp(join(tmpdir(), 'ambulink-btrfs-'))
  const image = join(base, 'volume.img')
  const dir = join(base, 'mnt')
  await mkdir(dir)
  await writeFile(image, '')
  await truncate(image, sizeBytes) // sparse: takes only what btrfs writes
  await run('mkfs.btrfs', ['-q', '-f', image])
  await run('mount', ['-o', 'loop', image, dir])
  let mounted = true
  return {
    dir,
    subvolume: async name => {
      const p = join(dir, name)
      await run('btrfs', ['subvolume', 'create', p])
      return p
    },
    snapshot: async (src, dst) => { await run('btrfs', ['subvolume', 'snapshot', '-r', src, dst]) },
    deleteSubvolume: async p => { await run('btrfs', ['subvolume', 'delete', p]) },
    unmount: async () => {
      if (mounted) {
        mounted = false
        await run('umount', [dir])
      }
      await rm(base, { recursive: true, force: true })
    }
  }
}
