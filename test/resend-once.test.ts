// A resend is evaluated and drawn once. A device's QoS 1 resend (DUP) of a frame whose first copy
// is still being written, or was acknowledged without the device getting the PUBACK, is stored
// again (idempotent) but is not handed to the live consumers a second time: the alert engine
// raises nothing twice, the dashboard's ECG ring holds its 250 ms once (the backfill shows each
// sample once, in order). Below the gateway, each consumer also holds its own line for a resend
// or a late frame that reaches it anyway (a restart forgets what ingest handed over; a cluster
// peer never saw it): the ECG STEMI window is neither restarted nor fed twice, the hub's rings,
// assessment and encounter do not go back in time.
//
// Mock, and why: a real disk cannot be made to hold one fsync for as long as a test needs, so the
// spool's group commit awaits a test hook before its fdatasync (streams/storage/sync-hook.ts),
// as in test/alert-priority-path.test.ts. Everything else is real: the gateway, mqtt.js devices,
// the engine and hub classes with decoded frames from the simulator's 12-lead monitor.
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { encodeFrame, FrameDecoder, type Frame, type FrameInit } from '../decoders/index.js'
import { UnitFrameSource } from '../simulator/frame-source.js'
import { AlertEngine, type AlertEvent } from '../streams/alerts/index.js'
import { LiveHub } from '../streams/live/hub.js'
import { decodeEcgChunk, type EcgChunk, type ServerMessage } from '../streams/live/protocol.js'
import type { LiveSink } from '../streams/live/subscriber.js'
import { setSpoolSyncHook } from '../streams/storage/sync-hook.js'
import { holdFsyncs } from '../testkit/hold-fsyncs.js'
import { HANDED_OVER_WINDOW, HandedOver } from '../gateway/handed-over.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { waitFor } from '../testkit/proc.js'

const decoder = new FrameDecoder()
/** IEC 60601-1-8 high priority (AlarmPriority 3): raised at once by the frame that carries it. */
const HIGH = 3
const N = 125 // samples per lead per frame: 250 ms at 500 Hz
const T0 = Date.now() - 600_000

/** The µV value of lead l at absolute sample k of the unit's stream. */
const sampleValue = (l: number, k: number): number => ((k * 7 + l * 131) % 2001) - 1000

/** Frame `seq` (1-based) of a 250 ms grid: 12 leads of known samples, a heart rate. */
function frameInit (unit: string, seq: number, o: { encounter?: string, extra?: Partial<FrameInit> } = {}): FrameInit {
  const startMs = T0 + (seq - 1) * 250
  const first = (seq - 1) * N
  return {
    unitId: unit,
    bootId: 'boot-1',
    seq,
    capturedAtMs: startMs,
    encounterId: o.encounter ?? 'enc-1',
    numerics: [{ sign: 1, value: 70 + (seq % 10), offsetMs: 0 }],
    waveforms: Array.from({ length: 12 }, (_, l) => ({ lead: l + 1, sampleRateHz: 500, microvoltsPerLsb: 1, offsetMs: 0, samples: Array.from({ length: N }, (_, k) => sampleValue(l, first + k)) })),
    ...o.extra
  }
}
const bytesOf = (unit: string, seq: number, o: Parameters<typeof frameInit>[2] = {}): Buffer => Buffer.from(encodeFrame(frameInit(unit, seq, o)))
const decoded = (unit: string, seq: number, o: Parameters<typeof frameInit>[2] = {}): Frame => decoder.decode(encodeFrame(frameInit(unit, seq, o)), unit, T0 + seq * 250 + 1000)

/** An in-memory dashboard socket: what the hub sends to one page. */
function page (): LiveSink & { text: ServerMessage[], ecg: EcgChunk[] } {
  const s = {
    text: [] as ServerMessage[],
    ecg: [] as EcgChunk[],
    send (data: string | Uint8Array, cb: (err?: Error) => void): void {
      if (typeof data === 'string') s.text.push(JSON.parse(data) as ServerMessage)
      else s.ecg.push(decodeEcgChunk(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer)!)
      cb()
    },
    close (): void {},
    terminate (): void {}
  }
  return s
}

