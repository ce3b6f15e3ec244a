// The Redis-down path of a cluster (issue #15, docs/scale-out.md "When Redis stops"): two real
// gateway processes (children: an unhandled rejection would kill one, Node's default) and a real
// redis-server that is killed while a unit streams to A, then started again (empty: no
// persistence, as deployed). During the outage A raises the unit's SpO2 alert and its page gets
// it (A delivers it alone); neither process dies. Once Redis is back A's snapshots reach it again
// (the newest, not the outage's backlog) and the open alert is in the cluster book; a clinician
// acknowledges it; A is SIGKILLed and the unit moves to B: B takes it over, nothing is raised
// again, the acknowledgement is kept.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Alert, AlertEvent, ServerMessage, UnitSnapshot } from '../streams/index.js'
import { liveFeed, login, startCluster, TestDevice, type LiveFeed, type TestCluster } from '../testkit/cluster.js'
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
  }, 150_000)

  afterAll(async () => {
    for (const f of feeds) f.ws.terminate()
    await device?.close()
    rc?.disconnect()
    await cluster?.stop()
  })

  it('alerts go on locally, nothing crashes; snapshots resume; a failover afterwards carries the state', async () => {
    const s = await login(a.ports.http!, 'dr-lee', password)
    const page = await liveFeed(a.ports.http!, s.cookie)
    feeds.push(page)
    await device.connect(a.ports.mqtt!)
    let t = Math.floor(Date.now() / 1000) * 1000 - 120_000
    for (let i = 0; i < 3; i++, t += 1000) await device.send(t, BASE)

    await cluster.redis.kill()
    await waitFor(async () => (await ready(a)) === 503, { timeoutMs: 15_000, what: 'A reporting Redis down' })
    // SpO2 88 % (< 90 %, rules.ts) for 16 s: raised once ≥ 70 % of its 15 s window (Welch 2011).
    for (let i = 0; i < 16; i++, t += 1000) await device.send(t, { ...BASE, [SPO2]: 88 })
    const raised = await page.until('the SpO2 alert on A\'s page during the outage', spo2Event('raised'), 0, 20_000)
    expect(await healthy(a)).toBe(true)
    expect(await healthy(b)).toBe(true)

    await cluster.redis.restart()
    rc = new Redis(cluster.redis.url)
    await waitFor(async () => (await ready(a)) === 200 && (await ready(b)) === 200, { timeoutMs: 30_000, what: 'both processes ready again' })
    // Frames after Redis is back: the snapshot in Redis is the newest one, the windows in it.
    for (let i = 0; i < 3; i++, t += 1000) await device.send(t, { ...BASE, [SPO2]: 88 })
    const last = t - 1000
    const snap = await waitFor(async () => {
      const text = await rc!.get(`ambulink:state:${UNIT}`)
      const p = text === null ? null : JSON.parse(text) as UnitSnapshot
      return p !== null && p.lastCapturedAt >= last ? p : undefined
    }, { timeoutMs: 15_000, what: 'A\'s snapshot in Redis again' })
    expect(snap.windows?.spo2?.s).toBe(last / 1000)
    // The open alert raised during the outage is in the cluster book.
    const book = await waitFor(async () => {
      const all = await rc!.hgetall(`ambulink:open:${UNIT}`)
      const v = all['threshold/spo2']
      return v === undefined ? undefined : JSON.parse(v) as Alert
    }, { timeoutMs: 15_000, what: 'the SpO2 alert in the cluster book' })
    expect(book.raisedAt).toBe(raised.event.alert.raisedAt)

    // Sessions were in the Redis that restarted empty: the clinician logs in again, acknowledges.
    const s2 = await login(a.ports.http!, 'dr-lee', password)
    const ack = await fetch(`http://127.0.0.1:${a.ports.http!}/api/v1/alerts/${book.id}/ack`, { method: 'POST', headers: { cookie: s2.cookie, 'x-csrf-token': s2.csrf } })
    expect(ack.status).toBe(200)
    const s3 = await login(b.ports.http!, 'dr-lee', password)
    const pageB = await liveFeed(b.ports.http!, s3.cookie)
    feeds.push(pageB)
    await waitFor(async () => {
      const v = (await rc!.hgetall(`ambulink:open:${UNIT}`))['threshold/spo2']
      return v !== undefined && (JSON.parse(v) as Alert).acknowledgedBy === 'dr-lee'
    }, { timeoutMs: 10_000, what: 'the acknowledgement in the cluster book' })

    await a.kill()
    const mark = pageB.messages.length
    await device.connect(b.ports.mqtt!)
    for (let i = 0; i < 3; i++, t += 1000) await device.send(t, { ...BASE, [SPO2]: 88 })
    const took = await waitFor(async () => (await b.logs()).split('\n').find(l => l.includes('"unit taken over"') && l.includes(UNIT)), { timeoutMs: 15_000, what: 'B taking the unit over' })
    // SpO2 and NEWS2 (SpO2 ≤ 91 % scores 3: a single-parameter NEWS2 alert, RCP 2017).
    expect(JSON.parse(took)).toMatchObject({ snapshot: true, openAlerts: 2 })
    // B's events for the alert (a value update, at most throttled) keep it acknowledged; nothing raised again.
    for (let i = 0; i < 12; i++, t += 1000) await device.send(t, { ...BASE, [SPO2]: 88 })
    await waitFor(async () => (await b.logs()).includes('gateway process found dead'), { timeoutMs: 30_000, what: 'B finding A dead' })
    const after = pageB.messages.slice(mark).flatMap(m => m.type === 'alert' && m.event.alert.unit === UNIT ? [m.event] : [])
    expect(after.filter(e => e.type === 'raised' || e.type === 'cleared')).toEqual([])
    for (const e of after) if (e.alert.key === 'spo2') expect(e.alert).toMatchObject({ id: book.id, acknowledgedBy: 'dr-lee' })
    const open = pageB.messages.find((m): m is Extract<ServerMessage, { type: 'snapshot' }> => m.type === 'snapshot')!
    expect(open.alerts.filter(x => x.unit === UNIT && x.key === 'spo2').map(x => x.acknowledgedBy)).toEqual(['dr-lee'])
    expect(await healthy(b)).toBe(true)
    const logs = (await a.logs()) + (await b.logs())
    expect(logs).not.toMatch(/unhandled|UnhandledPromiseRejection/i)
  }, 180_000)
})
