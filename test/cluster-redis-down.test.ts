// The Redis-down path of a cluster (issue #15, docs/scale-out.md "When Redis stops"): two real
// gateway processes (children: an unhandled rejection would kill one, Node's default) and a real
// redis-server that is killed while a unit streams to A, then started again (empty: no
// persistence, as deployed). Before the outage the unit has a history of alert events and an
// acknowledged SpO2 alert; during it A raises a heart-rate alert and its page gets it (A
// delivers it alone); neither process dies. Once Redis is back (empty): a new event reaches the
// page though its sequence starts again, A's snapshots reach Redis again, the open alerts (the
// acknowledged one too) are back in the cluster book; A is SIGKILLed and the unit moves to B:
// B takes it over, nothing is raised again, the acknowledgement is kept.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Alert, AlertEvent, ServerMessage, UnitSnapshot } from '../streams/index.js'
import { CLUSTER_START_TIMEOUT_MS, liveFeed, login, startCluster, TestDevice, type LiveFeed, type TestCluster } from '../testkit/cluster.js'
import type { GatewayProcess } from '../testkit/gateway-process.js'
import { waitFor } from '../testkit/proc.js'

const UNIT = 'AMB-OUT'
const HR = 1
const SPO2 = 3
const RR = 7
/** Values scoring 0 in NEWS2 (RCP NEWS2 2017 chart 1) unless overridden. */
const BASE: Readonly<Record<number, number>> = { [RR]: 16, [SPO2]: 97, 11: 0, [HR]: 72, 10: 0, 9: 36.8 }
type AlertMsg = Extract<ServerMessage, { type: 'alert' }>
const spo2Event = (type: AlertEvent['type']) => (m: ServerMessage): m is AlertMsg => m.type === 'alert' && m.event.alert.unit === UNIT && m.event.alert.key === 'spo2' && m.event.type === type

async function healthy (gw: GatewayProcess): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${gw.ports.http!}/healthz`, { signal: AbortSignal.timeout(5000) })
  return res.status === 200
}
async function ready (gw: GatewayProcess): Promise<number> {
  return (await fetch(`http://127.0.0.1:${gw.ports.http!}/readyz`, { signal: AbortSignal.timeout(5000) })).status
}