/** A page's backfill of `unit`: lead l's samples in ring order (index → µV). */
function backfill (hub: LiveHub, unit: string, lead: number): Array<[number, number]> {
  const p = page()
  const sub = hub.subscribe(p, { name: 'dr-test', role: 'clinician' })
  onTestFinished(() => { sub.unsubscribe() })
  sub.handle({ type: 'hello', watch: [unit], resume: {} })
  const out: Array<[number, number]> = []
  for (const c of p.ecg) {
    let off = 0
    for (let l = 0; l < 12; l++) {
      if ((c.leadMask & (1 << l)) === 0) continue
      if (l === lead) for (let i = 0; i < c.n; i++) out.push([c.startIndex + i, c.samples.getInt16(off + i * 2, true)])
      off += c.n * 2
    }
  }
  return out
}

describe('through the gateway: a QoS 1 resend reaches the live consumers once', () => {
  let tg: TestGateway
  const events: AlertEvent[] = []
  beforeAll(async () => {
    tg = await startTestGateway()
    tg.gw.alerts.on('alert', e => { events.push(e) })
  }, 180_000)
  afterEach(() => { setSpoolSyncHook(null) })
  afterAll(async () => { setSpoolSyncHook(null); await tg?.close() })

  async function device (unit: string, token: string): Promise<MqttClient> {
    const c = await mqtt.connectAsync(tg.mqttUrl, { username: unit, password: token, clientId: unit, reconnectPeriod: 0 })
    onTestFinished(async () => { await c.endAsync(true) })
    return c
  }

  it('resent while its first copy is in flight, and after its PUBACK was lost: evaluated once, drawn once, stored twice (idempotent)', async () => {
    const unit = 'amb-resend'
    const token = await tg.addDevice(unit)
    const validated: number[] = []
    const onValidated = (f: Frame): void => { if (f.unitId === unit) validated.push(Number(f.seq)) }
    tg.gw.ingest.on('validated', onValidated)
    onTestFinished(() => { tg.gw.ingest.off('validated', onValidated) })
    const replayed = async (): Promise<number> => (await tg.gw.metrics.framesReplayed.get()).values[0]?.value ?? 0
    const replayedBefore = await replayed()
    let ingestCalls = 0
    const ingest = tg.gw.ingest.ingest
    tg.gw.ingest.ingest = async function (u, bytes, transport) {
      if (u === unit) ingestCalls++
      return await ingest.call(this, u, bytes, transport)
    }
    onTestFinished(() => { tg.gw.ingest.ingest = ingest })

    // 1. The first copy's fsync is held; the device loses its connection and resends on a new one.
    const held = holdFsyncs()
    onTestFinished(held.release)
    const vf = bytesOf(unit, 1, { extra: { alarms: [{ code: 'VF', priority: HIGH, text: 'VF', offsetMs: 0 }] } })
    const first = await device(unit, token)
    void first.publishAsync(`units/${unit}/telemetry`, vf, { qos: 1 }).catch(() => {})
    await held.reached
    await waitFor(async () => events.some(e => e.alert.unit === unit && e.alert.key === 'VF'), { timeoutMs: 10_000, intervalMs: 2, what: 'VF raised' })
    first.stream.destroy()
    const again = await device(unit, token)
    const resent = again.publishAsync(`units/${unit}/telemetry`, vf, { qos: 1, dup: true })
    // The resend reaches ingest while the first copy's fsync is still held (it joins the same
    // group commit): seen by wrapping ingest() (an observer: it calls the real one).
    await waitFor(async () => ingestCalls >= 2 ? true : undefined, { timeoutMs: 10_000, intervalMs: 2, what: 'the resend in ingest' })
    held.release()
    await resent

    // 2. Acknowledged, then resent (the device did not get the PUBACK).
    await again.publishAsync(`units/${unit}/telemetry`, bytesOf(unit, 2), { qos: 1 })
    await again.publishAsync(`units/${unit}/telemetry`, bytesOf(unit, 2), { qos: 1, dup: true })
    for (let seq = 3; seq <= 8; seq++) await again.publishAsync(`units/${unit}/telemetry`, bytesOf(unit, seq), { qos: 1 })
    // 3. A resend of an older frame, long acknowledged.
    await again.publishAsync(`units/${unit}/telemetry`, bytesOf(unit, 4), { qos: 1, dup: true })

    expect(validated).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(events.filter(e => e.alert.unit === unit).map(e => `${e.type} ${e.alert.key}`)).toEqual(['raised VF'])
    // Both copies are in the spool: the resends count as replays (InfluxDB gets the same points).
    expect(await replayed()).toBe(replayedBefore + 3)
    // The dashboard: 8 frames, 2 s, every sample once and in order.
    for (const lead of [0, 6, 11]) {
      const got = backfill(tg.gw.live, unit, lead)
      expect(got.map(([i]) => i)).toEqual(Array.from({ length: 8 * N }, (_, i) => i))
      expect(got.map(([, v]) => v)).toEqual(Array.from({ length: 8 * N }, (_, k) => sampleValue(lead, k)))
    }
  }, 180_000)

  it('a device that reuses one seq for every frame (never sets it: 0) still has each new frame evaluated', async () => {
    const unit = 'amb-seq0'
    const token = await tg.addDevice(unit)
    const validated: number[] = []
    const onValidated = (f: Frame): void => { if (f.unitId === unit) validated.push(f.capturedAtMs) }
    tg.gw.ingest.on('validated', onValidated)
    onTestFinished(() => { tg.gw.ingest.off('validated', onValidated) })
    const c = await device(unit, token)
    const at = (k: number, extra: Partial<FrameInit> = {}): Buffer => Buffer.from(encodeFrame({ ...frameInit(unit, k), seq: 0, ...extra }))
    for (let k = 1; k <= 3; k++) await c.publishAsync(`units/${unit}/telemetry`, at(k), { qos: 1 })
    await c.publishAsync(`units/${unit}/telemetry`, at(4, { alarms: [{ code: 'VF', priority: HIGH, text: 'VF', offsetMs: 0 }] }), { qos: 1 })
    await c.publishAsync(`units/${unit}/telemetry`, at(4, { alarms: [{ code: 'VF', priority: HIGH, text: 'VF', offsetMs: 0 }] }), { qos: 1, dup: true }) // a true resend
    expect(validated).toEqual([1, 2, 3, 4].map(k => T0 + (k - 1) * 250))
    expect(events.filter(e => e.alert.unit === unit).map(e => `${e.type} ${e.alert.key}`)).toEqual(['raised VF'])
  }, 180_000)
})

