// Crash safety (issue #3, item 1): the real gateway process is SIGKILLed at every kind of moment
// (outside kill mid-batch; inside crash points: fsync in flight, InfluxDB write in flight,
// written but cursor not moved, segment rotation) while
// persistent-session QoS 1 devices stream, and restarted on the same DATA_DIR and ports. Every
// acknowledged frame must be in InfluxDB exactly once. The long run is `loadtest/crash.ts`
// (which also kills at 'spool-durable' and 'spool-commit', left out here: each kill costs a
// gateway start, ~2-3 s).
import { readdir, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { crashSteps, runCrash } from '../loadtest/crash.js'
import { Spool } from '../streams/storage/spool.js'
import { makeTempDir, removeTempDir } from '../testkit/proc.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'

describe('gateway crash safety', () => {
  let influx: InfluxServer
  beforeAll(async () => { influx = await startInfluxDB() })
  afterAll(async () => { await influx?.stop() })

  it('keeps every acknowledged frame exactly once across SIGKILLs at every stage', async () => {
    const r = await runCrash({ influxUrl: influx.url, db: 'crash', units: 3, frameMs: 50, steps: crashSteps(1).filter(s => s.kind === 'signal' || (s.point !== 'spool-durable' && s.point !== 'spool-commit')), settleMs: 1000, pointTimeoutMs: 8000 })
    // Every run really died by SIGKILL, at its crash point or from outside.
    expect(r.runs.map(x => x.signal)).toEqual(r.runs.map(() => 'SIGKILL'))
    expect(r.framesAcked).toBeGreaterThan(300)
    expect(r.framesAcked).toBe(r.framesGenerated)
    for (const u of r.units) {
      // Nothing acknowledged is missing, nothing is stored twice or without its frame.
      expect(u.ackedSeqRanges).toHaveLength(1)
      expect(u.stored).toEqual(u.acked)
    }
    expect(r.lost).toBe(0)
    expect(r.extra).toBe(0)
    expect(r.pointsStored).toBe(r.pointsAcked)
    // A correctness test, not a timing one: each of its gateway restarts takes seconds on an idle
    // machine and tens of seconds on a loaded one, so its bound is generous.
  }, 240_000)
})

describe('spool recovery after a crash during segment rotation', () => {
  // A SIGKILL can cut a large write short (Linux stops copying pages once a fatal signal is
  // pending). During a rotation the segment being flushed is not the newest one, so its torn
  // tail must be found too: seen in loadtest/crash.ts as a sink that re-read a 12-byte remnant
  // for ever (spool never drained).
  for (const [cut, fromEnd] of [[7, 2], [30, 2], [7, 3], [30, 3]] as const) {
    it(`reads every whole record past a torn tail (${cut} bytes left of a record) in the ${fromEnd === 2 ? 'segment before the newest (trimmed at open)' : 'an older segment (skipped by read)'}`, async () => {
      const dir = await makeTempDir('ambulink-spool-torn-')
      try {
        const line = (i: number): string => `m,unit=u v=${i} ${1_000_000 + i}`.padEnd(899, ' ') + '\n'
        let spool = await Spool.open({ dir, segmentBytes: 4096, maxSpoolBytes: 1 << 20 })
        for (let i = 0; i < 12; i++) await spool.append(line(i), 1)
        await spool.close()
        const segs = (await readdir(dir)).filter(n => n.startsWith('seg-')).sort()
        expect(segs.length).toBeGreaterThanOrEqual(3)
        // Tear the last record of a finished segment, as an interrupted writev would.
        const victim = join(dir, segs[segs.length - fromEnd]!)
        const size = (await stat(victim)).size
        await truncate(victim, size - (20 + 900) + cut)
        spool = await Spool.open({ dir, segmentBytes: 4096, maxSpoolBytes: 1 << 20 })
        await spool.append(line(99), 1)
        let text = ''
        for (let i = 0; i < 50; i++) {
          const b = await spool.read(1 << 20)
          if (b === null) break
          text += b.data.toString()
        }
        await spool.close()
        const values = text.split('\n').filter(l => l.startsWith('m,')).map(l => Number(/v=(\d+)/.exec(l)![1]))
        // Every whole record in order, then the new one; only the torn record (never
        // acknowledged: its fsync had not returned) is missing.
        expect(values.at(-1)).toBe(99)
        const old = values.slice(0, -1)
        expect(old).toEqual([...Array(12).keys()].filter(i => old.includes(i)))
        expect(old.length).toBe(11)
      } finally {
        await removeTempDir(dir)
      }
    })
  }
})
