// The clinical side of a cluster, with two real gateways in this process sharing a real
// redis-server and one credentials file (docs/scale-out.md): a dashboard session made on one
// process works on the other, and its end (logout, revocation) closes live sockets on both; a
// unit whose frames reach both processes in turn (the HTTP fallback lets a device post to any)
// gives one alert stream, identical on every process, with one `raised`; an acknowledgement
// made on the process that does not hold the alert reaches the engine that does.
import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { addDevice, addUser, revokeUser } from '../gateway/credentials.js'
import type { AlertEvent, ServerMessage } from '../streams/index.js'
import { testFrame } from '../testkit/frames.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { makeTempDir, removeTempDir, waitFor } from '../testkit/proc.js'
import { startRedis, type RedisServer } from '../testkit/redis.js'

interface Login { cookie: string, csrf: string }

async function login (httpUrl: string, name: string, password: string): Promise<Login> {
  const res = await fetch(`${httpUrl}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, password }) })
  expect(res.status).toBe(200)
  const body = await res.json() as { csrfToken: string }
  return { cookie: (res.headers.get('set-cookie') ?? '').split(';')[0]!, csrf: body.csrfToken }
}

interface Feed { ws: WebSocket, messages: ServerMessage[], closed: Promise<number> }

function feed (httpUrl: string, cookie: string): Promise<Feed> {
  return new Promise((resolve, reject) => {
    const messages: ServerMessage[] = []
    const ws = new WebSocket(`${httpUrl.replace('http', 'ws')}/api/v1/live`, { headers: { origin: httpUrl, cookie } })
    const closed = new Promise<number>(resolve => { ws.once('close', code => { resolve(code) }) })
    ws.on('message', (data, binary) => { if (!binary) messages.push(JSON.parse(data.toString()) as ServerMessage) })
    ws.once('open', () => { ws.send(JSON.stringify({ type: 'hello', watch: [], resume: {} })); resolve({ ws, messages, closed }) })
    ws.once('error', reject)
  })
}

const alertEvents = (f: Feed, unit: string): AlertEvent[] => f.messages.flatMap(m => m.type === 'alert' && m.event.alert.unit === unit ? [m.event] : [])

describe('cluster: sessions, alert stream and acknowledgements across two processes', () => {
  let dir: string
  let redis: RedisServer
  let a: TestGateway
  let b: TestGateway
  let shared: string
  const passwords: Record<string, string> = {}
  const tokens: Record<string, string> = {}
  const feeds: Feed[] = []
  let seq = 0

  beforeAll(async () => {
    dir = await makeTempDir('ambulink-cluster-unit-')
    redis = await startRedis()
    shared = join(dir, 'shared')
    for (const u of ['AMB-1', 'AMB-2']) tokens[u] = await addDevice(shared, u)
    for (const u of ['alice', 'bob']) passwords[u] = await addUser(shared, u, 'clinician')
    const start = async (name: string): Promise<TestGateway> => {
      const dataDir = join(dir, name)
      await mkdir(dataDir, { recursive: true, mode: 0o700 })
      await symlink(join(shared, 'credentials.json'), join(dataDir, 'credentials.json'))
      return await startTestGateway({ redisUrl: redis.url }, { dataDir })
    }
    a = await start('a')
    b = await start('b')
  }, 60_000)

  afterAll(async () => {
    for (const f of feeds) f.ws.terminate()
    await a?.stop()
    await b?.stop()
    await redis?.stop()
    if (dir !== undefined) await removeTempDir(dir)
  })

  async function post (gw: TestGateway, unit: string, systolic: number): Promise<void> {
    const bytes = testFrame({ unit, seq: ++seq, capturedAtMs: Date.now(), encounter: `enc-${unit}`, extra: { numerics: [{ sign: 1, value: 70, offsetMs: 0 }, { sign: 4, value: systolic, offsetMs: 0 }] } })
    const res = await fetch(`${gw.httpUrl}/api/v1/units/${unit}/telemetry`, { method: 'POST', headers: { authorization: `Bearer ${tokens[unit]!}`, 'content-type': 'application/x-protobuf' }, body: Buffer.from(bytes) })
    expect(res.status).toBe(200)
  }

  it('a session made on A works on B; logout on A closes its live socket on B; revocation ends sessions everywhere', async () => {
    const s = await login(a.httpUrl, 'alice', passwords.alice!)
    expect((await fetch(`${b.httpUrl}/api/v1/session`, { headers: { cookie: s.cookie } })).status).toBe(200)
    const onB = await feed(b.httpUrl, s.cookie)
    feeds.push(onB)
    await waitFor(async () => onB.messages.some(m => m.type === 'snapshot'), { timeoutMs: 20_000, what: 'snapshot on B' })
    const out = await fetch(`${a.httpUrl}/api/v1/session`, { method: 'DELETE', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } })
    expect(out.status).toBe(204)
    expect(await onB.closed).toBe(4001)
    expect((await fetch(`${b.httpUrl}/api/v1/session`, { headers: { cookie: s.cookie } })).status).toBe(401)

    // Revocation (the CLI rewrites the shared file; each process reloads it): both sockets close.
    const bob = await login(b.httpUrl, 'bob', passwords.bob!)
    const bobA = await feed(a.httpUrl, bob.cookie)
    const bobB = await feed(b.httpUrl, bob.cookie)
    feeds.push(bobA, bobB)
    await revokeUser(shared, 'bob')
    expect(await bobA.closed).toBe(4001)
    expect(await bobB.closed).toBe(4001)
    for (const g of [a, b]) expect((await fetch(`${g.httpUrl}/api/v1/session`, { headers: { cookie: bob.cookie } })).status).toBe(401)
  })

  it('frames of one unit reaching both processes in turn: one alert stream, identical everywhere, raised once', async () => {
    const s = await login(a.httpUrl, 'alice', passwords.alice!)
    const fa = await feed(a.httpUrl, s.cookie)
    const fb = await feed(b.httpUrl, s.cookie)
    feeds.push(fa, fb)
    await waitFor(async () => fa.messages.some(m => m.type === 'snapshot') && fb.messages.some(m => m.type === 'snapshot'), { timeoutMs: 20_000, what: 'snapshots' })
    // Systolic 80 mmHg raises at once (nibp_systolic < 90, no duration; 95 clears it, no clear
    // duration). On A; then the unit's frames reach B (a failover: A's engine keeps its state).
    await post(a, 'AMB-1', 80)
    const first = await waitFor(async () => alertEvents(fb, 'AMB-1')[0], { timeoutMs: 20_000, what: 'A\'s alert on B' })
    expect(first.type).toBe('raised')
    await post(b, 'AMB-1', 78)
    // B's engine raises its own: the stream continues A's alert (same id), as an update.
    const continued = await waitFor(async () => alertEvents(fa, 'AMB-1')[1], { timeoutMs: 20_000, what: 'B continuing the alert' })
    expect(continued).toMatchObject({ type: 'updated', alert: { id: first.alert.id, raisedAt: first.alert.raisedAt } })
    await post(b, 'AMB-1', 150)
    await waitFor(async () => alertEvents(fa, 'AMB-1').some(e => e.type === 'cleared'), { timeoutMs: 20_000, what: 'the clear' })
    await post(b, 'AMB-1', 80)
    await waitFor(async () => alertEvents(fa, 'AMB-1').filter(e => e.type === 'raised').length >= 2, { timeoutMs: 20_000, what: 'a new episode raised' })
    await waitFor(async () => alertEvents(fb, 'AMB-1').length === alertEvents(fa, 'AMB-1').length, { timeoutMs: 20_000, what: 'both feeds level' })
    const onA = alertEvents(fa, 'AMB-1')
    expect(alertEvents(fb, 'AMB-1'), 'the same events, in the same order, on both processes').toEqual(onA)
    // Per episode (alert id): one raised, first; nothing after its clear.
    const ids = [...new Set(onA.map(e => e.alert.id))]
    for (const id of ids) {
      const ev = onA.filter(e => e.alert.id === id)
      expect(ev[0]!.type).toBe('raised')
      expect(ev.filter(e => e.type === 'raised')).toHaveLength(1)
      const cleared = ev.findIndex(e => e.type === 'cleared')
      if (cleared >= 0) expect(cleared).toBe(ev.length - 1)
    }
  })

  it('an acknowledgement made on B reaches the engine on A that holds the alert', async () => {
    await post(a, 'AMB-2', 80)
    const id = await waitFor(async () => a.gw.alerts.openAlerts().find(x => x.unit === 'AMB-2')?.id, { timeoutMs: 20_000, what: 'the alert on A' })
    expect(b.gw.alerts.get(id), 'B\'s engine does not hold it').toBeNull()
    const s = await login(b.httpUrl, 'alice', passwords.alice!)
    const res = await fetch(`${b.httpUrl}/api/v1/alerts/${id}/ack`, { method: 'POST', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } })
    expect(res.status).toBe(200)
    expect(a.gw.alerts.get(id)?.acknowledgedBy).toBe('alice')
    const unknown = await fetch(`${b.httpUrl}/api/v1/alerts/no-such-alert/ack`, { method: 'POST', headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } })
    expect(unknown.status).toBe(404)
  })
})
