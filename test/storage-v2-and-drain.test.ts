// The v2 write API against a real server that speaks it (Debian's VictoriaMetrics accepts
// /api/v2/write), and the embedded default: a gateway without InfluxDB keeps everything in its
// spool, and once restarted with InfluxDB configured drains all of it, exactly once.
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startVictoriaMetrics, type VMServer } from '../testkit/victoria.js'
import { startTestGateway } from '../testkit/gateway.js'
import { testFrame, T0 } from '../testkit/frames.js'
import { waitFor } from '../testkit/proc.js'

async function publishFrames (url: string, unit: string, token: string, seqs: number[]): Promise<void> {
  const c = await mqtt.connectAsync(url, { username: unit, password: token, clientId: unit, reconnectPeriod: 0 })
  try {
    await Promise.all(seqs.map(seq => c.publishAsync(`units/${unit}/telemetry`, Buffer.from(testFrame({ unit, seq })), { qos: 1 })))
  } finally {
    await c.endAsync()
  }
}

describe('InfluxDB v2 write API (VictoriaMetrics)', () => {
  let vm: VMServer
  beforeAll(async () => { vm = await startVictoriaMetrics() })
  afterAll(async () => { await vm?.stop() })

  it('stores every acknowledged frame with the contract names and microsecond-derived timestamps', async () => {
    const tg = await startTestGateway({ influxUrl: vm.url, influxApi: 'v2', influxOrg: 'hospital', influxBucket: 'ambulink', influxToken: 'not-checked-by-vm' })
    try {
      const token = await tg.addDevice('v2-1')
      await publishFrames(tg.mqttUrl, 'v2-1', token, Array.from({ length: 20 }, (_, i) => i + 1))
      const series = await vm.waitForExport('{__name__=~"ecg_.*|vitals_.*|position_.*",unit="v2-1"}', s => {
        const ii = s.find(x => x.metric.__name__ === 'ecg_ii')
        return ii !== undefined && ii.values.length >= 20 * 125
      }, 20_000)
      const byName = new Map(series.map(s => [s.metric.__name__!, s]))
      for (const lead of ['i', 'ii', 'iii', 'avr', 'avl', 'avf', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6']) {
        expect(byName.get(`ecg_${lead}`)?.values.length, `ecg_${lead}`).toBe(20 * 125)
      }
      expect(byName.get('vitals_heart_rate')?.values.length).toBe(20)
      expect(byName.get('vitals_spo2')?.values).toEqual(Array(20).fill(97))
      expect(byName.get('position_latitude')?.values.length).toBe(20)
      const ii = byName.get('ecg_ii')!
      expect(ii.metric.encounter).toBe('enc-1')
      // 500 Hz: 2 ms apart, starting at the frame's captured_at_ms.
      expect(ii.timestamps.slice(0, 3)).toEqual([T0 + 250, T0 + 252, T0 + 254])
    } finally {
      await tg.close()
    }
  })
})

describe('embedded default → InfluxDB', () => {
  let influx: InfluxServer
  beforeAll(async () => { influx = await startInfluxDB() })
  afterAll(async () => { await influx?.stop() })

  it('keeps frames in the spool without InfluxDB, then drains all of them exactly once after a restart with INFLUX_URL', async () => {
    // 1. No INFLUX_URL: the spool is the store of record.
    const first = await startTestGateway({ spoolSegmentBytes: 256 * 1024 })
    const token = await first.addDevice('emb-1')
    const N = 120
    await publishFrames(first.mqttUrl, 'emb-1', token, Array.from({ length: N }, (_, i) => i + 1))
    // Compact spool: each frame is kept whole (frame records), at ≤ 1.5 bytes per frame byte.
    const frameBytes = Array.from({ length: N }, (_, i) => testFrame({ unit: 'emb-1', seq: i + 1 }).length).reduce((a, b) => a + b, 0)
    expect(first.gw.spool.pendingBytes).toBeGreaterThan(frameBytes)
    expect(first.gw.spool.pendingBytes).toBeLessThanOrEqual(1.5 * frameBytes)
    const segmentsBefore = first.gw.spool.bytes
    await first.stop()

    // 2. Restart on the same DATA_DIR, now with InfluxDB: everything drains.
    const second = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: 'drained' }, { dataDir: first.dataDir })
    try {
      expect(second.gw.spool.bytes).toBe(segmentsBefore)
      await waitFor(async () => second.gw.spool.pendingBytes === 0 ? true : undefined, { timeoutMs: 30_000, what: 'the spool to drain' })
      expect(await influx.count('drained', 'ecg', 'v3')).toBe(N * 125)
      expect(await influx.count('drained', 'vitals', 'heart_rate')).toBe(N)
      expect(await influx.count('drained', 'position', 'longitude')).toBe(N)
      // Drained segments are trimmed: only the segment being written remains.
      expect(second.gw.spool.bytes).toBeLessThan(256 * 1024 + 64 * 1024)
      expect(await second.gw.spool.lagSeconds()).toBe(0)
    } finally {
      await second.close()
      await first.close()
    }
  })
})
