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
    // Ingest went on: devices were acknowledged during both faults, most of what they generated
    // meanwhile (counted against the fleet's own pace on this machine; a stalled ingest would
    // acknowledge only what was in flight). How long they waited for their PUBACKs is measured
    // by loadtest/outage.ts (maxAckLatencyMs, drainMs).
    for (const p of [kill!, hang!]) {
      expect(p.framesGeneratedDuringFault).toBeGreaterThan(4 * 10)
      expect(p.framesAckedDuringFault).toBeGreaterThan(p.framesGeneratedDuringFault / 2)
    }
    // The lag rose to about the fault's length, and the backlog drained after each recovery.
    expect(kill!.peakLagSeconds).toBeGreaterThanOrEqual(4)
    expect(hang!.peakLagSeconds).toBeGreaterThanOrEqual(3)
    expect(kill!.drained).toBe(true)
    expect(hang!.drained).toBe(true)
    // The hung server was detected by the request timeout, not waited on forever.
    expect(r.timeoutRetries).toBeGreaterThanOrEqual(1)
    expect(r.lost).toBe(0)
    expect(r.extra).toBe(0)
    expect(r.framesAcked).toBe(r.framesGenerated)
  }, 90_000)
})