describe('the ECG STEMI watch: a resend or a late frame neither restarts nor feeds the 10 s window twice', () => {
  const START = Date.UTC(2026, 0, 5, 9, 0, 0)
  /** `seconds` of a simulated inferior STEMI as decoded 250 ms frames, without the device's interpretation (the gateway's measurement alone). */
  function stemiFrames (seconds: number): Frame[] {
    const src = new UnitFrameSource({ unitId: 'amb-st', startMs: START, profile: 'stemi', seed: 7, stemi: 'inferior' })
    const out: Frame[] = []
    for (let i = 0; i < seconds * 4; i++) out.push({ ...decoder.decode(src.nextFrame().bytes, 'amb-st', START + (i + 1) * 250), interpretation: null })
    return out
  }
  /** Feeds a fresh engine as `feed` says; the `raised` event and the frame (seq) that raised it. */
  async function run (feed: (push: (f: Frame) => void, frames: Frame[]) => void): Promise<{ raisedAt: number, events: AlertEvent[] }> {
    const engine = await AlertEngine.open({ dir: null, tickIntervalMs: 0, now: () => START })
    onTestFinished(async () => { await engine.close() })
    const events: AlertEvent[] = []
    let fed = 0
    let raisedAt = -1
    engine.on('alert', e => {
      if (e.alert.kind !== 'stemi' || e.alert.key !== 'ecg') return
      events.push(e)
      if (e.type === 'raised' && raisedAt < 0) raisedAt = fed
    })
    feed(f => { fed = Number(f.seq); engine.onFrame(f, f.capturedAtMs) }, stemiFrames(12))
    return { raisedAt, events }
  }

  it('each frame resent at once, and an older frame arriving late: the alert is raised once, on the same frame and with the same figures as without them', async () => {
    const clean = await run((push, frames) => { for (const f of frames) push(f) })
    expect(clean.raisedAt).toBeGreaterThan(0)
    expect(clean.events.filter(e => e.type === 'raised')).toHaveLength(1)

    const noisy = await run((push, frames) => {
      frames.forEach((f, i) => {
        push(f)
        push(f) // the QoS 1 resend (after a restart ingest no longer knows it was handed over)
        if (i >= 8 && i % 8 === 0) push(frames[i - 5]!) // a late frame of 1.25 s ago
      })
    })
    // Before the fix every resend restarted the 10 s window: never raised.
    expect(noisy.raisedAt).toBe(clean.raisedAt)
    const raised = noisy.events.filter(e => e.type === 'raised')
    expect(raised).toHaveLength(1)
    expect(raised[0]!.alert.message).toBe(clean.events.find(e => e.type === 'raised')!.alert.message)
    expect(noisy.events.map(e => e.type)).toEqual(clean.events.map(e => e.type))
  })

  it('ECG chunks sent when full, after a vitals frame measured meanwhile (not newer, yet the tracing\'s continuation): the alert is raised as without it', async () => {
    const clean = await run((push, frames) => { for (const f of frames) push(f) })
    const split = await run((push, frames) => {
      frames.forEach((f, i) => {
        // Once a second the monitor sends its vitals at once (100 ms into the chunk being
        // filled, its own seq); the chunk follows when its 250 ms are full.
        if (i % 4 === 0) push({ ...f, seq: String(100_000 + i), capturedAtMs: f.capturedAtMs + 100, waveforms: [] })
        push({ ...f, numerics: [] })
      })
    })
    // The very first chunk comes after the first vitals frame with no tracing to continue: taken,
    // as no tracing is held yet (once left out, so the alert came one chunk later). Before the
    // fix, never raised.
    expect(split.raisedAt).toBe(clean.raisedAt)
    expect(split.events.filter(e => e.type === 'raised')).toHaveLength(1)
  })
})

