// Issue #9 end to end: a real gateway, devices on mqtt.js, a clinician on mosquitto_sub
// subscribed to alerts/#. Frames carry device time, so the physiology (windows of 10–15 s) runs
// on sample time and the test sends a minute of it in a burst; the link and the people run on the
// gateway clock, shortened by configuration (signal loss 2 s, escalation 1.5 s, device-alarm hold
// 1 s). Shown over MQTT: an acknowledged alert that worsens alarms again; flapping SpO2 raises
// and stays; a VF reported once latches and escalates; a slow link raises once; a probe falling
// off keeps the SpO2 alert and raises its own; a healthy unit raises nothing.
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeFrame, type FrameInit } from '../decoders/index.js'
import type { AlertEvent } from '../streams/alerts/index.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { mosquittoSub, type MosquittoSub } from '../testkit/mosquitto.js'
import { waitFor } from '../testkit/proc.js'

/** VitalSign numbers → values scoring 0 in NEWS2 (RR, SpO2, O2, SBP, HR, ACVPU, temperature). */
const NORMAL: Readonly<Record<number, number>> = { 7: 16, 3: 97, 11: 0, 4: 125, 1: 72, 10: 0, 9: 36.8 }
const HR = 1
const SPO2 = 3
const SBP = 4
const RR = 7

let tg: TestGateway
let sub: MosquittoSub
const devices = new Map<string, MqttClient>()
const seqs = new Map<string, number>()
let healthy: NodeJS.Timeout | null = null

beforeAll(async () => {
  tg = await startTestGateway({ signalLossMs: 2_000, alertEscalateMs: 1_500, alertDeviceAlarmHoldMs: 1_000 })
  const password = await tg.addUser('dr-lee', 'clinician')
  sub = await mosquittoSub({ port: tg.gw.ports.mqtt!, username: 'dr-lee', password, id: 'dr-lee', topic: 'alerts/#', qos: 1, timeoutMs: 300_000 })
  for (const unit of ['amb-ack', 'amb-flap', 'amb-vf', 'amb-link', 'amb-probe', 'amb-ok']) {
    const token = await tg.addDevice(unit)
    devices.set(unit, await mqtt.connectAsync(tg.mqttUrl, { username: unit, password: token, clientId: unit, reconnectPeriod: 0 }))
  }
  // The healthy unit streams in real time throughout.
  healthy = setInterval(() => { void send('amb-ok', Date.now(), {}) }, 300)
})

afterAll(async () => {
  if (healthy !== null) clearInterval(healthy)
  for (const d of devices.values()) await d.endAsync(true)
  await sub?.stop()
  await tg?.close()
})

async function send (unit: string, t: number, vitals: Record<number, number | undefined>, extra: Partial<FrameInit> = {}): Promise<void> {
  const seq = (seqs.get(unit) ?? 0) + 1
  seqs.set(unit, seq)
  const merged = { ...NORMAL, ...vitals }
  const numerics = Object.entries(merged).filter(([, v]) => v !== undefined).map(([sign, value]) => ({ sign: Number(sign), value: value!, offsetMs: 0 }))
  await devices.get(unit)!.publishAsync(`units/${unit}/telemetry`, Buffer.from(encodeFrame({
    unitId: unit, bootId: 'boot-1', seq, capturedAtMs: t, encounterId: `enc-${unit}`, numerics, ...extra
  })), { qos: 1 })
}

/** Sends `n` frames of device time one second apart, ending now. */
async function burst (unit: string, n: number, vitals: (i: number) => Record<number, number | undefined>, from = Date.now() - n * 1000): Promise<number> {
  for (let i = 0; i < n; i++) await send(unit, from + i * 1000, vitals(i))
  return from + n * 1000
}

function events (unit: string): AlertEvent[] {
  return sub.messages.filter(m => m.topic === `alerts/${unit}`).map(m => JSON.parse(m.payload.toString('utf8')) as AlertEvent)
}

async function until (unit: string, what: string, pred: (e: AlertEvent) => boolean, timeoutMs = 10_000): Promise<AlertEvent> {
  let found: AlertEvent | undefined
  await waitFor(async () => (found = events(unit).find(pred)) !== undefined, { timeoutMs, intervalMs: 20, what })
  return found!
}

