// The alert priority path (issue 12, goal 2): a real gateway with a real InfluxDB, devices and a
// clinician on mqtt.js, a dashboard on a real WebSocket. Alerts are evaluated on the validated
// frame and delivered while the frame's spool append (write + fdatasync) is still in flight: the
// device's PUBACK (or HTTP answer) waits for durability, the alert does not. A frame the spool
// refuses has raised its alert; its resend is stored once and raises nothing again.
//
// Mock, and why: a real disk cannot be made to hold one fsync for as long as a test needs, nor to
// fail one with EIO on demand, so the spool's group commit awaits a test hook before its
// fdatasync (streams/storage/sync-hook.ts). The test holds that fsync (or fails it once) and
// synchronises on the events it causes, never on sleeps. Everything else is real.
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import WebSocket from 'ws'
import { encodeFrame, type Frame, type FrameInit } from '../decoders/index.js'
import type { AlertEvent } from '../streams/alerts/index.js'
import type { ServerMessage } from '../streams/live/protocol.js'
import { setSpoolSyncHook } from '../streams/storage/sync-hook.js'
import { holdFsyncs } from '../testkit/hold-fsyncs.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { waitFor } from '../testkit/proc.js'

const DB = 'amb_prio'
/** NEWS2 0 everywhere (RCP NEWS2 2017 chart 1): RR 16, SpO2 97, air, SBP 125, HR 72, alert, 36.8 °C. */
const NORMAL: ReadonlyArray<readonly [number, number]> = [[7, 16], [3, 97], [11, 0], [4, 125], [1, 72], [10, 0], [9, 36.8]]
/** IEC 60601-1-8 high priority (AlarmPriority 3): raised at once by the frame that carries it, latched. */
const HIGH = 3

let influx: InfluxServer
let tg: TestGateway
let clinician: MqttClient
const alerts: AlertEvent[] = []

function frame (unit: string, seq: number, extra: Partial<FrameInit> = {}): Buffer {
  return Buffer.from(encodeFrame({
    unitId: unit,
    bootId: 'boot-1',
    seq,
    capturedAtMs: Date.now() - 60_000 + seq * 1000,
    encounterId: `enc-${unit}`,
    numerics: NORMAL.map(([sign, value]) => ({ sign, value, offsetMs: 0 })),
    ...extra
  }))
}

const alarm = (code: string): Partial<FrameInit> => ({ alarms: [{ code, priority: HIGH, text: code, offsetMs: 0 }] })

/** Tracks a promise's settlement without awaiting it. */
function track<T> (p: Promise<T>): { settled: () => boolean, promise: Promise<T> } {
  let done = false
  const promise = p.finally(() => { done = true })
  return { settled: () => done, promise }
}

async function device (unit: string, token: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(tg.mqttUrl, { username: unit, password: token, clientId: unit, reconnectPeriod: 0 })
  onTestFinished(async () => { await c.endAsync(true) })
  return c
}

async function alertArrived (unit: string, key: string, type = 'raised'): Promise<AlertEvent> {
  return await waitFor(async () => alerts.find(e => e.alert.unit === unit && e.alert.key === key && e.type === type), { timeoutMs: 20_000, intervalMs: 2, what: `${type} ${unit}/${key} on alerts/#` })
}

beforeAll(async () => {
  influx = await startInfluxDB()
  tg = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: DB, influxLingerMs: 50 })
  const password = await tg.addUser('dr-prio', 'clinician')
  clinician = await mqtt.connectAsync(tg.mqttUrl, { username: 'dr-prio', password, clientId: 'dr-prio', reconnectPeriod: 0 })
  clinician.on('message', (_topic, payload) => { alerts.push(JSON.parse(payload.toString()) as AlertEvent) })
  await clinician.subscribeAsync('alerts/#', { qos: 1 })
})

afterEach(() => { setSpoolSyncHook(null) })

afterAll(async () => {
  setSpoolSyncHook(null)
  await clinician?.endAsync(true)
  await tg?.close()
  await influx?.stop()
})

