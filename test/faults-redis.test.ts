// A Redis outage under load (cluster mode, REDIS_URL): redis-server is killed while devices
// stream QoS 1 telemetry, then started again on the same port. Devices keep being acknowledged
// (telemetry never goes through Redis), /readyz says the process is cut off, no command of
// aedes-persistence-redis rejects unhandled (ioredis waits: maxRetriesPerRequest null), a device
// connecting during the outage gets its session once Redis is back, and InfluxDB holds every
// acknowledged frame.
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startRedis, type RedisServer } from '../testkit/redis.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { T0, testFrame } from '../testkit/frames.js'
import { waitForDrain } from '../testkit/stored.js'

const DB = 'redisoutage'
let influx: InfluxServer
let redis: RedisServer
let tg: TestGateway
const clients: MqttClient[] = []
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled)
  ;[influx, redis] = await Promise.all([startInfluxDB({ logLevel: 'warn' }), startRedis()])
  tg = await startTestGateway({ redisUrl: redis.url, influxUrl: influx.url, influxApi: 'v1', influxDb: DB })
})
afterAll(async () => {
  for (const c of clients) c.end(true)
  await tg?.close()
  await Promise.all([redis?.stop(), influx?.stop()])
  process.off('unhandledRejection', onUnhandled)
})

/** Resolves once `check` holds, polling a state the gateway reports (bounded, not a sleep). */
async function until (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

async function readyz (): Promise<{ status: number, redisOk: boolean | undefined }> {
  const res = await fetch(`${tg.httpUrl}/readyz`)
  const body = await res.json() as { checks: Record<string, { ok: boolean }> }
  return { status: res.status, redisOk: body.checks.redis?.ok }
}

/** A device publishing one frame every `everyMs` with QoS 1; records the seqs acknowledged. */
function device (unit: string, token: string, everyMs: number): { acked: Set<number>, sent: () => number, stop: () => Promise<void> } {
  const acked = new Set<number>()
  const c = mqtt.connect(tg.mqttUrl, { clientId: unit, username: unit, password: token, clean: false, reconnectPeriod: 200 })
  clients.push(c)
  let seq = 0
  const timer = setInterval(() => {
    if (!c.connected) return
    const s = ++seq
    c.publish(`units/${unit}/telemetry`, Buffer.from(testFrame({ unit, seq: s })), { qos: 1 }, err => { if (err === undefined || err === null) acked.add(s) })
  }, everyMs)
  return {
    acked,
    sent: () => seq,
    stop: async () => {
      clearInterval(timer)
      await new Promise<void>(resolve => { c.end(false, {}, () => { resolve() }) })
    }
  }
}

describe('Redis outage under load (cluster mode)', () => {
  it('keeps acknowledging telemetry, reports not ready, recovers by itself, loses no acknowledged frame, and rejects nothing unhandled', async () => {
    expect((await readyz()).redisOk).toBe(true)
    const units = ['red-1', 'red-2', 'red-3']
    const devices: Array<ReturnType<typeof device>> = []
    for (const u of units) devices.push(device(u, await tg.addDevice(u), 50))
    const total = (): number => devices.reduce((a, d) => a + d.acked.size, 0)
    await until('frames acknowledged before the outage', () => total() >= 30)

    await redis.kill()
    await until('/readyz reporting Redis down', async () => (await readyz()).redisOk === false)
    expect((await readyz()).status).toBe(503)
    // Telemetry is consumed locally: the devices keep being acknowledged during the outage.
    const during = total()
    await until('frames acknowledged during the outage', () => total() >= during + 30)
    // A device connecting now needs Redis for its session: it waits, it does not crash anything.
    const lateToken = await tg.addDevice('red-late')
    const late = mqtt.connect(tg.mqttUrl, { clientId: 'red-late', username: 'red-late', password: lateToken, clean: false, reconnectPeriod: 500, connectTimeout: 60_000 })
    clients.push(late)

    await redis.restart()
    await until('/readyz 200 after Redis returned', async () => (await readyz()).status === 200)
    await until('the late device connected', () => late.connected)
    const lateAcked = await new Promise<boolean>(resolve => {
      late.publish('units/red-late/telemetry', Buffer.from(testFrame({ unit: 'red-late', seq: 1 })), { qos: 1 }, err => { resolve(err === undefined || err === null) })
    })
    expect(lateAcked).toBe(true)
    const after = total()
    await until('frames acknowledged after the outage', () => total() >= after + 30)
    for (const d of devices) await d.stop()

    await waitForDrain([tg.httpUrl], 60_000)
    // Every acknowledged frame is in InfluxDB (a frame sent but never acknowledged may be too:
    // the device resends it, and resends are idempotent).
    for (const [i, u] of units.entries()) {
      const body = await influx.query(`SELECT heart_rate FROM vitals WHERE "unit" = '${u}'`, DB, { epoch: 'ms' })
      const stored = new Set<number>(((body.results?.[0]?.series?.[0]?.values ?? []) as Array<[number, number]>).map(([t]) => (t - T0) / 250))
      const missing = [...devices[i]!.acked].filter(s => !stored.has(s))
      expect(missing, u).toEqual([])
      expect(stored.size).toBeLessThanOrEqual(devices[i]!.sent())
    }
    expect(await influx.count(DB, 'vitals', 'heart_rate', `"unit" = 'red-late'`)).toBe(1)
    expect(unhandled).toEqual([])
  }, 180_000)
})
