// End to end against a real InfluxDB 1.x (Debian's influxd, started here on free ports): frames
// from mqtt.js (TCP and WebSocket), mosquitto_pub and HTTP land in InfluxDB, and the counts in
// the database equal exactly what was acknowledged.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { mosquittoPub } from '../testkit/mosquitto.js'
import { testFrame, T0 } from '../testkit/frames.js'
import { waitFor } from '../testkit/proc.js'

let influx: InfluxServer
beforeAll(async () => { influx = await startInfluxDB() })
afterAll(async () => { await influx?.stop() })

/**
 * Counts once the gateway's spool is drained: every acknowledged frame has been written (or dead
 * lettered) and acknowledged by InfluxDB, so nothing more is on its way and a count above the
 * expected one would be a duplicate.
 */
// Generous bounds: the sink's worker thread compiles its TypeScript when it starts, which takes
// seconds on a loaded machine.
async function countWhenDrained (gw: TestGateway, db: string, measurement: string, field: string, where?: string): Promise<number> {
  await waitFor(async () => gw.gw.spool.pendingBytes === 0, { timeoutMs: 60_000, intervalMs: 50, what: 'the spool to drain into InfluxDB' })
  return await influx.count(db, measurement, field, where)
}

describe('InfluxDB v1 (/write)', () => {
  let tg: TestGateway
  const db = 'amb_v1'
  beforeAll(async () => {
    tg = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: db })
  })
  afterAll(async () => { await tg?.close() })

  it('creates the database and stores frames from mqtt.js over TCP and WebSocket, mosquitto_pub and HTTP, with exact counts', async () => {
    const tokens: Record<string, string> = {}
    for (const u of ['tcp-1', 'ws-1', 'mosq-1', 'http-1']) tokens[u] = await tg.addDevice(u)

    const N = 40
    const tcp = await mqtt.connectAsync(tg.mqttUrl, { username: 'tcp-1', password: tokens['tcp-1'], clientId: 'tcp-1', reconnectPeriod: 0 })
    const ws = await mqtt.connectAsync(tg.wsUrl, { username: 'ws-1', password: tokens['ws-1'], clientId: 'ws-1', reconnectPeriod: 0 })
    try {
      await Promise.all([
        ...Array.from({ length: N }, (_, i) => tcp.publishAsync('units/tcp-1/telemetry', Buffer.from(testFrame({ unit: 'tcp-1', seq: i + 1 })), { qos: 1 })),
        ...Array.from({ length: N }, (_, i) => ws.publishAsync('units/ws-1/telemetry', Buffer.from(testFrame({ unit: 'ws-1', seq: i + 1 })), { qos: 1 }))
      ])
    } finally {
      await tcp.endAsync()
      await ws.endAsync()
    }

    // mosquitto_pub: a client written by others, QoS 1, binary payload from a file.
    const file = join(tg.dataDir, 'frame.bin')
    for (let i = 1; i <= 3; i++) {
      await writeFile(file, testFrame({ unit: 'mosq-1', seq: i }))
      const r = await mosquittoPub({ port: tg.gw.ports.mqtt!, username: 'mosq-1', password: tokens['mosq-1'], id: 'mosq-1', topic: 'units/mosq-1/telemetry', file, qos: 1 })
      expect(r.code, r.stderr).toBe(0)
    }

    for (let i = 1; i <= 5; i++) {
      const res = await fetch(`${tg.httpUrl}/api/v1/units/http-1/telemetry`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens['http-1']}`, 'content-type': 'application/x-protobuf' },
        body: Buffer.from(testFrame({ unit: 'http-1', seq: i }))
      })
      expect(res.status).toBe(200)
    }

    const expected: Record<string, number> = { 'tcp-1': N, 'ws-1': N, 'mosq-1': 3, 'http-1': 5 }
    for (const [unit, frames] of Object.entries(expected)) {
      expect(await countWhenDrained(tg, db, 'ecg', 'ii', `"unit" = '${unit}'`), `ecg points of ${unit}`).toBe(frames * 125)
      expect(await influx.count(db, 'vitals', 'heart_rate', `"unit" = '${unit}'`)).toBe(frames)
      expect(await influx.count(db, 'position', 'latitude', `"unit" = '${unit}'`)).toBe(frames)
    }
    // All twelve leads of every instant, in microvolts.
    const r = await influx.query(`SELECT * FROM ecg WHERE "unit" = 'tcp-1' ORDER BY time ASC LIMIT 2`, db, { epoch: 'u' })
    const cols: string[] = r.results[0].series[0].columns
    for (const lead of ['i', 'ii', 'iii', 'avr', 'avl', 'avf', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'unit', 'encounter']) expect(cols).toContain(lead)
    const rows: unknown[][] = r.results[0].series[0].values
    expect(rows[1]![0]).toBe((T0 + 250) * 1000 + 2000)
    expect(rows[0]![cols.indexOf('ii')]).toBe(((0 * 7 + 1 * 13 + 1) % 400) - 200)

    const metrics = await tg.gw.metrics.registry.getSingleMetricAsString('ambulink_points_written_total')
    const written = Number(/ambulink_points_written_total (\d+)/.exec(metrics)?.[1])
    expect(written).toBe((2 * N + 8) * 127)
  }, 150_000)

  it('a replayed frame writes identical points: counts do not change', async () => {
    const token = await tg.addDevice('replay-1')
    const c = await mqtt.connectAsync(tg.mqttUrl, { username: 'replay-1', password: token, clientId: 'replay-1', reconnectPeriod: 0 })
    try {
      for (let i = 1; i <= 10; i++) await c.publishAsync('units/replay-1/telemetry', Buffer.from(testFrame({ unit: 'replay-1', seq: i })), { qos: 1 })
      // The device resends frames 3..7 (e.g. after a reconnect it never got PUBACKs for).
      for (let i = 3; i <= 7; i++) await c.publishAsync('units/replay-1/telemetry', Buffer.from(testFrame({ unit: 'replay-1', seq: i })), { qos: 1 })
    } finally {
      await c.endAsync()
    }
    expect(await countWhenDrained(tg, db, 'ecg', 'v6', `"unit" = 'replay-1'`)).toBe(10 * 125)
    expect(await influx.count(db, 'vitals', 'heart_rate', `"unit" = 'replay-1'`)).toBe(10)
    const m = await tg.gw.metrics.registry.getSingleMetricAsString('ambulink_frames_replayed_total')
    expect(m).toMatch(/ambulink_frames_replayed_total 5/)
  }, 150_000)

  it('lines InfluxDB refuses (field type conflict) go to dead letters; the rest of the batch is stored', async () => {
    // Make `vitals.heart_rate` an integer field in a fresh database, so our float lines conflict.
    const db2 = 'amb_conflict'
    await influx.createDatabase(db2)
    await influx.write(db2, `vitals,unit=conf-1 heart_rate=1i ${(T0 - 10_000) * 1000}`, 'u')
    const tg2 = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: db2, influxLingerMs: 200 })
    try {
      const token = await tg2.addDevice('conf-1')
      const c = await mqtt.connectAsync(tg2.mqttUrl, { username: 'conf-1', password: token, clientId: 'conf-1', reconnectPeriod: 0 })
      try {
        await Promise.all(Array.from({ length: 6 }, (_, i) => c.publishAsync('units/conf-1/telemetry', Buffer.from(testFrame({ unit: 'conf-1', seq: i + 1 })), { qos: 1 })))
      } finally {
        await c.endAsync()
      }
      expect(await countWhenDrained(tg2, db2, 'ecg', 'i')).toBe(6 * 125)
      expect(await influx.count(db2, 'position', 'latitude')).toBe(6)
      await waitFor(async () => (await tg2.gw.deadLetters.readAll()).filter(d => d.source === 'influx').length >= 6 ? true : undefined, { timeoutMs: 60_000, what: 'dead letters from InfluxDB' })
      const dls = (await tg2.gw.deadLetters.readAll()).filter(d => d.source === 'influx')
      expect(dls).toHaveLength(6)
      for (const d of dls) {
        expect(d.code).toBe('AMB_ERR_INFLUX_REJECTED')
        expect(d.reason).toMatch(/field type conflict/)
        expect(d.lines).toMatch(/^vitals,unit=conf-1,encounter=enc-1 heart_rate=/)
      }
    } finally {
      await tg2.close()
    }
  }, 150_000)
})
