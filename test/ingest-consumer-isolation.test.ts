// A live consumer of validated frames that throws (a bug in the dashboard's live hub, say) must not
// fail the frame: the device is acknowledged, the frame is stored once (no resend), the alert
// engine still evaluates it, the other consumers still get it, and the failure is logged (unit id,
// never the encounter) and counted in ambulink_frame_consumer_errors_total{consumer}. A real
// gateway, a real InfluxDB, devices on mqtt.js and HTTP.
//
// Mock, and why: the live hub has no bug a test could trigger on demand, so the test replaces the
// hub's push() for one unit with one that throws, as a hub bug would. Everything else is real.
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import type { Frame } from '../decoders/index.js'
import type { AlertEvent } from '../streams/alerts/index.js'
import { testFrame, expectedPoints } from '../testkit/frames.js'
import { startInfluxDB, influxCount, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { waitFor } from '../testkit/proc.js'

const DB = 'amb_consumers'
/** IEC 60601-1-8 high priority (AlarmPriority 3): raised at once by the frame that carries it. */
const HIGH = 3

let influx: InfluxServer
let tg: TestGateway
let clinician: MqttClient
const alerts: AlertEvent[] = []

beforeAll(async () => {
  influx = await startInfluxDB()
  tg = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: DB, influxLingerMs: 50 })
  const password = await tg.addUser('dr-consumers', 'clinician')
  clinician = await mqtt.connectAsync(tg.mqttUrl, { username: 'dr-consumers', password, clientId: 'dr-consumers', reconnectPeriod: 0 })
  clinician.on('message', (_topic, payload) => { alerts.push(JSON.parse(payload.toString()) as AlertEvent) })
  await clinician.subscribeAsync('alerts/#', { qos: 1 })
}, 180_000) // InfluxDB and the gateway start slowly on a loaded machine

afterAll(async () => {
  await clinician?.endAsync(true)
  await tg?.close()
  await influx?.stop()
}, 60_000)

/** The live hub throws on every frame of `unit` (as a hub bug would), until the test ends. */
function breakHubFor (unit: string): void {
  const hub = tg.gw.live
  const push = hub.push
  hub.push = function (f: Frame): void {
    if (f.unitId === unit) throw new Error('live hub bug (injected by the test)')
    push.call(this, f)
  }
  onTestFinished(() => { hub.push = push })
}

/** Records the seqs of `unit` a listener registered after the live hub receives. */
function laterListener (unit: string): number[] {
  const got: number[] = []
  const l = (f: Frame): void => { if (f.unitId === unit) got.push(Number(f.seq)) }
  tg.gw.ingest.on('validated', l)
  onTestFinished(() => { tg.gw.ingest.off('validated', l) })
  return got
}