describe('the live hub: late data stays out of the live view', () => {
  function hub (): LiveHub {
    const h = new LiveHub({ hospital: { name: 'H', latitude: 45.744, longitude: 4.9055 } })
    onTestFinished(() => h.close())
    return h
  }

  it('a resend or an older frame writes nothing into the ECG ring; the backfill holds every sample once, in order', () => {
    const h = hub()
    for (let seq = 1; seq <= 6; seq++) {
      h.push(decoded('amb-h', seq))
      h.push(decoded('amb-h', seq)) // resent at once
      if (seq > 2) h.push(decoded('amb-h', seq - 2)) // and an older one, late
    }
    const got = backfill(h, 'amb-h', 3)
    expect(got.map(([i]) => i)).toEqual(Array.from({ length: 6 * N }, (_, i) => i))
    expect(got.map(([, v]) => v)).toEqual(Array.from({ length: 6 * N }, (_, k) => sampleValue(3, k)))
  })

  it('an older frame does not replace a newer assessment, trend value or position', () => {
    const h = hub()
    const withA = (seq: number, lams: number, hr: number): Frame => decoded('amb-a', seq, {
      extra: {
        numerics: [{ sign: 1, value: hr, offsetMs: 0 }],
        position: { latitude: 45 + seq / 100, longitude: 4.85, speedMps: 10, headingDeg: 90, offsetMs: 0 },
        assessment: { stemiSuspected: false, lamsScore: lams, fastPositive: lams > 0, lastKnownWellMs: 0, ageYears: 70, sex: 'F' }
      }
    })
    h.push(withA(1, 1, 70))
    h.push(withA(3, 4, 90)) // 500 ms later: same 1 s trend row
    h.push(withA(2, 2, 80)) // 250 ms older, arriving last
    const snap = h.snapshot({ name: 'dr', role: 'clinician' })
    if (snap.type !== 'snapshot') throw new Error('no snapshot')
    const v = snap.units.find(u => u.unit === 'amb-a')!
    expect(v.assessment?.lamsScore).toBe(4)
    expect(v.numerics.heart_rate?.value).toBe(90)
    expect(v.position?.latitude).toBeCloseTo(45.03)
    expect(v.row?.values[0]).toBe(90)
    expect(v.row?.position?.[0]).toBeCloseTo(45.03)
  })

  it('a late frame of the previous encounter does not reset the current patient\'s trend and ECG', () => {
    const h = hub()
    for (let seq = 1; seq <= 4; seq++) h.push(decoded('amb-e', seq, { encounter: 'enc-old' }))
    for (let seq = 5; seq <= 8; seq++) h.push(decoded('amb-e', seq, { encounter: 'enc-new' }))
    const before = h.snapshot({ name: 'dr', role: 'clinician' })
    h.push(decoded('amb-e', 3, { encounter: 'enc-old' })) // stored, but not the patient on screen
    const after = h.snapshot({ name: 'dr', role: 'clinician' })
    if (before.type !== 'snapshot' || after.type !== 'snapshot') throw new Error('no snapshot')
    const b = before.units.find(u => u.unit === 'amb-e')!
    const a = after.units.find(u => u.unit === 'amb-e')!
    expect(a.encounter).toBe('enc-new')
    expect(a.trendEpoch).toBe(b.trendEpoch)
    expect(a.ecg).toEqual(b.ecg)
    expect(a.trendNext).toBe(b.trendNext)
  })
})

