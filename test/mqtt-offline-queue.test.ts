// Issue #10, item 13: messages queued for a persistent (clean=false) clinician session are capped
// per client (MAX_QUEUED_PER_CLIENT). A clinician's pager goes offline while many alert events are
// published through the real alert engine (STEMI pre-notifications, device alarms raised and ended);
// on reconnect it gets at most the cap, and among them the current state of every open alert.
// Real gateway, mqtt.js clients, frames and status messages over MQTT; once on one process (the
// queue in memory) and once in cluster mode with a real redis-server (the queue in Redis).
import { Redis } from 'ioredis'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeFrame } from '../decoders/index.js'
import { victim } from '../gateway/mqtt/offline-queue.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { waitFor } from '../testkit/proc.js'
import { startRedis, type RedisServer } from '../testkit/redis.js'

const CAP = 10
const STEMI_UNITS = ['amb-q1', 'amb-q2', 'amb-q3']
const ALARMS = 'amb-alarms'
const LOW_ALARMS = 20

interface Ev { type: string, alert: { id: string, kind: string, priority: string, clearedAt: number | null } }

for (const mode of ['memory', 'redis'] as const) {
describe(`offline queue of a persistent clinician session (${mode})`, () => {
  let tg: TestGateway
  let redis: RedisServer | undefined
  const tokens = new Map<string, string>()
  let password: string
  const clients: MqttClient[] = []

  async function device (unit: string): Promise<MqttClient> {
    const c = await mqtt.connectAsync(tg.mqttUrl, { username: unit, password: tokens.get(unit)!, clientId: unit, reconnectPeriod: 0 })
    clients.push(c)
    return c
  }

  function frame (unit: string, stemi: boolean): Buffer {
    return Buffer.from(encodeFrame({
      unitId: unit, bootId: `boot-${unit}`, seq: stemi ? 2 : 1, capturedAtMs: Date.now(), encounterId: `enc-${unit}`,
      numerics: [{ sign: 1, value: 80, offsetMs: 0 }],
      ...(stemi ? { assessment: { stemiSuspected: true, lastKnownWellMs: 0 } } : {})
    }))
  }

  async function metric (name: string): Promise<string> {
    const r = await fetch(`${tg.httpUrl}/metrics`)
    return (await r.text()).split('\n').filter(l => l.startsWith(name)).join('\n')
  }

  beforeAll(async () => {
    if (mode === 'redis') redis = await startRedis()
    tg = await startTestGateway({ maxQueuedPerClient: CAP, ...(redis !== undefined ? { redisUrl: redis.url } : {}) })
    for (const u of [...STEMI_UNITS, ALARMS]) tokens.set(u, await tg.addDevice(u))
    password = await tg.addUser('nurse-q', 'clinician')
  })

  afterAll(async () => {
    for (const c of clients) await c.endAsync(true).catch(() => {})
    await tg?.close()
    await redis?.stop()
  })

    it('keeps at most MAX_QUEUED_PER_CLIENT, dropping superseded and cleared events first; reconnect gets every open alert', async () => {
      // The pager's persistent session, then offline.
      const pager = await mqtt.connectAsync(tg.mqttUrl, { username: 'nurse-q', password, clientId: 'nurse-q:pager', clean: false, reconnectPeriod: 0 })
      await pager.subscribeAsync('alerts/#', { qos: 1 })
      await pager.endAsync()
      // A clean-session observer sees every event as it is published (what we synchronise on).
      const seen: Ev[] = []
      const watch = await mqtt.connectAsync(tg.mqttUrl, { username: 'nurse-q', password, clientId: 'nurse-q:watch', clean: true, reconnectPeriod: 0 })
      clients.push(watch)
      watch.on('message', (_t, p) => { seen.push(JSON.parse(p.toString()) as Ev) })
      await watch.subscribeAsync('alerts/#', { qos: 1 })

      for (const u of STEMI_UNITS) {
        const d = await device(u)
        await d.publishAsync(`units/${u}/telemetry`, frame(u, false), { qos: 1 })
        await d.publishAsync(`units/${u}/telemetry`, frame(u, true), { qos: 1 })
      }
      await waitFor(async () => seen.filter(e => e.alert.kind === 'stemi').length >= STEMI_UNITS.length ? true : undefined, { timeoutMs: 10_000, intervalMs: 20, what: 'the STEMI alerts' })
      // A monitor that keeps alarming: 20 low-priority alarms each raised and ended (raised, then
      // cleared), then two medium ones that stay open.
      const mon = await device(ALARMS)
      let seq = 1
      const alarm = async (code: string, priority: number, ended: boolean): Promise<void> => {
        await mon.publishAsync(`units/${ALARMS}/telemetry`, Buffer.from(encodeFrame({
          unitId: ALARMS, bootId: 'boot-alarms', seq: seq++, capturedAtMs: Date.now(), encounterId: `enc-${ALARMS}`,
          numerics: [{ sign: 1, value: 80, offsetMs: 0 }],
          alarms: [{ code, priority, text: 'device alarm', offsetMs: 0, ended }]
        })), { qos: 1 })
      }
      for (let i = 0; i < LOW_ALARMS; i++) {
        await alarm(`LOW-${i}`, 1, false)
        await alarm(`LOW-${i}`, 1, true)
      }
      await alarm('MED-A', 2, false)
      await alarm('MED-B', 2, false)
      const expected = STEMI_UNITS.length + 2 * LOW_ALARMS + 2
      await waitFor(async () => seen.length >= expected ? true : undefined, { timeoutMs: 10_000, intervalMs: 20, what: `${expected} alert events` })
      const published = seen.length
      expect(published).toBe(expected)
      if (redis !== undefined) {
        // In Redis the dropped messages are gone too, not just unlisted: exactly CAP queued packets.
        const r = new Redis(redis.url)
        try {
          await waitFor(async () => await r.llen('outgoing:nurse-q%3Apager') === CAP ? true : undefined, { timeoutMs: 20_000, intervalMs: 20, what: 'the trimmed queue' })
          const packets = (await r.keys('packet:*')).filter(k => !k.endsWith(':offlineCount'))
          expect(packets).toHaveLength(CAP)
        } finally {
          r.disconnect()
        }
      }

      // Back online: the queue is delivered.
      const got: Ev[] = []
      // The listener is attached before any packet can arrive (connect() only starts the socket).
      const back = mqtt.connect(tg.mqttUrl, { username: 'nurse-q', password, clientId: 'nurse-q:pager', clean: false, reconnectPeriod: 0 })
      clients.push(back)
      back.on('message', (_t, p) => { got.push(JSON.parse(p.toString()) as Ev) })
      await waitFor(async () => got.length >= CAP ? true : undefined, { timeoutMs: 10_000, intervalMs: 20, what: `${CAP} queued messages` })
      const open = tg.gw.alerts.openAlerts()
      // A marker published after the queue: once it is in, everything queued has arrived.
      await alarm('MED-C', 2, false)
      await waitFor(async () => got.length > CAP ? true : undefined, { timeoutMs: 20_000, intervalMs: 10, what: 'the live event after the queue' })
      const queued = got.slice(0, -1)
      expect(queued).toHaveLength(CAP)
      // Every open alert arrives in its current state (its newest event before the reconnect).
      expect(open.map(a => `${a.kind}/${a.priority}`).sort()).toEqual(['device_alarm/medium', 'device_alarm/medium', 'stemi/high', 'stemi/high', 'stemi/high'])
      for (const a of open) {
        const newest = seen.filter(e => e.alert.id === a.id).at(-1)!
        expect(queued.some(e => JSON.stringify(e) === JSON.stringify(newest)), a.kind).toBe(true)
      }
      // Superseded 'raised' events went first, then the oldest clearings: the rest are the newest clearings.
      const cleared = queued.filter(e => e.type === 'cleared')
      expect(cleared).toHaveLength(CAP - open.length)
      expect(cleared.map(e => e.alert.id)).toEqual(seen.filter(e => e.type === 'cleared').slice(-cleared.length).map(e => e.alert.id))

      const dropped = await metric('ambulink_mqtt_offline_dropped_total')
      const n = (kind: string): number => Number(new RegExp(`kind="${kind}"\\} (\\d+)`).exec(dropped)?.[1] ?? 0)
      expect(n('superseded')).toBe(LOW_ALARMS)
      expect(n('superseded') + n('cleared')).toBe(published - CAP)
      expect(n('medium') + n('high')).toBe(0)
      expect(tg.logs()).toMatch(/AMB_ERR_OFFLINE_QUEUE_FULL/)
    })
})
}

describe('offline queue drop order', () => {
  it('chooses what to drop: superseded, then cleared, other, low, medium, high; oldest first', () => {
    const q = (rows: Array<[string, number]>): Array<{ key: string, rank: number }> => rows.map(([key, rank]) => ({ key, rank }))
    expect(victim(q([['a', 5], ['b', 1], ['a', 5]]))).toEqual({ index: 0, kind: 'superseded' })
    expect(victim(q([['a', 5], ['b', 1], ['c', 1]]))).toEqual({ index: 1, kind: 'cleared' })
    expect(victim(q([['a', 5], ['s', 2], ['b', 3]]))).toEqual({ index: 1, kind: 'other' })
    expect(victim(q([['a', 5], ['b', 4], ['c', 3], ['d', 3]]))).toEqual({ index: 2, kind: 'low' })
    expect(victim(q([['a', 5], ['b', 5]]))).toEqual({ index: 0, kind: 'high' })
  })
})