async function counter (name: string, label = ''): Promise<number> {
  const text = await tg.gw.metrics.registry.getSingleMetricAsString(name)
  const line = text.split('\n').find(l => l.startsWith(`${name}${label} `))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

const consumerErrors = async (consumer: string): Promise<number> => await counter('ambulink_frame_consumer_errors_total', `{consumer="${consumer}"}`)

async function alertArrived (unit: string, key: string): Promise<AlertEvent> {
  return await waitFor(async () => alerts.find(e => e.alert.unit === unit && e.alert.key === key && e.type === 'raised'), { timeoutMs: 20_000, intervalMs: 5, what: `alert ${unit}/${key} on alerts/#` })
}

/** Waits until InfluxDB holds `ecg` ECG points of the unit, then checks they stay exact (no duplicate instants). */
async function storedOnce (unit: string, frames: number): Promise<void> {
  const want = expectedPoints()
  await waitFor(async () => (await influxCount(influx.url, DB, 'ecg', 'i', `"unit" = '${unit}'`)) >= want.ecg * frames, { timeoutMs: 30_000, intervalMs: 100, what: `${unit}'s ECG in InfluxDB` })
  expect(await influxCount(influx.url, DB, 'ecg', 'i', `"unit" = '${unit}'`)).toBe(want.ecg * frames)
  expect(await influxCount(influx.url, DB, 'vitals', 'heart_rate', `"unit" = '${unit}'`)).toBe(want.vitals * frames)
}

describe('a throwing frame consumer', () => {
  it('MQTT: the publish is PUBACKed, the frame stored once and evaluated, the other consumers run, the failure is counted and logged', async () => {
    const unit = 'amb-hub-bug'
    const token = await tg.addDevice(unit)
    breakHubFor(unit)
    const later = laterListener(unit)
    const errorsBefore = await consumerErrors('live_hub')
    const acceptedBefore = await counter('ambulink_frames_accepted_total', '{transport="mqtt"}')
    const replayedBefore = await counter('ambulink_frames_replayed_total')
    const dev = await mqtt.connectAsync(tg.mqttUrl, { username: unit, password: token, clientId: unit, reconnectPeriod: 0 })
    onTestFinished(async () => { await dev.endAsync(true) })
    let disconnected = false
    dev.on('close', () => { disconnected = true })

    // The first frame carries a high-priority device alarm: the engine (before the hub) raises it.
    const frame1 = testFrame({ unit, seq: 1, encounter: 'enc-secret-77', extra: { alarms: [{ code: 'VF', priority: HIGH, text: 'VF', offsetMs: 0 }] } })
    // mqtt.js resolves a QoS 1 publish on its PUBACK (and rejects when the connection closes first).
    await dev.publishAsync(`units/${unit}/telemetry`, Buffer.from(frame1), { qos: 1 })
    await dev.publishAsync(`units/${unit}/telemetry`, Buffer.from(testFrame({ unit, seq: 2, encounter: 'enc-secret-77' })), { qos: 1 })

    expect((await alertArrived(unit, 'VF')).alert.priority).toBe('high')
    expect(later).toEqual([1, 2])
    expect(disconnected).toBe(false)
    expect(await consumerErrors('live_hub')).toBe(errorsBefore + 2)
    // Acknowledged once each: nothing resent, nothing counted as a replay.
    expect(await counter('ambulink_frames_accepted_total', '{transport="mqtt"}')).toBe(acceptedBefore + 2)
    expect(await counter('ambulink_frames_replayed_total')).toBe(replayedBefore)
    await storedOnce(unit, 2)

    // Logged once (later failures of the same consumer within 10 s are only counted), with the
    // unit and the consumer, never the encounter id.
    const lines = tg.logs().split('\n').filter(l => l.includes('a frame consumer failed') && l.includes(unit))
    expect(lines).toHaveLength(1)
    const line = JSON.parse(lines[0]!) as { consumer: string, unit: string }
    expect(line).toMatchObject({ consumer: 'live_hub', unit })
    expect(tg.logs()).not.toContain('enc-secret-77')
  }, 180_000)

  it('HTTP: the same path answers 200 and stores the frame once', async () => {
    const unit = 'amb-hub-bug-http'
    const token = await tg.addDevice(unit)
    breakHubFor(unit)
    const later = laterListener(unit)
    const errorsBefore = await consumerErrors('live_hub')
    const res = await fetch(`${tg.httpUrl}/api/v1/units/${unit}/telemetry`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-protobuf' },
      body: new Uint8Array(testFrame({ unit, seq: 1, extra: { alarms: [{ code: 'VT', priority: HIGH, text: 'VT', offsetMs: 0 }] } }))
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ accepted: true, seq: '1', replay: false })
    await alertArrived(unit, 'VT')
    expect(later).toEqual([1])
    expect(await consumerErrors('live_hub')).toBe(errorsBefore + 1)
    await storedOnce(unit, 1)
  }, 180_000)

  it('a listener of stored frames that throws does not fail the frame either', async () => {
    const unit = 'amb-frame-bug'
    const token = await tg.addDevice(unit)
    const bad = (f: Frame): void => { if (f.unitId === unit) throw new Error('stored-frame consumer bug (injected by the test)') }
    tg.gw.ingest.on('frame', bad)
    onTestFinished(() => { tg.gw.ingest.off('frame', bad) })
    const errorsBefore = await consumerErrors('other')
    const res = await fetch(`${tg.httpUrl}/api/v1/units/${unit}/telemetry`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-protobuf' },
      body: new Uint8Array(testFrame({ unit, seq: 1 }))
    })
    expect(res.status).toBe(200)
    expect(await consumerErrors('other')).toBe(errorsBefore + 1)
    await storedOnce(unit, 1)
  }, 180_000)
})