describe('the live hub: a new patient whose device clock is behind', () => {
  it('is shown at once: a frame of an encounter the unit never had, older than the newest shown (clock corrected back), replaces the previous patient', () => {
    const h = new LiveHub({ hospital: { name: 'H', latitude: 45.744, longitude: 4.9055 } })
    onTestFinished(() => h.close())
    for (let seq = 5; seq <= 8; seq++) h.push(decoded('amb-c', seq, { encounter: 'enc-old' }))
    // Same boot, later seqs, but the device clock went back 1 s: the next patient, heart rate 150.
    for (let k = 1; k <= 2; k++) h.push(decoded('amb-c', k, { encounter: 'enc-next', extra: { seq: 8 + k, numerics: [{ sign: 1, value: 150, offsetMs: 0 }] } }))
    const snap = h.snapshot({ name: 'dr', role: 'clinician' })
    if (snap.type !== 'snapshot') throw new Error('no snapshot')
    const v = snap.units.find(u => u.unit === 'amb-c')!
    expect(v.encounter).toBe('enc-next')
    expect(v.numerics.heart_rate?.value).toBe(150)
    // The previous patient's late frame, after that, is still left out.
    h.push(decoded('amb-c', 1, { encounter: 'enc-old', extra: { seq: 1, numerics: [{ sign: 1, value: 40, offsetMs: 0 }] } }))
    const after = h.snapshot({ name: 'dr', role: 'clinician' })
    if (after.type !== 'snapshot') throw new Error('no snapshot')
    expect(after.units.find(u => u.unit === 'amb-c')).toMatchObject({ encounter: 'enc-next', numerics: { heart_rate: { value: 150 } } })
  })
})

describe('the live hub: an empty encounter id is no new patient', () => {
  it('a frame without an encounter id mid-encounter keeps the patient on screen: same encounter, trend and ECG go on', () => {
    const h = new LiveHub({ hospital: { name: 'H', latitude: 45.744, longitude: 4.9055 } })
    onTestFinished(() => h.close())
    for (let seq = 1; seq <= 4; seq++) h.push(decoded('amb-z', seq, { encounter: 'enc-1' }))
    const before = h.snapshot({ name: 'dr', role: 'clinician' })
    h.push(decoded('amb-z', 5, { encounter: '' })) // e.g. a monitor restarted without its assignment
    const after = h.snapshot({ name: 'dr', role: 'clinician' })
    if (before.type !== 'snapshot' || after.type !== 'snapshot') throw new Error('no snapshot')
    const b = before.units.find(u => u.unit === 'amb-z')!
    const a = after.units.find(u => u.unit === 'amb-z')!
    expect(a.encounter).toBe('enc-1')
    expect(a.trendEpoch).toBe(b.trendEpoch)
    expect(a.ecg?.epoch ?? null).toBe(b.ecg?.epoch ?? null)
    const got = backfill(h, 'amb-z', 3)
    expect(got.map(([i]) => i)).toEqual(Array.from({ length: 5 * N }, (_, i) => i))
  })
})