describe('cluster: Redis stops while units stream', () => {
  let cluster: TestCluster
  let rc: Redis | null = null
  let a: GatewayProcess
  let b: GatewayProcess
  let device: TestDevice
  let password: string
  const feeds: LiveFeed[] = []

  beforeAll(async () => {
    cluster = await startCluster({ prefix: 'ambulink-cluster-redis-down-' })
    password = await cluster.addUser('dr-lee')
    device = new TestDevice(UNIT, await cluster.addDevice(UNIT))
    a = await cluster.start('a')
    b = await cluster.start('b')
  }, 2 * CLUSTER_START_TIMEOUT_MS + 60_000)

  afterAll(async () => {
    for (const f of feeds) f.ws.terminate()
    await device?.close()
    rc?.disconnect()
    await cluster?.stop()
  })

  it('alerts go on locally, nothing crashes; events and snapshots resume; a failover afterwards carries the state', async () => {
    const s = await login(a.ports.http!, 'dr-lee', password)
    const page = await liveFeed(a.ports.http!, s.cookie)
    feeds.push(page)
    await device.connect(a.ports.mqtt!)
    let t = Math.floor(Date.now() / 1000) * 1000 - 120_000
    // Before the outage: temperature 34 °C / 36.8 °C in turn (< 35 °C: hypothermia, a spot
    // measurement raised and cleared at once, rules.ts; ERC 2021), five times: the unit's
    // alert sequence stands at 10 on every process.
    for (let i = 0; i < 10; i++, t += 1000) await device.send(t, { ...BASE, 9: i % 2 === 0 ? 34 : 36.8 })
    await waitFor(async () => page.messages.filter(m => m.type === 'alert' && m.event.alert.key === 'temperature').length >= 10, { timeoutMs: 20_000, what: 'ten temperature events on A\'s page' })
    // SpO2 88 % (< 90 %, rules.ts) for 16 s: raised once ≥ 70 % of its 15 s window (Welch 2011); acknowledged.
    for (let i = 0; i < 16; i++, t += 1000) await device.send(t, { ...BASE, [SPO2]: 88 })
    const spo2 = await page.until('SpO2 raised', spo2Event('raised'))
    const ack = await fetch(`http://127.0.0.1:${a.ports.http!}/api/v1/alerts/${spo2.event.alert.id}/ack`, { method: 'POST', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } })
    expect(ack.status).toBe(200)
    await page.until('SpO2 acknowledged', spo2Event('acknowledged'))

    await cluster.redis.kill()
    await waitFor(async () => (await ready(a)) === 503, { timeoutMs: 15_000, what: 'A reporting Redis down' })
    // During the outage: heart rate 35/min (< 41: critical, high priority, for ≥ 70 % of 10 s;
    // ERC 2021 bradycardia, rules.ts): raised by A alone, on its page.
    const beforeHr = page.messages.length
    for (let i = 0; i < 12; i++, t += 1000) await device.send(t, { ...BASE, [SPO2]: 88, [HR]: 35 })
    const hr = await page.until('the heart-rate alert on A\'s page during the outage', (m): m is AlertMsg => m.type === 'alert' && m.event.alert.key === 'heart_rate' && m.event.type === 'raised', beforeHr, 20_000)
    expect(hr.event.alert.priority).toBe('high')
    expect(await healthy(a)).toBe(true)
    expect(await healthy(b)).toBe(true)

    // Redis comes back empty (no persistence, as deployed).
    await cluster.redis.restart()
    rc = new Redis(cluster.redis.url)
    await waitFor(async () => (await ready(a)) === 200 && (await ready(b)) === 200, { timeoutMs: 30_000, what: 'both processes ready again' })
    await waitFor(async () => (await a.logs()).includes('Redis came back without its data'), { timeoutMs: 15_000, what: 'A noticing the empty Redis' })
    // A new event after the restart reaches the page through the stream, though its sequence starts again below 10.
    const beforeTemp = page.messages.length
    for (let i = 0; i < 3; i++, t += 1000) await device.send(t, { ...BASE, [SPO2]: 88, [HR]: 35, 9: 34 })
    await page.until('a temperature alert after the restart', (m): m is AlertMsg => m.type === 'alert' && m.event.alert.key === 'temperature' && m.event.type === 'raised', beforeTemp, 20_000)
    const last = t - 1000
    const snap = await waitFor(async () => {
      const text = await rc!.get(`ambulink:state:${UNIT}`)
      const p = text === null ? null : JSON.parse(text) as UnitSnapshot
      return p !== null && p.lastCapturedAt >= last ? p : undefined
    }, { timeoutMs: 15_000, what: 'A\'s snapshot in Redis again' })
    expect(snap.windows?.spo2?.s).toBe(last / 1000)
    // The open alerts, the one acknowledged before the outage too, are back in the cluster book.
    const book = await waitFor(async () => {
      const all = await rc!.hgetall(`ambulink:open:${UNIT}`)
      const v = all['threshold/spo2']
      return v === undefined || all['threshold/heart_rate'] === undefined ? undefined : JSON.parse(v) as Alert
    }, { timeoutMs: 15_000, what: 'the SpO2 and heart-rate alerts in the cluster book' })
    expect(book).toMatchObject({ id: spo2.event.alert.id, raisedAt: spo2.event.alert.raisedAt, acknowledgedBy: 'dr-lee' })

    // Sessions were in the Redis that restarted empty: the clinician logs in again on B.
    const s3 = await login(b.ports.http!, 'dr-lee', password)
    const pageB = await liveFeed(b.ports.http!, s3.cookie)
    feeds.push(pageB)
    await pageB.until('B\'s snapshot', (m): m is Extract<ServerMessage, { type: 'snapshot' }> => m.type === 'snapshot')

    await a.kill()
    const mark = pageB.messages.length
    await device.connect(b.ports.mqtt!)
    for (let i = 0; i < 3; i++, t += 1000) await device.send(t, { ...BASE, [SPO2]: 88, [HR]: 35, 9: 34 })
    const took = await waitFor(async () => (await b.logs()).split('\n').find(l => l.includes('"unit taken over"') && l.includes(UNIT)), { timeoutMs: 15_000, what: 'B taking the unit over' })
    expect(JSON.parse(took)).toMatchObject({ snapshot: true })
    expect((JSON.parse(took) as { openAlerts: number }).openAlerts).toBeGreaterThanOrEqual(3)
    for (let i = 0; i < 12; i++, t += 1000) await device.send(t, { ...BASE, [SPO2]: 88, [HR]: 35, 9: 34 })
    await waitFor(async () => (await b.logs()).includes('gateway process found dead'), { timeoutMs: 30_000, what: 'B finding A dead' })
    // Nothing raised again after the failover; the SpO2 alert keeps its id and acknowledgement.
    const after = pageB.messages.slice(mark).flatMap(m => m.type === 'alert' && m.event.alert.unit === UNIT ? [m.event] : [])
    expect(after.filter(e => e.type === 'raised' || e.type === 'cleared')).toEqual([])
    for (const e of after) if (e.alert.key === 'spo2') expect(e.alert).toMatchObject({ id: book.id, acknowledgedBy: 'dr-lee' })
    expect(await healthy(b)).toBe(true)
    const logs = (await a.logs()) + (await b.logs())
    expect(logs).not.toMatch(/unhandled|UnhandledPromiseRejection/i)
  }, 180_000)
})
