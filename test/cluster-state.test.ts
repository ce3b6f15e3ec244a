// Alert state follows the unit (issue #15, docs/scale-out.md): two real gateway processes
// (children, SIGKILL-able) sharing a real redis-server; a device on mqtt.js; a clinician on
// mqtt.js subscribed to alerts/# on the process that survives. A deteriorating unit on A has an
// open, acknowledged SpO2 threshold alert and a NEWS2 alert; A is SIGKILLed; the unit reconnects
// to B. B takes the unit over from Redis before its first frame there (snapshot + the cluster's
// open alerts): nothing is raised again, the acknowledgement is kept, NIBP taken on A still
// scores; a further worsening on B re-alarms the acknowledged alert and escalates NEWS2 exactly
// as one process would. Frames carry device time (the physiology runs on sample time).
import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeFrame } from '../decoders/index.js'
import { addDevice, addUser } from '../gateway/credentials.js'
import type { AlertEvent, UnitSnapshot } from '../streams/index.js'
import { CLUSTER_START_TIMEOUT_MS } from '../testkit/cluster.js'
import { startGatewayProcess, type GatewayProcess } from '../testkit/gateway-process.js'
import { makeTempDir, removeTempDir, waitFor } from '../testkit/proc.js'
import { startRedis, type RedisServer } from '../testkit/redis.js'

const UNIT = 'AMB-STATE'
const HR = 1
const SPO2 = 3
const SBP = 4
const RR = 7
/** VitalSign numbers → values scoring 0 in NEWS2 except as overridden (RCP NEWS2 2017 chart). */
const BASE: Readonly<Record<number, number>> = { [RR]: 16, [SPO2]: 97, 11: 0, [HR]: 72, 10: 0, 9: 36.8 }

