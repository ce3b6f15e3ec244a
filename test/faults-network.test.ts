// Bad networks (issue #3, item 4), short version of `loadtest/impaired.ts` (2 min): 4 units stream
// for 15 s through the impairment proxy (60-120 ms latency, 128 KiB/s, a reset or a half-open
// connection every 4-9 s). Store-and-forward with the original timestamps: zero loss and no
// extra points in InfluxDB; the capture → stored delay is measured.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runImpaired } from '../loadtest/impaired.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'

describe('impaired network', () => {
  let influx: InfluxServer
  beforeAll(async () => { influx = await startInfluxDB() })
  afterAll(async () => { await influx?.stop() })

  it('loses nothing and stores nothing twice through latency, throttling, resets and half-open links', async () => {
    const r = await runImpaired({ influx, db: 'impaired', units: 4, durationMs: 15_000 })
    // The impairments happened: drops of both kinds, and devices reconnected through them.
    expect(r.proxy.resets + r.proxy.halfOpens).toBeGreaterThanOrEqual(4)
    expect(r.reconnects).toBeGreaterThanOrEqual(4)
    expect(r.framesAcked).toBe(r.framesGenerated)
    for (const u of r.units) expect(u.stored).toEqual(u.acked)
    expect(r.lost).toBe(0)
    expect(r.extra).toBe(0)
    // Every vitals point was seen arriving (one per unit per second of streaming).
    expect(r.captureToStoredMs.count).toBe(r.units.reduce((a, u) => a + u.acked.vitals, 0))
    expect(r.captureToStoredMs.p50).toBeGreaterThan(250)
  }, 90_000)
})