describe('what ingest remembers it handed over (gateway/handed-over.ts)', () => {
  it('tells a resend within the window; lets through what it cannot tell (older than the window, another boot, past 2^53), never withholds a new frame', () => {
    const h = new HandedOver()
    const W = HANDED_OVER_WINDOW
    expect(h.first('u', 'b1', '5', 1000)).toBe(true)
    expect(h.first('u', 'b1', '5', 1000)).toBe(false) // resend
    expect(h.first('u', 'b1', '3', 1000)).toBe(true) // late, never seen
    expect(h.first('u', 'b1', '3', 1000)).toBe(false)
    expect(h.first('u', 'b1', '4', 1000)).toBe(true)
    expect(h.first('u2', 'b1', '5', 1000)).toBe(true) // another unit
    // A jump: the seqs skipped are new, whatever their slots held a window ago.
    expect(h.first('u', 'b1', String(5 + W), 1000)).toBe(true)
    expect(h.first('u', 'b1', String(5 + W - 1), 1000)).toBe(true)
    expect(h.first('u', 'b1', '5', 1000)).toBe(true) // older than the window: unknown, let through
    expect(h.first('u', 'b1', String(4 + W + 2), 1000)).toBe(true)
    expect(h.first('u', 'b1', String(4 + W + 2), 1000)).toBe(false)
    // A far jump clears everything.
    expect(h.first('u', 'b1', String(10 * W), 1000)).toBe(true)
    expect(h.first('u', 'b1', String(10 * W - 3), 1000)).toBe(true)
    // A new boot starts over: its seq 5 is a new frame.
    expect(h.first('u', 'b2', '5', 1000)).toBe(true)
    expect(h.first('u', 'b2', '5', 1000)).toBe(false)
    // Past 2^53 a number cannot tell neighbours apart: always handed over.
    expect(h.first('u', 'b2', '18446744073709551615', 1000)).toBe(true)
    expect(h.first('u', 'b2', '18446744073709551615', 1000)).toBe(true)
    // The same seq with another capture time is another frame (a device reusing seqs): handed over.
    expect(h.first('u', 'b2', '7', 1000)).toBe(true)
    expect(h.first('u', 'b2', '7', 1250)).toBe(true)
    expect(h.first('u', 'b2', '7', 1250)).toBe(false)
  })

  it('announces a frame as stored at its first stored copy only; again where it cannot tell (older than the window, another boot, another frame in the slot, past 2^53)', () => {
    const h = new HandedOver()
    const W = HANDED_OVER_WINDOW
    // Stored, then its resend stored: announced once.
    expect(h.first('u', 'b1', '5', 1000)).toBe(true)
    expect(h.firstStored('u', 'b1', '5', 1000)).toBe(true)
    expect(h.first('u', 'b1', '5', 1000)).toBe(false)
    expect(h.firstStored('u', 'b1', '5', 1000)).toBe(false)
    // Refused by the spool (handed over, never stored), then its resend stored: announced then.
    expect(h.first('u', 'b1', '6', 2000)).toBe(true)
    expect(h.first('u', 'b1', '6', 2000)).toBe(false)
    expect(h.firstStored('u', 'b1', '6', 2000)).toBe(true)
    expect(h.firstStored('u', 'b1', '6', 2000)).toBe(false)
    // Handing over a resend again changes nothing about its being announced.
    expect(h.first('u', 'b1', '6', 2000)).toBe(false)
    expect(h.firstStored('u', 'b1', '6', 2000)).toBe(false)
    // Another unit's seq 5 is its own frame.
    expect(h.first('u2', 'b1', '5', 1000)).toBe(true)
    expect(h.firstStored('u2', 'b1', '5', 1000)).toBe(true)
    // The same seq with another capture time is another frame (a device reusing seqs): announced.
    expect(h.first('u', 'b1', '5', 1250)).toBe(true)
    expect(h.firstStored('u', 'b1', '5', 1250)).toBe(true)
    // ... and the first frame of that seq, no longer in the slot, cannot be told: announced again.
    expect(h.firstStored('u', 'b1', '5', 1000)).toBe(true)
    // Older than the window: announced again.
    expect(h.first('u', 'b1', String(6 + W), 3000)).toBe(true)
    expect(h.firstStored('u', 'b1', '6', 2000)).toBe(true)
    // Another boot started since: a copy of the previous boot's frame is announced again.
    expect(h.first('u', 'b2', '1', 4000)).toBe(true)
    expect(h.firstStored('u', 'b1', String(6 + W), 3000)).toBe(true)
    // A unit never handed over (a restart forgot it), and seqs past 2^53: announced every time.
    expect(h.firstStored('fresh', 'b1', '1', 1000)).toBe(true)
    expect(h.firstStored('fresh', 'b1', '1', 1000)).toBe(true)
    expect(h.first('u', 'b2', '18446744073709551615', 5000)).toBe(true)
    expect(h.firstStored('u', 'b2', '18446744073709551615', 5000)).toBe(true)
    expect(h.firstStored('u', 'b2', '18446744073709551615', 5000)).toBe(true)
  })
})