describe('cluster: a unit\'s alert state follows it to the surviving process', () => {
  let dir: string
  let redis: RedisServer
  let rc: Redis
  let a: GatewayProcess
  let b: GatewayProcess
  let token: string
  let password: string
  let device: MqttClient | null = null
  let clinician: MqttClient | null = null
  const heard: Array<{ at: number, ev: AlertEvent }> = []
  let seq = 0

  beforeAll(async () => {
    dir = await makeTempDir('ambulink-cluster-state-')
    redis = await startRedis()
    rc = new Redis(redis.url)
    const shared = join(dir, 'shared')
    token = await addDevice(shared, UNIT)
    password = await addUser(shared, 'dr-lee', 'clinician')
    const env = { REDIS_URL: redis.url, MAX_CONNECTIONS_PER_IP: '0', LOGIN_MAX_FAILURES_PER_IP: '0' }
    const start = async (name: string): Promise<GatewayProcess> => {
      const dataDir = join(dir, name)
      await mkdir(dataDir, { recursive: true, mode: 0o700 })
      await symlink(join(shared, 'credentials.json'), join(dataDir, 'credentials.json'))
      // Generous: the machine running the tests may be loaded.
      return await startGatewayProcess({ dataDir, env, startTimeoutMs: CLUSTER_START_TIMEOUT_MS })
    }
    a = await start('a')
    b = await start('b')
    clinician = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.ports.mqtt!}`, { username: 'dr-lee', password, clientId: 'dr-lee', reconnectPeriod: 0 })
    clinician.on('message', (topic, payload) => { if (topic === `alerts/${UNIT}`) heard.push({ at: Date.now(), ev: JSON.parse(payload.toString()) as AlertEvent }) })
    await clinician.subscribeAsync('alerts/#', { qos: 1 })
  }, 2 * CLUSTER_START_TIMEOUT_MS + 60_000)

  afterAll(async () => {
    await device?.endAsync(true)
    await clinician?.endAsync(true)
    await a?.stop()
    await b?.stop()
    rc?.disconnect()
    await redis?.stop()
    if (dir !== undefined) await removeTempDir(dir)
  })

  async function send (t: number, vitals: Record<number, number>): Promise<void> {
    const numerics = Object.entries({ ...BASE, ...vitals }).map(([sign, value]) => ({ sign: Number(sign), value, offsetMs: 0 }))
    await device!.publishAsync(`units/${UNIT}/telemetry`, Buffer.from(encodeFrame({
      unitId: UNIT, bootId: 'boot-1', seq: ++seq, capturedAtMs: t, encounterId: `enc-${UNIT}`, numerics
    })), { qos: 1 })
  }

  async function until (what: string, pred: (e: AlertEvent) => boolean, from = 0, timeoutMs = 15_000): Promise<AlertEvent> {
    let found: AlertEvent | undefined
    await waitFor(async () => (found = heard.slice(from).map(h => h.ev).find(pred)) !== undefined, { timeoutMs, intervalMs: 20, what })
    return found!
  }

  it('SIGKILL of the holder: nothing re-raised, the acknowledgement kept, a worsening re-alarms and escalates as on one process', async () => {
    device = await mqtt.connectAsync(`mqtt://127.0.0.1:${a.ports.mqtt!}`, { username: UNIT, password: token, clientId: UNIT, reconnectPeriod: 0 })
    // 20 s of device time, one frame a second: SpO2 88 % (< 90 % for ≥ 15 s: the threshold
    // rule, rules.ts) and RR 25 (NEWS2 3 + SpO2 88 → 3 = urgent, RCP 2017); NIBP 125 only once,
    // as a cuff does (it stays valid for NEWS2 staleness, news2.ts).
    let t = Date.now() - 40_000
    for (let i = 0; i < 20; i++, t += 1000) await send(t, i === 0 ? { [SPO2]: 88, [RR]: 25, [SBP]: 125 } : { [SPO2]: 88, [RR]: 25 })
    const spo2 = await until('SpO2 raised', e => e.type === 'raised' && e.alert.key === 'spo2')
    const news = await until('NEWS2 raised', e => e.type === 'raised' && e.alert.kind === 'news2')
    expect(news.alert.priority).toBe('medium')

    // Acknowledged by a clinician on A (HTTP, the dashboard's path).
    const login = await fetch(`http://127.0.0.1:${a.ports.http!}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'dr-lee', password }) })
    expect(login.status).toBe(200)
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!
    const csrf = (await login.json() as { csrfToken: string }).csrfToken
    const ack = await fetch(`http://127.0.0.1:${a.ports.http!}/api/v1/alerts/${spo2.alert.id}/ack`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf } })
    expect(ack.status).toBe(200)
    await until('acknowledged', e => e.type === 'acknowledged' && e.alert.id === spo2.alert.id)

    // A's snapshot of the unit is in Redis (written within a second of the last change).
    const snap = await waitFor(async () => {
      const s = await rc.get(`ambulink:state:${UNIT}`)
      const parsed = s === null ? null : JSON.parse(s) as UnitSnapshot
      return parsed !== null && parsed.lastCapturedAt >= t - 1000 ? parsed : undefined
    }, { timeoutMs: 10_000, what: 'the unit snapshot in Redis' })
    expect(snap.readings.nibp_systolic?.value).toBe(125)

    // SIGKILL A; the device reconnects to B and goes on where it was.
    await device.endAsync(true)
    await a.kill()
    const killedAt = Date.now()
    const mark = heard.length
    device = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.ports.mqtt!}`, { username: UNIT, password: token, clientId: UNIT, reconnectPeriod: 0 })
    // Two frames as before (no NIBP: B knows it only from A's snapshot).
    for (let i = 0; i < 2; i++, t += 1000) await send(t, { [SPO2]: 88, [RR]: 25 })
    const takeOver = await waitFor(async () => (await b.logs()).split('\n').find(l => l.includes('"unit taken over"') && l.includes(UNIT)), { timeoutMs: 10_000, what: 'B taking the unit over' })
    const took = JSON.parse(takeOver) as { snapshot: boolean, openAlerts: number, ms: number }
    expect(took).toMatchObject({ snapshot: true, openAlerts: 2 })

    // A further worsening on B: SpO2 84 % (≤ 85 %: critical, high priority, rules.ts) and HR 125
    // (111–130: NEWS2 2, below the 130 bpm threshold rule): NEWS2 3 + 3 + 2 + NIBP 125 (0) … = emergency (≥ 7, RCP 2017) once it holds for
    // ≥ 70 % of the 10 s raise window.
    const worseFrom = heard.length
    for (let i = 0; i < 12; i++, t += 1000) await send(t, { [SPO2]: 84, [RR]: 25, [HR]: 125 })
    const realarm = await until('the SpO2 alert re-alarmed on B', e => e.alert.id === spo2.alert.id && e.type === 'updated' && e.alert.priority === 'high', worseFrom)
    const realarmMs = Date.now() - killedAt
    expect(realarm.alert).toMatchObject({ acknowledgedAt: null, acknowledgedBy: null, raisedAt: spo2.alert.raisedAt })
    expect(realarm.alert.realarms).toBeGreaterThanOrEqual(1)
    const emergency = await until('NEWS2 escalated to emergency on B', e => e.alert.id === news.alert.id && e.type === 'updated' && e.alert.priority === 'high', worseFrom)
    expect(emergency.alert.raisedAt).toBe(news.alert.raisedAt)

    const after = heard.slice(mark).map(h => h.ev)
    expect(after.filter(e => e.type === 'raised'), 'nothing raised again after the failover').toEqual([])
    expect(after.filter(e => e.type === 'cleared'), 'nothing forgotten').toEqual([])
    // Before the worsening, B's events (if any) kept the acknowledgement.
    for (const e of heard.slice(mark, worseFrom).map(h => h.ev)) if (e.alert.id === spo2.alert.id) expect(e.alert.acknowledgedBy).toBe('dr-lee')
    console.log(JSON.stringify({ takeOver: { redisReadMs: took.ms, realarmOnSurvivorMsAfterKill: realarmMs } }))
  }, 120_000)
})
