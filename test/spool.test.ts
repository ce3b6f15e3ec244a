// The spool on a real file system: group commit, ordered reads, commit and trim, the bound, and
// recovery from a torn record after a crash.
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Spool } from '../streams/storage/spool.js'

const dirs: string[] = []
afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }) })
async function tempDir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ambulink-spool-'))
  dirs.push(d)
  return d
}

async function readAll (s: Spool): Promise<string> {
  let out = ''
  for (;;) {
    const b = await s.read(64 * 1024)
    if (b === null) return out
    out += b.data.toString()
    await s.commit(b.end)
  }
}

describe('Spool', () => {
  it('covers many concurrent appends with few fsyncs (group commit) and reads them back in order', async () => {
    const s = await Spool.open({ dir: await tempDir() })
    const n = 2000
    await Promise.all(Array.from({ length: n }, (_, i) => s.append(`m v=${i} ${i}\n`, 1)))
    expect(s.appends).toBe(n)
    expect(s.fsyncs).toBeGreaterThan(0)
    expect(s.fsyncs).toBeLessThan(n / 10)
    const text = await readAll(s)
    expect(text.split('\n').filter(Boolean)).toEqual(Array.from({ length: n }, (_, i) => `m v=${i} ${i}`))
    await s.close()
    await s.close() // twice is safe
  })

  it('rotates segments, trims them only once committed, and resumes from the cursor after reopening', async () => {
    const dir = await tempDir()
    let s = await Spool.open({ dir, segmentBytes: 4096 })
    for (let i = 0; i < 200; i++) await s.append(`m v=${i} ${i}\n`.padEnd(60, ' ') + '\n', 1)
    expect((await readdir(dir)).filter(f => f.startsWith('seg-')).length).toBeGreaterThan(2)
    // Read half, acknowledge half.
    const b = await s.read(100 * 61, 100)
    expect(b!.records).toBe(100)
    await s.commit(b!.end)
    const segsAfter = (await readdir(dir)).filter(f => f.startsWith('seg-')).length
    expect(segsAfter).toBeLessThan(Math.ceil(200 * 81 / 4096) + 1)
    // Read more without committing, then "crash": the uncommitted part is read again.
    expect(await s.read(10 * 81)).not.toBeNull()
    await s.close()
    s = await Spool.open({ dir, segmentBytes: 4096 })
    const rest = (await readAll(s)).split('\n').filter(l => l.startsWith('m'))
    expect(rest).toHaveLength(100)
    expect(rest[0]).toMatch(/^m v=100 100/)
    await s.close()
  })

  it('refuses appends beyond maxSpoolBytes with AMB_ERR_SPOOL_FULL, and reports pressure first', async () => {
    const events: boolean[] = []
    const s = await Spool.open({ dir: await tempDir(), maxSpoolBytes: 10_000, onPressure: high => { events.push(high) } })
    const rec = 'x'.repeat(980)
    // 980 bytes + a 20-byte header: ten records fill the bound exactly, the eleventh is refused.
    for (let i = 0; i < 11; i++) {
      if (i < 10) await s.append(rec, 1)
      else await expect(s.append(rec, 1)).rejects.toMatchObject({ code: 'AMB_ERR_SPOOL_FULL' })
    }
    expect(events).toEqual([true])
    // Draining makes room again.
    const b = await s.read(1e6)
    await s.commit(b!.end)
    await s.append(rec, 1)
    await s.close()
  })

  it('after a crash mid-write, truncates the torn record and keeps every whole one', async () => {
    const dir = await tempDir()
    const s = await Spool.open({ dir })
    for (let i = 0; i < 50; i++) await s.append(`m v=${i} ${i}\n`, 1)
    await s.close()
    const seg = join(dir, (await readdir(dir)).find(f => f.startsWith('seg-'))!)
    const whole = (await stat(seg)).size
    // A torn tail: a header promising 500 bytes followed by only a few.
    const fh = await open(seg, 'a')
    const torn = Buffer.alloc(30)
    torn.writeUInt32LE(500, 0)
    await fh.write(torn)
    await fh.close()
    const again = await Spool.open({ dir })
    expect((await stat(seg)).size).toBe(whole)
    await again.append('m v=50 50\n', 1)
    const lines = (await readAll(again)).split('\n').filter(Boolean)
    expect(lines).toHaveLength(51)
    expect(lines[50]).toBe('m v=50 50')
    await again.close()
  })

  it('reports lag as the age of the oldest unacknowledged record', async () => {
    let now = 1_000_000
    const s = await Spool.open({ dir: await tempDir(), now: () => now })
    expect(await s.lagSeconds()).toBe(0)
    await s.append('m v=1 1\n', 1)
    now += 4500
    await s.append('m v=2 2\n', 1)
    expect(await s.lagSeconds()).toBe(4.5)
    const b = await s.read(1e6)
    await s.commit(b!.end)
    expect(await s.lagSeconds()).toBe(0)
    await s.close()
  })
})
