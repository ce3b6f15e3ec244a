// INFLUX_GZIP (issue 12, goal 3): with "false" the sink posts its line protocol plain, and a real
// InfluxDB 1.x stores every point exactly, a field type conflict's lines isolated as with gzip;
// by default the bodies stay gzipped. What went over the wire is seen by a recording HTTP proxy
// between the gateway and InfluxDB: it forwards every request unchanged and keeps, for each write,
// its content-encoding and whether its body starts as gzip does (1f 8b) or as line protocol.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import mqtt from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../gateway/config.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { testFrame, T0 } from '../testkit/frames.js'
import { waitFor } from '../testkit/proc.js'

interface SeenWrite { encoding: string | undefined, gzipMagic: boolean, text: boolean, bytes: number }

/** An HTTP proxy to `target` that records every write it forwards. */
async function recordingProxy (target: string): Promise<{ url: string, writes: SeenWrite[], close: () => Promise<void> }> {
  const to = new URL(target)
  const writes: SeenWrite[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => { chunks.push(c) })
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      if (req.url?.startsWith('/write') === true) {
        const enc = req.headers['content-encoding']
        writes.push({ encoding: Array.isArray(enc) ? enc[0] : enc, gzipMagic: body[0] === 0x1f && body[1] === 0x8b, text: /^[a-z_]+[, ]/.test(body.subarray(0, 64).toString('latin1')), bytes: body.length })
      }
      const fwd = http.request({ hostname: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers }, up => {
        res.writeHead(up.statusCode ?? 502, up.headers)
        up.pipe(res)
      })
      fwd.on('error', err => { res.destroy(err) })
      fwd.end(body)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    writes,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }
}

async function publish (tg: TestGateway, unit: string, frames: number): Promise<void> {
  const token = await tg.addDevice(unit)
  const c = await mqtt.connectAsync(tg.mqttUrl, { username: unit, password: token, clientId: unit, reconnectPeriod: 0 })
  try {
    await Promise.all(Array.from({ length: frames }, (_, i) => c.publishAsync(`units/${unit}/telemetry`, Buffer.from(testFrame({ unit, seq: i + 1 })), { qos: 1 })))
  } finally {
    await c.endAsync()
  }
}

describe('INFLUX_GZIP', () => {
  let influx: InfluxServer
  const cleanups: Array<() => Promise<void>> = []
  beforeAll(async () => { influx = await startInfluxDB() })
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })
  afterAll(async () => { await influx?.stop() })

  const start = async (db: string, gzip: 'true' | 'false' | undefined): Promise<{ tg: TestGateway, writes: SeenWrite[] }> => {
    const proxy = await recordingProxy(influx.url)
    cleanups.push(proxy.close)
    const tg = await startTestGateway({ influxUrl: proxy.url, influxApi: 'v1', influxDb: db, influxLingerMs: 5, ...(gzip !== undefined ? { influxGzip: gzip } : {}) })
    cleanups.push(tg.close)
    return { tg, writes: proxy.writes }
  }

  // Generous: the sink's worker thread compiles its TypeScript when it starts.
  const drained = async (tg: TestGateway): Promise<void> => {
    await waitFor(async () => tg.gw.spool.pendingBytes === 0, { timeoutMs: 60_000, intervalMs: 50, what: 'the spool to drain into InfluxDB' })
  }

  it('is true by default, and "true" or "false" only', () => {
    expect(loadConfig({}, {}).influxGzip).toBe('true')
    expect(loadConfig({}, { INFLUX_GZIP: 'false' }).influxGzip).toBe('false')
    expect(() => loadConfig({}, { INFLUX_GZIP: 'no' })).toThrow(/INFLUX_GZIP must be one of true, false/)
  })

  it('"false": plain line protocol on the wire, and every point stored exactly', async () => {
    const { tg, writes } = await start('gz_plain', 'false')
    await publish(tg, 'plain-1', 60)
    await publish(tg, 'plain-2', 25)
    await drained(tg)
    for (const [unit, frames] of [['plain-1', 60], ['plain-2', 25]] as const) {
      expect(await influx.count('gz_plain', 'ecg', 'v6', `"unit" = '${unit}'`), unit).toBe(frames * 125)
      expect(await influx.count('gz_plain', 'vitals', 'heart_rate', `"unit" = '${unit}'`), unit).toBe(frames)
      expect(await influx.count('gz_plain', 'position', 'latitude', `"unit" = '${unit}'`), unit).toBe(frames)
    }
    // The samples themselves, not only their number.
    const r = await influx.query(`SELECT "ii" FROM ecg WHERE "unit" = 'plain-1' ORDER BY time ASC LIMIT 1`, 'gz_plain', { epoch: 'u' })
    expect(r.results[0].series[0].values[0]).toEqual([(T0 + 250) * 1000, ((0 * 7 + 1 * 13 + 1) % 400) - 200])
    expect(writes.length).toBeGreaterThan(0)
    expect(writes.filter(w => w.encoding !== undefined || w.gzipMagic || !w.text)).toEqual([])
  }, 150_000)

  it('"false": lines InfluxDB refuses (field type conflict) are isolated as with gzip; the rest is stored', async () => {
    // vitals.heart_rate made an integer field first, so the gateway's float lines conflict.
    await influx.createDatabase('gz_conflict')
    await influx.write('gz_conflict', `vitals,unit=conf-p heart_rate=1i ${(T0 - 10_000) * 1000}`, 'u')
    const { tg, writes } = await start('gz_conflict', 'false')
    await publish(tg, 'conf-p', 8)
    await drained(tg)
    expect(await influx.count('gz_conflict', 'ecg', 'i')).toBe(8 * 125)
    expect(await influx.count('gz_conflict', 'position', 'latitude')).toBe(8)
    await waitFor(async () => (await tg.gw.deadLetters.readAll()).filter(d => d.source === 'influx').length >= 8 ? true : undefined, { timeoutMs: 60_000, what: 'dead letters from InfluxDB' })
    const dls = (await tg.gw.deadLetters.readAll()).filter(d => d.source === 'influx')
    expect(dls).toHaveLength(8)
    for (const d of dls) expect(d.reason).toMatch(/field type conflict/)
    expect(writes.filter(w => w.encoding !== undefined || w.gzipMagic)).toEqual([])
  }, 150_000)

  it('by default the bodies are gzipped', async () => {
    const { tg, writes } = await start('gz_default', undefined)
    await publish(tg, 'gz-1', 20)
    await drained(tg)
    expect(await influx.count('gz_default', 'ecg', 'v6')).toBe(20 * 125)
    expect(writes.length).toBeGreaterThan(0)
    expect(writes.filter(w => w.encoding !== 'gzip' || !w.gzipMagic)).toEqual([])
  }, 150_000)
})
