// Scale-out: two gateway processes sharing a real redis-server (REDIS_URL), each with its own
// DATA_DIR (spool, alert journal) and one shared credentials file linked into both, writing to
// one real InfluxDB. A device streams to A while a clinician on B receives A's alerts; A is
// SIGKILLed; the device fails over to B (as behind a TCP load balancer) and carries on; A is
// restarted on its DATA_DIR (as a supervisor would) and drains what it had acknowledged; every
// acknowledged frame is then counted in InfluxDB. A clinician whose process died finds its
// session, with the alerts queued meanwhile, on the other process.
import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { addDevice, addUser } from '../gateway/credentials.js'
import { AlertProbes } from '../loadtest/bench-alerts.js'
import { countLost, readMetrics, waitForDrain } from '../testkit/stored.js'
import { startRedis, type RedisServer } from '../testkit/redis.js'
import { startGatewayProcess, type GatewayProcess } from '../testkit/gateway-process.js'
import { createDatabase, startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { makeTempDir, removeTempDir, waitFor } from '../testkit/proc.js'

const DB = 'ambulink'

interface Seen { topic: string, payload: string, at: number }

function watch (url: string, clientId: string, password: string, topics: string[], opts: { clean?: boolean, subscribe?: boolean } = {}): Promise<{ client: MqttClient, seen: Seen[], sessionPresent: boolean }> {
  return new Promise((resolve, reject) => {
    const seen: Seen[] = []
    const client = mqtt.connect(url, { clientId, username: 'doc', password, clean: opts.clean ?? true, reconnectPeriod: 0 })
    client.on('message', (topic, payload) => { seen.push({ topic, payload: payload.toString(), at: Date.now() }) })
    client.once('error', reject)
    client.once('connect', ack => {
      if (opts.subscribe === false) return resolve({ client, seen, sessionPresent: ack.sessionPresent })
      client.subscribe(topics, { qos: 1 }, err => { if (err) reject(err); else resolve({ client, seen, sessionPresent: ack.sessionPresent }) })
    })
  })
}

const alertsOf = (seen: Seen[], after = 0): Seen[] => seen.filter(m => m.topic === 'alerts/amb-1' && m.at >= after)

describe('scale-out: two gateway processes on one Redis', () => {
  let dir: string
  let redis: RedisServer
  let influx: InfluxServer
  let a: GatewayProcess
  let b: GatewayProcess
  let token: string
  let password: string
  const clients: MqttClient[] = []
  let probes: AlertProbes | null = null

  beforeAll(async () => {
    dir = await makeTempDir('ambulink-scale-out-')
    ;[redis, influx] = await Promise.all([startRedis(), startInfluxDB({ logLevel: 'warn' })])
    await createDatabase(influx.url, DB)
    // One credentials file, shared: each DATA_DIR links to it (the README (Scale-out)).
    const shared = join(dir, 'credentials')
    token = await addDevice(shared, 'amb-1')
    password = await addUser(shared, 'doc', 'clinician')
    const env = { REDIS_URL: redis.url, INFLUX_URL: influx.url, INFLUX_API: 'v1', INFLUX_DB: DB }
    const start = async (name: string): Promise<GatewayProcess> => {
      const dataDir = join(dir, name)
      await mkdir(dataDir, { recursive: true, mode: 0o700 })
      await symlink(join(shared, 'credentials.json'), join(dataDir, 'credentials.json'))
      return await startGatewayProcess({ dataDir, env })
    }
    ;[a, b] = await Promise.all([start('a'), start('b')])
  })

  afterAll(async () => {
    await probes?.stop(1000).catch(() => {})
    for (const c of clients) c.end(true)
    await Promise.all([a?.stop(), b?.stop()])
    await Promise.all([redis?.stop(), influx?.stop()])
    if (dir !== undefined) await removeTempDir(dir)
  })

  it('routes A\'s alerts to a clinician on B, moves the device and a clinician session to B when A dies, and loses no acknowledged frame', async () => {
    // Each process reports its Redis link in /readyz (what a load balancer's health check reads).
    const ready = await (await fetch(`http://127.0.0.1:${b.ports.http}/readyz`)).json() as { checks: Record<string, { ok: boolean }> }
    expect(ready.checks.redis?.ok).toBe(true)

    const urlA = `mqtt://127.0.0.1:${a.ports.mqtt}`
    const urlB = `mqtt://127.0.0.1:${b.ports.mqtt}`
    // A clinician on B watching alerts and unit status; another, with a persistent session, on A.
    const watcher = await watch(urlB, 'doc:watch', password, ['alerts/#', 'units/+/status'])
    const onA = await watch(urlA, 'doc:session', password, ['alerts/#'], { clean: false })
    clients.push(watcher.client, onA.client)

    // The device: 12-lead frames every 250 ms, systolic 80/120 mmHg alternating each second
    // (an alert raised, then cleared, every second); A first, B on reconnect (mqtt.js `servers`
    // rotates, as a load balancer would send it elsewhere), clean=false.
    probes = new AlertProbes({
      url: urlA,
      clinicianUrl: urlB,
      units: ['amb-1'],
      token,
      clinician: { name: 'doc', password },
      log: () => {},
      clean: false,
      deviceMqttOptions: { servers: [{ host: '127.0.0.1', port: a.ports.mqtt! }, { host: '127.0.0.1', port: b.ports.mqtt! }] }
    })
    await probes.connect()
    probes.start(Date.now())

    // Routing across processes: status and alerts published on A reach the clinician on B.
    await waitFor(async () => alertsOf(watcher.seen).length >= 2 && watcher.seen.some(m => m.topic === 'units/amb-1/status' && m.payload === 'online'), { timeoutMs: 15_000, what: 'A\'s alerts and status on B' })
    expect(alertsOf(onA.seen).length, 'the clinician on A sees them too').toBeGreaterThanOrEqual(1)

    await a.kill()
    const killedAt = Date.now()
    // The device reconnects, to B this time, and its alerts keep coming (now raised by B).
    await waitFor(async () => probes!.linkStats()[0]!.connects >= 2 && alertsOf(watcher.seen, killedAt).length >= 2, { timeoutMs: 15_000, what: 'the device streaming to B after A died' })
    const acceptedOnB = (await readMetrics(`http://127.0.0.1:${b.ports.http}`)).get('ambulink_frames_accepted_total') ?? 0
    expect(acceptedOnB, 'B ingests the device\'s frames').toBeGreaterThan(0)

    // The clinician whose process died reconnects to B: its session (subscription, and the
    // QoS 1 alerts queued while it was away) is there.
    const resumed = await watch(urlB, 'doc:session', password, [], { clean: false, subscribe: false })
    clients.push(resumed.client)
    expect(resumed.sessionPresent).toBe(true)
    await waitFor(async () => alertsOf(resumed.seen).length >= 1, { timeoutMs: 10_000, what: 'queued alerts delivered to the resumed session' })

    // A few more seconds on B, then the device stops (waiting for its last PUBACKs).
    await waitFor(async () => probes!.linkStats()[0]!.generated >= 40, { timeoutMs: 15_000, what: '10 s of frames' })
    await probes.stop()
    // A comes back on its DATA_DIR and drains what it had acknowledged before it died.
    await a.restart()
    await waitForDrain([`http://127.0.0.1:${a.ports.http}`, `http://127.0.0.1:${b.ports.http}`], 20_000)
    const lost = await countLost(influx.url, DB, probes.reports())
    expect(lost.checked, 'frames acknowledged').toBeGreaterThanOrEqual(40)
    expect(lost.lost, `acknowledged frames missing from InfluxDB: ${lost.unitsWithLoss.join(', ')}`).toBe(0)
  })
})
