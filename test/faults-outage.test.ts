// InfluxDB outage under load (issue #3, item 2), short version of `loadtest/outage.ts`: influxd
// killed for 5 s, then hung with SIGSTOP for 4 s (the sink's 1 s INFLUX_TIMEOUT_MS must fire).
// Devices keep being acknowledged from the spool, the lag metric rises and falls, and after the
// FIFO drain InfluxDB holds every acknowledged point exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runOutage } from '../loadtest/outage.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'

describe('InfluxDB outage under load', () => {
  let influx: InfluxServer
  beforeAll(async () => { influx = await startInfluxDB() })
  afterAll(async () => { await influx?.stop() })

  it('spools through a kill and a SIGSTOP hang, shows the lag, then drains losing nothing', async () => {
    const r = await runOutage({ influx, db: 'outage', units: 4, frameMs: 100, outageMs: 5000, hangMs: 4000, influxTimeoutMs: 1000, calmMs: 1000 })
    const [kill, hang] = r.phases
    // Ingest went on: devices were acknowledged during both faults, without long waits.
    expect(kill!.framesAckedDuringFault).toBeGreaterThan(4 * 40)
    expect(hang!.framesAckedDuringFault).toBeGreaterThan(4 * 30)
    expect(r.maxAckLatencyMs).toBeLessThan(2000)
    // The lag rose to about the fault's length and fell back under a second.
    expect(kill!.peakLagSeconds).toBeGreaterThanOrEqual(4)
    expect(hang!.peakLagSeconds).toBeGreaterThanOrEqual(3)
    expect(kill!.lagAfterSeconds).toBeLessThan(1)
    expect(hang!.lagAfterSeconds).toBeLessThan(1)
    // The hung server was detected by the request timeout, not waited on forever.
    expect(r.timeoutRetries).toBeGreaterThanOrEqual(1)
    expect(r.lost).toBe(0)
    expect(r.extra).toBe(0)
    expect(r.framesAcked).toBe(r.framesGenerated)
  }, 90_000)
})
