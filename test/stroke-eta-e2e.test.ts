// Issue #9, stroke at ETA in the running gateway: the gateway computes the unit's expected
// arrival from the positions in its frames and the configured hospital (HOSPITAL_LAT/LON), and
// the stroke alert a clinician receives on alerts/# (mosquitto_sub) shows the time left in the
// thrombolysis (4.5 h) and thrombectomy (24 h) windows at arrival (AHA/ASA 2019).
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeFrame, type FrameInit } from '../decoders/index.js'
import type { AlertEvent } from '../streams/alerts/index.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { mosquittoSub, type MosquittoSub } from '../testkit/mosquitto.js'
import { waitFor } from '../testkit/proc.js'

const HOSPITAL = { lat: 49.6, lon: 6.1 }
const H = 3_600_000
let tg: TestGateway | undefined
let sub: MosquittoSub | undefined
let device: MqttClient | undefined

beforeAll(async () => {
  tg = await startTestGateway({ hospitalLat: HOSPITAL.lat, hospitalLon: HOSPITAL.lon })
  const password = await tg.addUser('dr-eta', 'clinician')
  sub = await mosquittoSub({ port: tg.gw.ports.mqtt!, username: 'dr-eta', password, id: 'dr-eta', topic: 'alerts/#', qos: 1, timeoutMs: 300_000 })
  const token = await tg.addDevice('amb-eta')
  device = await mqtt.connectAsync(tg.mqttUrl, { username: 'amb-eta', password: token, clientId: 'amb-eta', reconnectPeriod: 0 })
})

afterAll(async () => {
  await device?.endAsync(true)
  await sub?.stop()
  await tg?.close()
})

let seq = 0
async function send (t: number, extra: Partial<FrameInit>): Promise<void> {
  await device!.publishAsync('units/amb-eta/telemetry', Buffer.from(encodeFrame({
    unitId: 'amb-eta', bootId: 'boot-1', seq: ++seq, capturedAtMs: t, encounterId: 'enc-eta', ...extra
  })), { qos: 1 })
}

function strokeEvents (): AlertEvent[] {
  return sub!.messages.filter(m => m.topic === 'alerts/amb-eta')
    .map(m => JSON.parse(m.payload.toString('utf8')) as AlertEvent).filter(e => e.alert.kind === 'stroke')
}

describe('stroke alert with the windows at the ambulance ETA, over MQTT', () => {
  it('positions and a stroke assessment in; the time left in each window at arrival out on alerts/#', async () => {
    const t = Date.now()
    // 0.1° due north of the hospital: 11.12 km straight, 14.46 km by road (detour 1.3), at
    // (assumed 12 m/s + current 12 m/s) / 2 = 12 m/s: 1205 s, 20 min.
    const position = { latitude: HOSPITAL.lat + 0.1, longitude: HOSPITAL.lon, speedMps: 12, headingDeg: 180, offsetMs: 0 }
    await send(t - 1000, { position })
    // Last known well exactly 3 h before: arrival 3 h 20 min 5 s after it, so 1 h 09 min of the
    // 4.5 h thrombolysis window and 20 h 39 min of the 24 h thrombectomy window remain.
    await send(t, { position, assessment: { lamsScore: 5, fastPositive: true, lastKnownWellMs: t - 3 * H } })
    let raised: AlertEvent | undefined
    await waitFor(async () => (raised = strokeEvents().find(e => e.type === 'raised')) !== undefined, { timeoutMs: 15_000, intervalMs: 20, what: 'stroke raised' })
    expect(raised!.alert.priority).toBe('high')
    expect(raised!.alert.message).toContain('at arrival in 20 min: thrombolysis 1 h 9 min left, thrombectomy 20 h 39 min left')
  })
})
