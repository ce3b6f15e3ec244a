// The sink under faults. InfluxDB down (a real influxd, killed and restarted): frames are still
// acknowledged into the spool, readiness says so, and after recovery everything drains exactly
// once. Answers a real InfluxDB cannot give on demand (a proxy's non-data 400, 429 with
// Retry-After) come from a small fake HTTP server, which also records every body it accepted.
import type { IncomingMessage } from 'node:http'
import mqtt from 'mqtt'
import { startFakeInflux, type FakeAnswer, type FakeInflux } from '../testkit/fake-influx.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { testFrame } from '../testkit/frames.js'
import { waitFor } from '../testkit/proc.js'

async function publish (tg: TestGateway, unit: string, seqs: number[]): Promise<void> {
  const token = await tg.addDevice(unit)
  const c = await mqtt.connectAsync(tg.mqttUrl, { username: unit, password: token, clientId: unit, reconnectPeriod: 0 })
  try {
    await Promise.all(seqs.map(seq => c.publishAsync(`units/${unit}/telemetry`, Buffer.from(testFrame({ unit, seq })), { qos: 1 })))
  } finally {
    await c.endAsync()
  }
}

describe('InfluxDB outage', () => {
  let influx: InfluxServer
  beforeAll(async () => { influx = await startInfluxDB() })
  afterAll(async () => { await influx?.stop() })

  it('keeps acknowledging into the spool while InfluxDB is down, then drains everything exactly once', async () => {
    const tg = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: 'outage' })
    try {
      await publish(tg, 'out-1', [1, 2, 3, 4, 5])
      await waitFor(async () => (await influx.count('outage', 'ecg', 'i')) === 5 * 125 ? true : undefined, { timeoutMs: 15_000, what: 'first frames stored' })

      influx.kill('SIGKILL')
      await publish(tg, 'out-2', Array.from({ length: 30 }, (_, i) => i + 1))
      const ready = await fetch(`${tg.httpUrl}/readyz`)
      expect(ready.status).toBe(503)
      expect(((await ready.json()) as { checks: Record<string, { ok: boolean }> }).checks.influxdb?.ok).toBe(false)
      expect((await fetch(`${tg.httpUrl}/healthz`)).status).toBe(200)
      expect(tg.gw.spool.pendingBytes).toBeGreaterThan(0)
      // The sink has tried a write and met the outage before InfluxDB comes back: on a loaded
      // machine the restart can otherwise win the race and the outage is never seen by a write.
      await waitFor(async () => /InfluxDB write failed; retrying/.test(tg.logs()) ? true : undefined, { timeoutMs: 20_000, what: 'a failed write to be logged' })

      await influx.restart()
      await waitFor(async () => tg.gw.spool.pendingBytes === 0 ? true : undefined, { timeoutMs: 40_000, what: 'the backlog to drain' })
      expect(await influx.count('outage', 'ecg', 'i', `"unit" = 'out-2'`)).toBe(30 * 125)
      expect(await influx.count('outage', 'vitals', 'heart_rate', `"unit" = 'out-2'`)).toBe(30)
      expect(await influx.count('outage', 'ecg', 'i', `"unit" = 'out-1'`)).toBe(5 * 125)
      expect((await fetch(`${tg.httpUrl}/readyz`)).status).toBe(200)
    } finally {
      await tg.close()
    }
  })
})

describe('answers only a fake server gives on demand', () => {
  let script: Array<(req: IncomingMessage) => FakeAnswer> = []
  let fake: FakeInflux
  let url: string
  let accepted: string[]
  /** Every write request: when it came, its (gunzipped) body, the status answered. */
  let writes: FakeInflux['writes']
  beforeAll(async () => {
    fake = await startFakeInflux(req => script.shift()?.(req))
    ;({ url, accepted, writes } = fake)
  })
  afterAll(async () => { await fake?.close() })

  it('retries a 400 that is not about the data instead of dead-lettering every line', async () => {
    accepted.length = 0
    const bad = () => ({ status: 400, body: '{"error":"gzip: invalid header"}' })
    script = [bad, bad, bad]
    const tg = await startTestGateway({ influxUrl: url, influxApi: 'v1', influxDb: 'x' })
    try {
      await publish(tg, 'f400', [1, 2, 3])
      await waitFor(async () => tg.gw.spool.pendingBytes === 0 ? true : undefined, { timeoutMs: 20_000, what: 'drain' })
      const lines = accepted.join('').split('\n').filter(l => l.startsWith('ecg,unit=f400'))
      expect(new Set(lines).size).toBe(3 * 125)
      expect((await tg.gw.deadLetters.readAll()).filter(d => d.source === 'influx')).toHaveLength(0)
    } finally {
      await tg.close()
    }
  })

  it('honours 429 Retry-After and loses nothing', async () => {
    accepted.length = 0
    writes.length = 0
    script = [() => ({ status: 429, body: '{"error":"slow down"}', headers: { 'retry-after': '1' } })]
    const tg = await startTestGateway({ influxUrl: url, influxApi: 'v1', influxDb: 'x' })
    try {
      await publish(tg, 'f429', [1, 2])
      await waitFor(async () => tg.gw.spool.pendingBytes === 0 ? true : undefined, { timeoutMs: 20_000, what: 'drain' })
      // The first write was refused with Retry-After: 1 s; its retry (the same lines) came no
      // sooner. Other batches may have been in flight already (INFLUX_CONCURRENCY > 1), so the
      // retry is found by its content, not by its place in the sequence.
      const refused = writes.find(w => w.status === 429)!
      const retry = writes.find(w => w.at >= refused.at && w !== refused && w.body === refused.body)
      expect(retry, 'the refused batch was sent again').toBeDefined()
      expect(retry!.at - refused.at).toBeGreaterThanOrEqual(950)
      expect(new Set(accepted.join('').split('\n').filter(l => l.startsWith('ecg,unit=f429'))).size).toBe(2 * 125)
    } finally {
      await tg.close()
    }
  })
})
