// The spool when the disk misbehaves: a full disk (a real ENOSPC on a small tmpfs), a write error,
// a failed rotation, a corrupt record, a record larger than one read, and close() called twice.
// Whatever happens, an append that resolved is on disk, one that rejected is not counted, and the
// spool takes appends again by itself once the disk does.
import { mkdir, mkdtemp, open, readdir, rm, rmdir, stat } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { once } from 'node:events'
import { EventEmitter } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Spool, type SpoolOptions } from '../streams/storage/spool.js'
import type { StreamError } from '../streams/storage/errors.js'
import { mountTmpfs } from '../testkit/tmpfs.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })
async function tempDir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ambulink-spool-faults-'))
  cleanups.push(() => rm(d, { recursive: true, force: true }))
  return d
}

/** Opens a spool whose fault events are also emitted on `events` (to wait on, never sleep). */
async function openSpool (o: Partial<SpoolOptions> & { dir: string }): Promise<{ s: Spool, events: EventEmitter, refused: string[] }> {
  const events = new EventEmitter()
  const refused: string[] = []
  const s = await Spool.open({
    recoverIntervalMs: 20,
    ...o,
    onFault: err => { events.emit(err === null ? 'recovered' : 'fault', err) },
    onRefused: code => { refused.push(code) },
    onRotateFailed: err => { events.emit('rotate-failed', err) }
  })
  cleanups.push(() => s.close())
  return { s, events, refused }
}

async function readAll (s: Spool, commit = true): Promise<string[]> {
  const out: string[] = []
  for (;;) {
    const b = await s.read(64 * 1024)
    if (b === null) return out
    out.push(...b.data.toString().split('\n').filter(Boolean))
    if (commit) await s.commit(b.end)
  }
}

const line = (i: number, pad = 0): string => `m v=${i} ${i}`.padEnd(pad, ' ') + '\n'

