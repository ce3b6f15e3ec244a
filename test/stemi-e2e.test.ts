// End to end: a real gateway; a clinician subscribed to alerts/# with mqtt.js; two simulated
// 12-lead monitors (simulator/frame-source.ts) on mqtt.js, one with an inferior STEMI, one
// healthy. The STEMI unit's ECG raises `stemi` with key `ecg` naming II, III, aVF on
// alerts/amb-stemi; the healthy unit raises nothing. The snapshot API then returns 12 leads ×
// 10 s to a logged-in clinician and 401 without a session; the file under DATA_DIR is 0600.
import { stat } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { UnitFrameSource } from '../simulator/frame-source.js'
import type { AlertEvent } from '../streams/alerts/index.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { waitFor } from '../testkit/proc.js'

let tg: TestGateway
let clinician: MqttClient
let password: string
const devices: MqttClient[] = []
const events: Array<{ topic: string, e: AlertEvent }> = []

beforeAll(async () => {
  tg = await startTestGateway({ signalLossMs: 600_000, alertEscalateMs: 600_000 })
  password = await tg.addUser('dr-ito', 'clinician')
  clinician = await mqtt.connectAsync(tg.mqttUrl, { username: 'dr-ito', password, clientId: 'dr-ito', reconnectPeriod: 0 })
  clinician.on('message', (topic, payload) => { events.push({ topic, e: JSON.parse(payload.toString('utf8')) as AlertEvent }) })
  await clinician.subscribeAsync('alerts/#', { qos: 1 })
  for (const unit of ['amb-stemi', 'amb-ok']) {
    const token = await tg.addDevice(unit)
    devices.push(await mqtt.connectAsync(tg.mqttUrl, { username: unit, password: token, clientId: unit, reconnectPeriod: 0 }))
  }
}, 60_000)

afterAll(async () => {
  for (const d of devices) await d.endAsync(true)
  await clinician?.endAsync(true)
  await tg?.close()
})

/** Streams `seconds` of a simulated unit's frames, device time ending now, each acknowledged (QoS 1). */
async function stream (c: MqttClient, unit: string, profile: 'stemi' | 'healthy', seconds: number): Promise<UnitFrameSource> {
  const src = new UnitFrameSource({ unitId: unit, startMs: Date.now() - seconds * 1000, profile, seed: 5, stemi: 'inferior' })
  for (let i = 0; i < seconds * 4; i++) await c.publishAsync(`units/${unit}/telemetry`, src.nextFrame().bytes, { qos: 1 })
  return src
}

/**
 * Goes on sending the unit's frames in real time (one per 250 ms, a monitor's pace) until the
 * returned stop() is called. A unit that fell silent would raise ECG stream loss 10 s later on
 * the gateway clock (with signal loss set far off here), which a loaded machine reached before
 * the checks (reproduced: stream_loss/ecg on the healthy unit).
 */
function keepStreaming (c: MqttClient, unit: string, src: UnitFrameSource): () => Promise<void> {
  let on = true
  const loop = (async () => {
    while (on) {
      await c.publishAsync(`units/${unit}/telemetry`, src.nextFrame().bytes, { qos: 1 })
      await sleep(250)
    }
  })()
  return async () => { on = false; await loop }
}

describe('STEMI from the ECG, end to end', () => {
  it('a simulated STEMI unit raises stemi/ecg on alerts/# naming the leads; a healthy unit raises nothing', async () => {
    const [sick, ok] = devices as [MqttClient, MqttClient]
    const stopOk = keepStreaming(ok, 'amb-ok', await stream(ok, 'amb-ok', 'healthy', 12))
    onTestFinished(stopOk)
    await stream(sick, 'amb-stemi', 'stemi', 12)
    const ecg = await waitFor(async () => events.find(x => x.e.alert.kind === 'stemi' && x.e.alert.key === 'ecg'), { timeoutMs: 30_000, what: 'the ECG STEMI alert on alerts/#' })
    expect(ecg.topic).toBe('alerts/amb-stemi')
    expect(ecg.e.type).toBe('raised')
    expect(ecg.e.alert.priority).toBe('high')
    expect(ecg.e.alert.message).toContain('ST elevation in II, III, aVF (inferior)')
    expect(ecg.e.alert.message).toContain('device interpretation and gateway measurement')
    // The crew's suspicion arrives as its own alert.
    await waitFor(async () => events.some(x => x.e.alert.kind === 'stemi' && x.e.alert.key === ''), { timeoutMs: 20_000, what: 'the crew STEMI alert' })
    // The healthy unit's frames went in first and were processed (its NEWS2 exists), and it has
    // streamed all along: nothing from it.
    await stopOk()
    expect(tg.gw.alerts.news2For('amb-ok')).not.toBeNull()
    expect(tg.gw.alerts.alertsFor('amb-ok')).toEqual([])
    expect(events.filter(x => x.topic !== 'alerts/amb-stemi')).toEqual([])

    // The snapshot: 12 leads × 10 s at 500 Hz to a clinician with a session, 401 without.
    const id = ecg.e.alert.id
    const url = `${tg.httpUrl}/api/v1/alerts/${id}/ecg`
    expect((await fetch(url)).status).toBe(401)
    const login = await fetch(`${tg.httpUrl}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'dr-ito', password }) })
    expect(login.status).toBe(200)
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!
    const res = await fetch(url, { headers: { cookie } })
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const snap = await res.json() as { leads: string[], sampleRateHz: number, microvolts: number[][], device: { leads: string[] }, gateway: { leads: string[], stUv: Record<string, number> } }
    expect(snap.leads).toHaveLength(12)
    expect(snap.sampleRateHz).toBe(500)
    expect(snap.microvolts.map(r => r.length)).toEqual(Array(12).fill(5000))
    expect(snap.device.leads).toEqual(['II', 'III', 'aVF'])
    expect(snap.gateway.leads).toEqual(['II', 'III', 'aVF'])
    expect(snap.gateway.stUv.III).toBeGreaterThan(100)
    // Each read is logged with the user and the alert id, never the encounter.
    const read = tg.logs().split('\n').find(l => l.includes('ECG snapshot read'))
    expect(read).toContain(id)
    expect(read).toContain('dr-ito')
    expect(read).not.toContain('enc-')
    expect((await fetch(`${tg.httpUrl}/api/v1/alerts/not-an-alert/ecg`, { headers: { cookie } })).status).toBe(404)
    expect((await fetch(`${tg.httpUrl}/api/v1/alerts/..%2F..%2Fcredentials/ecg`, { headers: { cookie } })).status).toBe(400)
    // Durable under DATA_DIR, owner-only.
    const file = join(tg.dataDir, 'alerts', 'ecg', `${id}.json`)
    await waitFor(async () => (await stat(file)).isFile(), { timeoutMs: 20_000, what: 'the snapshot file' })
    expect((await stat(file)).mode & 0o777).toBe(0o600)
  }, 60_000)
})