describe('alerts a clinician can trust, over MQTT', () => {
  it('an acknowledged NEWS2 alert that worsens is unacknowledged again on alerts/#', async () => {
    const start = Date.now() - 60_000
    const t = await burst('amb-ack', 12, () => ({ [RR]: 25, [SPO2]: 93 }), start)   // NEWS2 5
    const raised = await until('amb-ack', 'news2 raised', e => e.type === 'raised' && e.alert.kind === 'news2')
    expect(raised.alert.priority).toBe('medium')
    tg.gw.alerts.acknowledge(raised.alert.id, 'dr-lee')
    await until('amb-ack', 'acknowledged', e => e.type === 'acknowledged')
    await burst('amb-ack', 12, () => ({ [RR]: 25, [SPO2]: 93, [HR]: 135, [SBP]: 105 }), t)   // NEWS2 9
    const worse = await until('amb-ack', 'worsened', e => e.type === 'updated' && e.alert.priority === 'high')
    expect(worse.alert).toMatchObject({ id: raised.alert.id, acknowledgedAt: null, acknowledgedBy: null, realarms: 1 })
    await until('amb-ack', 'escalated', e => e.type === 'escalated' && e.alert.id === raised.alert.id)
  })

  it('flapping SpO2 (85 % for 9 s, 92 % for 1 s) raises and stays raised', async () => {
    await burst('amb-flap', 40, i => ({ [SPO2]: i % 10 === 9 ? 92 : 85 }))
    const raised = await until('amb-flap', 'spo2 raised', e => e.type === 'raised' && e.alert.key === 'spo2')
    expect(raised.alert).toMatchObject({ kind: 'threshold', priority: 'medium' })
    await until('amb-flap', 'news2 raised', e => e.type === 'raised' && e.alert.kind === 'news2')
    expect(events('amb-flap').filter(e => e.type === 'cleared' && e.alert.kind !== 'signal_loss')).toEqual([])
  })

  it('a VF reported once latches and escalates; a medium alarm times out', async () => {
    await send('amb-vf', Date.now(), {}, { alarms: [{ code: 'VF', priority: 3, text: 'Ventricular fibrillation', offsetMs: 0 }, { code: 'LEADS', priority: 2, text: '', offsetMs: 0 }] })
    const vf = await until('amb-vf', 'VF raised', e => e.type === 'raised' && e.alert.key === 'VF')
    expect(vf.alert.priority).toBe('high')
    await until('amb-vf', 'LEADS timed out', e => e.type === 'cleared' && e.alert.key === 'LEADS')
    await until('amb-vf', 'VF escalated twice', e => e.type === 'escalated' && e.alert.key === 'VF' && e.alert.escalations >= 2)
    expect(events('amb-vf').filter(e => e.alert.key === 'VF' && e.type === 'cleared')).toEqual([])
    expect(tg.gw.alerts.openAlerts().find(a => a.id === vf.alert.id)).toBeDefined()
  })

  it('a link delivering a frame every 2.2 s (signal loss after 2 s) raises signal loss once and never clears it', async () => {
    const t0 = Date.now()
    for (let i = 0; i < 6; i++) {
      await send('amb-link', Date.now(), {})
      // The link's own pace: the next frame 2.2 s after this one (gateway clock; the engine's
      // 1 s tick sees each silence pass the 2 s limit).
      await waitFor(async () => Date.now() >= t0 + (i + 1) * 2_200, { timeoutMs: 5_000, intervalMs: 50, what: `frame ${i + 1} due` })
    }
    await until('amb-link', 'signal loss', e => e.type === 'raised' && e.alert.kind === 'signal_loss')
    const loss = events('amb-link').filter(e => e.alert.kind === 'signal_loss')
    expect(loss.filter(e => e.type === 'raised')).toHaveLength(1)
    expect(loss.filter(e => e.type === 'cleared')).toEqual([])
  })

  it('a probe falling off keeps the SpO2 alert open and raises its own stream-loss alert', async () => {
    const t = await burst('amb-probe', 20, () => ({ [SPO2]: 80 }), Date.now() - 40_000)
    const spo2 = await until('amb-probe', 'spo2 raised', e => e.type === 'raised' && e.alert.key === 'spo2')
    expect(spo2.alert.priority).toBe('high')
    await burst('amb-probe', 15, () => ({ [SPO2]: undefined }), t)
    const off = await until('amb-probe', 'probe off', e => e.type === 'raised' && e.alert.kind === 'stream_loss')
    expect(off.alert).toMatchObject({ key: 'spo2', value: 80 })
    expect(tg.gw.alerts.get(spo2.alert.id)).toMatchObject({ clearedAt: null, value: 80 })
    expect(events('amb-probe').filter(e => e.type === 'cleared' && (e.alert.kind === 'threshold' || e.alert.kind === 'news2'))).toEqual([])
  })

  it('the healthy unit streaming alongside raised nothing', () => {
    expect(events('amb-ok')).toEqual([])
  })
})