describe('spool faults', () => {
  it('full disk: refuses with AMB_ERR_DISK_FULL without counting the bytes, then resumes by itself when space returns; every acknowledged record is kept', async () => {
    const fs = await mountTmpfs(4 * 1024 * 1024)
    cleanups.push(() => fs.unmount())
    const dir = join(fs.dir, 'spool')
    const { s, events, refused } = await openSpool({ dir, segmentBytes: 256 * 1024, maxSpoolBytes: 1 << 30, probeBytes: 64 * 1024 })
    await fs.fill(300 * 1024)
    const acked: number[] = []
    let i = 0
    let failure = null as StreamError | null
    const faulted = once(events, 'fault')
    // Appends in groups (group commit), until the disk refuses.
    while (failure === null && i < 10_000) {
      const batch = Array.from({ length: 8 }, () => i++)
      const results = await Promise.allSettled(batch.map(n => s.append(line(n, 4000), 1)))
      results.forEach((r, k) => {
        if (r.status === 'fulfilled') acked.push(batch[k]!)
        else failure ??= r.reason as StreamError
      })
    }
    await faulted
    expect(failure?.code).toBe('AMB_ERR_DISK_FULL')
    expect(s.faulted?.code).toBe('AMB_ERR_DISK_FULL')
    expect(acked.length).toBeGreaterThan(10)
    // Bytes counted are exactly the acknowledged records' (a failed append counts nothing).
    expect(s.bytes).toBe(acked.length * (20 + 4001))
    // While full, every append is refused at once, and counted.
    await expect(s.append(line(-1), 1)).rejects.toMatchObject({ code: 'AMB_ERR_DISK_FULL' })
    expect(refused.filter(c => c === 'AMB_ERR_DISK_FULL').length).toBeGreaterThanOrEqual(2)

    const recovered = once(events, 'recovered')
    await fs.free()
    await recovered
    expect(s.faulted).toBeNull()
    for (let k = 0; k < 20; k++) {
      await s.append(line(i, 4000), 1)
      acked.push(i++)
    }
    const expected = acked.map(n => line(n, 4000).trim())
    expect((await readAll(s, false)).map(l => l.trim())).toEqual(expected)
    // And after a restart, from disk alone.
    await s.close()
    const again = await Spool.open({ dir, segmentBytes: 256 * 1024, maxSpoolBytes: 1 << 30 })
    cleanups.push(() => again.close())
    expect((await readAll(again, false)).map(l => l.trim())).toEqual(expected)
  }, 60_000)

  it('the disk filling up under a committing reader does not stop the trim that frees it', async () => {
    const fs = await mountTmpfs(4 * 1024 * 1024)
    cleanups.push(() => fs.unmount())
    const dir = join(fs.dir, 'spool')
    const { s, events } = await openSpool({ dir, segmentBytes: 64 * 1024, maxSpoolBytes: 1 << 30, probeBytes: 64 * 1024 })
    const faulted = once(events, 'fault')
    let i = 0
    // No filler: the spool itself fills the disk.
    for (;;) {
      try { await s.append(line(i, 4000), 1) } catch { break }
      i++
    }
    await faulted
    // The reader (the sink, once InfluxDB acknowledged) commits everything: the cursor file may
    // not fit, but the segments are trimmed, which is what frees the disk.
    const recovered = once(events, 'recovered')
    const got = await readAll(s)
    expect(got).toHaveLength(i)
    await recovered
    await s.append(line(i, 4000), 1)
    expect((await readAll(s)).map(l => l.trim())).toEqual([line(i, 4000).trim()])
  }, 60_000)

  it('write error (EIO): refuses with AMB_ERR_SPOOL_IO, loses nothing acknowledged, recovers in a fresh segment', async () => {
    const dir = await tempDir()
    let failNext = false
    // A real disk cannot be made to return EIO on demand: wrap the real file handle and fail
    // one fdatasync of a segment, as a failing device would.
    const openFile = (async (path: string, flags?: string | number, mode?: number) => {
      const fh = await open(path, flags, mode)
      if (!path.endsWith('.log')) return fh
      return new Proxy(fh, {
        get (target, prop) {
          if (prop === 'datasync') {
            return async () => {
              if (failNext) {
                failNext = false
                throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })
              }
              return await target.datasync()
            }
          }
          const v = Reflect.get(target, prop, target) as unknown
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
        }
      }) as FileHandle
    }) as unknown as typeof open
    const { s, events, refused } = await openSpool({ dir, openFile })
    for (let i = 0; i < 10; i++) await s.append(line(i), 1)
    const before = s.bytes
    failNext = true
    const faulted = once(events, 'fault')
    await expect(s.append(line(10), 1)).rejects.toMatchObject({ code: 'AMB_ERR_SPOOL_IO' })
    await faulted
    expect(s.bytes).toBe(before)
    expect(refused).toContain('AMB_ERR_SPOOL_IO')
    const recovered = once(events, 'recovered')
    await recovered
    await s.append(line(11), 1)
    expect(await readAll(s, false)).toEqual([...Array.from({ length: 10 }, (_, i) => line(i).trim()), line(11).trim()])
    expect((await readdir(dir)).filter(f => f.endsWith('.log')).length).toBe(2)
  })

  it('a failed rotation is no unhandled rejection: the segment keeps taking appends and the next rotation works', async () => {
    const dir = await tempDir()
    const { s, events } = await openSpool({ dir, segmentBytes: 4096 })
    // A folder where the next segment file should go makes its open fail (EISDIR).
    const blocker = join(dir, 'seg-000000000002.log')
    await mkdir(blocker)
    const failedRotation = once(events, 'rotate-failed')
    for (let i = 0; i < 60; i++) await s.append(line(i, 100), 1)
    const [err] = await failedRotation as [Error]
    expect((err as NodeJS.ErrnoException).code).toBe('EISDIR')
    expect(s.rotationsFailed).toBeGreaterThan(0)
    expect(s.faulted).toBeNull()
    await rmdir(blocker)
    for (let i = 60; i < 120; i++) await s.append(line(i, 100), 1)
    expect((await readdir(dir)).filter(f => f.endsWith('.log')).length).toBeGreaterThan(1)
    expect((await readAll(s)).map(l => l.trim())).toEqual(Array.from({ length: 120 }, (_, i) => line(i, 100).trim()))
  })

  it('a corrupt record is reported (AMB_ERR_SPOOL_CORRUPT), never handed out, and the records before it are', async () => {
    const dir = await tempDir()
    let s = await Spool.open({ dir, segmentBytes: 4096 })
    for (let i = 0; i < 100; i++) await s.append(line(i, 100), 1)
    await s.close()
    // Flip a byte inside the fifth record's payload of the first (finished) segment.
    const seg = join(dir, 'seg-000000000001.log')
    expect((await stat(seg)).size).toBeGreaterThan(5 * 121)
    const fh = await open(seg, 'r+')
    await fh.write(Buffer.from('X'), 0, 1, 4 * 121 + 20 + 50)
    await fh.close()
    s = await Spool.open({ dir, segmentBytes: 4096 })
    cleanups.push(() => s.close())
    const first = await s.read(4 * 101)
    expect(first!.data.toString().split('\n').filter(Boolean).map(l => l.trim())).toEqual([0, 1, 2, 3].map(i => line(i, 100).trim()))
    await expect(s.read(64 * 1024)).rejects.toMatchObject({ code: 'AMB_ERR_SPOOL_CORRUPT' })
  })

  it('reads a record larger than one read whole, after the small ones, and checks its checksum', async () => {
    const dir = await tempDir()
    const { s } = await openSpool({ dir })
    for (let i = 0; i < 3; i++) await s.append(line(i), 1)
    const big = 'b'.repeat(300 * 1024) + '\n'
    await s.append(big, 7)
    await s.append(line(3), 1)
    // A read of at most 1 KB still returns the 300 KB record whole (after the small ones).
    const a = await s.read(1024)
    expect(a!.records).toBe(4)
    expect(a!.points).toBe(10)
    expect(a!.data.toString()).toBe(line(0) + line(1) + line(2) + big)
    const c = await s.read(1024)
    expect(c!.data.toString()).toBe(line(3))
    // The same record corrupted on disk is refused, not handed out.
    await s.close()
    const fh = await open(join(dir, 'seg-000000000001.log'), 'r+')
    await fh.write(Buffer.from('X'), 0, 1, 3 * 28 + 20 + 1000)
    await fh.close()
    const again = await Spool.open({ dir })
    cleanups.push(() => again.close())
    await expect(again.read(1024)).rejects.toMatchObject({ code: 'AMB_ERR_SPOOL_CORRUPT' })
  })

  it('close() called twice while the first runs waits for the first', async () => {
    const dir = await tempDir()
    const s = await Spool.open({ dir })
    const pending = Array.from({ length: 50 }, (_, i) => s.append(line(i), 1))
    const order: string[] = []
    const first = s.close().then(() => { order.push('first') })
    await s.close()
    order.push('second')
    await first
    expect(order).toEqual(['first', 'second'])
    // Every append that was in flight when close began completed.
    await Promise.all(pending)
    await expect(s.append(line(99), 1)).rejects.toMatchObject({ code: 'AMB_ERR_SPOOL_CLOSED' })
  })
})