describe('alerts before storage', () => {
  it('an alert reaches MQTT and the dashboard socket while the PUBACK of its frame still waits for the fsync', async () => {
    const token = await tg.addDevice('amb-held')
    const dev = await device('amb-held', token)
    // A dashboard page (real login, real WebSocket): it receives alert events.
    const password = await tg.addUser('dr-page', 'clinician')
    const login = await fetch(`${tg.httpUrl}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'dr-page', password }) })
    expect(login.status).toBe(200)
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!
    const ws = new WebSocket(`${tg.httpUrl.replace('http', 'ws')}/api/v1/live`, { headers: { cookie, origin: tg.httpUrl } })
    onTestFinished(() => { ws.terminate() })
    const page: ServerMessage[] = []
    ws.on('message', (data, binary) => { if (!binary) page.push(JSON.parse(data.toString()) as ServerMessage) })
    await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    ws.send(JSON.stringify({ type: 'hello', watch: [], resume: {} }))
    await waitFor(async () => page.some(m => m.type === 'snapshot'), { timeoutMs: 10_000, intervalMs: 5, what: 'dashboard snapshot' })

    const before = await accepted('mqtt')
    const held = holdFsyncs()
    onTestFinished(held.release)
    const acked = track(dev.publishAsync('units/amb-held/telemetry', frame('amb-held', 1, alarm('VF')), { qos: 1 }))
    await held.reached
    const ev = await alertArrived('amb-held', 'VF')
    expect(ev.alert.priority).toBe('high')
    await waitFor(async () => page.some(m => m.type === 'alert' && m.event.alert.unit === 'amb-held' && m.event.alert.key === 'VF'), { timeoutMs: 10_000, intervalMs: 2, what: 'the alert on the dashboard socket' })
    // Both arrived while the frame was not yet durable: no PUBACK, nothing counted as accepted.
    expect(acked.settled()).toBe(false)
    expect(await accepted('mqtt')).toBe(before)

    held.release()
    await acked.promise
    expect(await accepted('mqtt')).toBe(before + 1)
    // Stored: its heart rate reaches InfluxDB through the spool.
    await waitFor(async () => (await heartRates('amb-held')).length === 1, { timeoutMs: 30_000, intervalMs: 100, what: 'the frame in InfluxDB' })
  })

  it('frames of one unit reach the engine in arrival order, before any is durable, and are announced as stored in the same order', async () => {
    const validated: number[] = []
    const stored: number[] = []
    const onValidated = (f: Frame): void => { if (f.unitId === 'amb-order') validated.push(Number(f.seq)) }
    const onStored = (f: Frame): void => { if (f.unitId === 'amb-order') stored.push(Number(f.seq)) }
    tg.gw.ingest.on('validated', onValidated)
    tg.gw.ingest.on('frame', onStored)
    onTestFinished(() => { tg.gw.ingest.off('validated', onValidated); tg.gw.ingest.off('frame', onStored) })

    const held = holdFsyncs()
    onTestFinished(held.release)
    const results = [1, 2, 3, 4, 5].map(seq => track(tg.gw.ingest.ingest('amb-order', frame('amb-order', seq, seq === 3 ? alarm('ASYSTOLE') : {}), 'test')))
    await held.reached
    expect(validated).toEqual([1, 2, 3, 4, 5])
    await alertArrived('amb-order', 'ASYSTOLE')
    expect(results.some(r => r.settled())).toBe(false)
    expect(stored).toEqual([])

    held.release()
    for (const r of results) expect((await r.promise).ok).toBe(true)
    expect(stored).toEqual([1, 2, 3, 4, 5])
  })

  it('HTTP ingest takes the same path: the alert is out before the 200', async () => {
    const token = await tg.addDevice('amb-http')
    const held = holdFsyncs()
    onTestFinished(held.release)
    const answer = track(fetch(`${tg.httpUrl}/api/v1/units/amb-http/telemetry`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-protobuf' },
      body: new Uint8Array(frame('amb-http', 1, alarm('VT')))
    }))
    await alertArrived('amb-http', 'VT')
    expect(answer.settled()).toBe(false)
    held.release()
    const res = await answer.promise
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ accepted: true, seq: '1', replay: false })
  })

  it('a frame the spool refuses raises its alert once; the device is not acknowledged, resends it, and it is stored once without a second evaluation', async () => {
    const unit = 'amb-refused'
    const token = await tg.addDevice(unit)
    const validated: number[] = []
    const onValidated = (f: Frame): void => { if (f.unitId === unit) validated.push(Number(f.seq)) }
    tg.gw.ingest.on('validated', onValidated)
    onTestFinished(() => { tg.gw.ingest.off('validated', onValidated) })
    const acceptedBefore = await accepted('mqtt')
    const replayedBefore = await counter('ambulink_frames_replayed_total')

    // The disk fails the fsync that covers this frame (as EIO would): the spool refuses it.
    let failed = false
    setSpoolSyncHook(async () => {
      if (failed) return
      failed = true
      throw Object.assign(new Error('EIO: i/o error, fdatasync (injected)'), { code: 'EIO' })
    })
    const first = await device(unit, token)
    const closed = new Promise<void>(resolve => { first.once('close', () => { resolve() }) })
    const bytes = frame(unit, 1, alarm('VF'))
    void first.publishAsync(`units/${unit}/telemetry`, bytes, { qos: 1 }).catch(() => {})
    // The alert is out (the frame was measured); the device gets no PUBACK: it is disconnected.
    const raised = await alertArrived(unit, 'VF')
    await closed
    expect(tg.logs()).toContain('frame not spooled; disconnecting device')
    expect(await accepted('mqtt')).toBe(acceptedBefore)

    // The spool recovers by itself (probe of the real disk); the device reconnects and resends.
    await waitFor(async () => tg.gw.spool.faulted === null, { timeoutMs: 20_000, intervalMs: 20, what: 'the spool to recover' })
    first.removeAllListeners('close')
    await first.endAsync(true)
    const again = await device(unit, token)
    await again.publishAsync(`units/${unit}/telemetry`, bytes, { qos: 1 })
    // The next frame raises another alarm: once it is on alerts/#, anything the resend caused would
    // have arrived before it (one publisher, QoS 1, in order).
    await again.publishAsync(`units/${unit}/telemetry`, frame(unit, 2, alarm('LEADS-OFF')), { qos: 1 })
    await alertArrived(unit, 'LEADS-OFF')

    const mine = alerts.filter(e => e.alert.unit === unit)
    expect(mine.map(e => `${e.type} ${e.alert.key}`)).toEqual(['raised VF', 'raised LEADS-OFF'])
    expect(mine[0]!.alert.id).toBe(raised.alert.id)
    // Evaluated once, stored once: the resend was accepted (and is not a replay of a stored frame).
    expect(validated).toEqual([1, 2])
    expect(await accepted('mqtt')).toBe(acceptedBefore + 2)
    expect(await counter('ambulink_frames_replayed_total')).toBe(replayedBefore)
    await waitFor(async () => (await heartRates(unit)).length === 2, { timeoutMs: 30_000, intervalMs: 100, what: 'both frames in InfluxDB' })
  })
})

async function counter (name: string, label = ''): Promise<number> {
  const text = await tg.gw.metrics.registry.getSingleMetricAsString(name)
  const line = text.split('\n').find(l => l.startsWith(`${name}${label} `))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

async function accepted (transport: string): Promise<number> { return await counter('ambulink_frames_accepted_total', `{transport="${transport}"}`) }

async function heartRates (unit: string): Promise<unknown[]> {
  const r = await influx.query(`SELECT heart_rate FROM vitals WHERE "unit" = '${unit}'`, DB, { epoch: 'ms' }) as { results?: Array<{ series?: Array<{ values?: unknown[] }> }> }
  return r.results?.[0]?.series?.[0]?.values ?? []
}
