// A device clock set back within one boot (an NTP step) must not delay alerts (docs/alerts.md,
// "A device clock set back"). Within a boot, seq orders the frames (+1 per frame, contract v1):
// the frames after the step are new, and continue the unit's timeline, so the engine raises the
// same alerts, at the same frame and with the same sample times, as when the clock had not
// moved; the dashboard hub keeps drawing them. A backlog (lower seq) is still late, a resend
// still handed over once, a restart with the clock behind is evaluated at once. Each case runs
// the same frames twice, without and with the step, on the real engine and hub with an injected
// clock; the last one goes through a real gateway with mqtt.js devices.
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { encodeFrame, FrameDecoder, type Frame } from '../decoders/index.js'
import { UnitFrameSource } from '../simulator/frame-source.js'
import { AlertEngine, type AlertEvent } from '../streams/alerts/index.js'
import { FrameOrder, REBOOT_QUIET_MS } from '../streams/alerts/frame-order.js'
import { LiveHub } from '../streams/live/hub.js'
import type { UnitView } from '../streams/live/protocol.js'
import { loadCase } from '../cli/replay-case.js'
import { HandedOver } from '../gateway/handed-over.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { waitFor } from '../testkit/proc.js'
import { frame, harness, NORMAL, T0, tempDir, type FrameSpec } from './alert-harness.js'

const S = 1000
/** The device clock set back by 3 min (an NTP step; at most MAX_FUTURE_SKEW_MS, 5 min). */
const STEP = 180_000
const decoder = new FrameDecoder()

/** What a clinician sees of an alert event (its id is random): compared between runs. */
function seen (i: number, e: AlertEvent): string {
  const a = e.alert
  return `#${i} ${e.type} ${a.kind}/${a.key} ${a.priority} ${a.encounter} value=${a.value} at=${a.raisedAt}/${a.updatedAt}/${a.clearedAt ?? '-'} ${a.message}`
}

interface Scenario {
  frames: number
  /** Frame i's numerics (and anything else of its spec). */
  spec: (i: number) => Partial<FrameSpec>
  /** From this frame on the device clock is `step` ms behind the gateway clock. */
  stepAt: number
}

/**
 * Feeds the scenario's frames, one per second of gateway time, seq +1 per frame, ticking the
 * engine on the gateway clock; the device clock is set back by `step` at `stepAt`. Returns what
 * a clinician saw, frame by frame, and the NEWS2 at the end.
 */
async function run (sc: Scenario, step: number): Promise<{ seen: string[], news2: number | null }> {
  const h = await harness()
  let i = 0
  const out: string[] = []
  h.engine.on('alert', e => { out.push(seen(i, e)) })
  for (; i < sc.frames; i++) {
    const gw = T0 + i * S
    h.clock.now = gw
    const spec = sc.spec(i)
    h.engine.onFrame(frame({ numerics: NORMAL, ...spec, t: i < sc.stepAt ? gw : gw - step, seq: spec.seq ?? i + 1 }), gw)
    h.engine.tick(gw)
  }
  return { seen: out, news2: h.engine.news2For('amb-1', T0 + sc.frames * S)?.partialTotal ?? null }
}

const raisedOf = (seen: string[], what: string): string | undefined => seen.find(s => s.includes(` raised ${what} `))

describe('a device clock set back within one boot (seq orders the frames)', () => {
  it('SpO2 and blood pressure falling after a 3 min step raise the same alerts, at the same frames, as without the step; NEWS2 counts the new readings', async () => {
    // 30 s healthy, then SpO2 84 % (below 85: high; RCP NEWS2 2017 scores ≤ 91 % as 3) and systolic
    // 75 mmHg (below 80: high; NEWS2 ≤ 90 mmHg scores 3), the clock set back 3 min at frame 31.
    const sc: Scenario = { frames: 90, stepAt: 31, spec: i => ({ numerics: i < 31 ? NORMAL : { ...NORMAL, spo2: 84, nibp_systolic: 75 } }) }
    const plain = await run(sc, 0)
    const stepped = await run(sc, STEP)
    expect(raisedOf(plain.seen, 'threshold/spo2')).toBeDefined()
    expect(raisedOf(plain.seen, 'threshold/nibp_systolic')).toBeDefined()
    expect(raisedOf(plain.seen, 'news2/')).toBeDefined()
    expect(stepped.seen).toEqual(plain.seen)
    expect(stepped.news2).toBe(plain.news2)
    expect(plain.news2).toBeGreaterThanOrEqual(6)
  })

  it('stream loss is neither raised falsely nor silenced: SpO2 stopping after the step raises it at the same frame', async () => {
    // The other numerics go on (probe off), so stream_loss/spo2 is due streamLossMs (10 s) after
    // the last SpO2; no signal loss (frames every second on the gateway clock).
    const spo2Stops = 60
    const sc: Scenario = {
      frames: 90,
      stepAt: 31,
      spec: i => {
        const { spo2, ...rest } = NORMAL
        return { numerics: i < spo2Stops ? { ...rest, spo2 } : rest }
      }
    }
    const plain = await run(sc, 0)
    const stepped = await run(sc, STEP)
    expect(plain.seen.filter(s => s.includes('stream_loss/spo2'))).toHaveLength(1)
    expect(raisedOf(plain.seen, 'stream_loss/spo2')).toMatch(/^#69 raised/)
    expect(stepped.seen).toEqual(plain.seen)
    expect(stepped.seen.filter(s => s.includes('signal_loss'))).toEqual([])
  })

  it('a new encounter id after the step starts the encounter: the previous patient\'s alert clears, the new patient\'s SpO2 alerts', async () => {
    const sc: Scenario = {
      frames: 70,
      stepAt: 31,
      spec: i => i < 31 ? { numerics: { ...NORMAL, heart_rate: 140 }, encounter: 'enc-1' } : { numerics: { ...NORMAL, spo2: 84 }, encounter: 'enc-2' }
    }
    const plain = await run(sc, 0)
    const stepped = await run(sc, STEP)
    expect(raisedOf(plain.seen, 'threshold/heart_rate')).toContain(' enc-1 ')
    expect(plain.seen.find(s => s.includes(' cleared threshold/heart_rate'))).toMatch(/^#31 /)
    expect(raisedOf(plain.seen, 'threshold/spo2')).toContain(' enc-2 ')
    expect(stepped.seen).toEqual(plain.seen)
  })

  it('a store-and-forward backlog of the same boot (lower seq, from before the step) is still late: its readings change nothing', async () => {
    // Frames 21-40 are held back (link down) and arrive after the live frames 41-89, whose clock
    // was set back at 41: their capture times are later than the live frames', but their seq is
    // lower. SpO2 60 % in the backlog is history older than the SpO2 the engine holds.
    const h = await harness()
    const out: string[] = []
    h.engine.on('alert', e => { out.push(seen(0, e)) })
    const send = (i: number, numerics: Record<string, number>, gw: number): void => {
      h.clock.now = gw
      h.engine.onFrame(frame({ t: i < 41 ? T0 + i * S : T0 + i * S - STEP, seq: i + 1, numerics }), gw)
      h.engine.tick(gw)
    }
    for (let i = 0; i < 90; i++) if (i < 21 || i >= 41) send(i, NORMAL, T0 + i * S)
    const before = h.engine.news2For('amb-1', T0 + 90 * S)
    for (let i = 21; i < 41; i++) send(i, { ...NORMAL, spo2: 60 }, T0 + 90 * S)
    expect(out).toEqual([])
    expect(h.engine.news2For('amb-1', T0 + 90 * S)).toEqual(before)
  })

  it('a resend of a frame after the step (same seq) changes nothing, and the gateway hands it over once', async () => {
    const h = await harness()
    for (let i = 0; i < 31; i++) { h.clock.now = T0 + i * S; h.engine.onFrame(frame({ t: T0 + i * S, seq: i + 1, numerics: NORMAL }), T0 + i * S) }
    const f = frame({ t: T0 + 31 * S - STEP, seq: 32, numerics: { ...NORMAL, spo2: 84 }, alarms: [{ code: 'SPO2_LOW', priority: 3 }] })
    h.engine.onFrame(f, T0 + 31 * S)
    const first = h.events.length
    expect(first).toBeGreaterThan(0)
    h.engine.onFrame(f, T0 + 31 * S + 100)
    expect(h.events).toHaveLength(first)
    const handed = new HandedOver()
    for (let i = 0; i < 31; i++) expect(handed.first('amb-1', 'boot-1', String(i + 1), T0 + i * S)).toBe(true)
    expect(handed.first('amb-1', 'boot-1', '32', f.capturedAtMs)).toBe(true)
    expect(handed.first('amb-1', 'boot-1', '32', f.capturedAtMs)).toBe(false)
    expect(handed.first('amb-1', 'boot-1', '33', f.capturedAtMs + S)).toBe(true)
  })

  it('a restart (new boot, seq from 1) with the clock 3 min behind the last frame is evaluated at once, as a restart with the clock right', async () => {
    // The device is silent 20 s while it restarts (signal loss at 10 s in both runs), then sends
    // SpO2 84 % from a new boot whose clock is behind the old boot's last frame.
    const sc: Scenario = {
      frames: 90,
      stepAt: 50,
      spec: i => i < 30 ? { numerics: NORMAL } : i < 50 ? { numerics: NORMAL } : { numerics: { ...NORMAL, spo2: 84 }, boot: 'boot-2', seq: i - 49 }
    }
    const restart = async (step: number): Promise<string[]> => {
      const h = await harness()
      let i = 0
      const out: string[] = []
      h.engine.on('alert', e => { out.push(seen(i, e)) })
      for (; i < sc.frames; i++) {
        const gw = T0 + i * S
        h.clock.now = gw
        h.engine.tick(gw)
        if (i >= 30 && i < 50) continue
        const spec = sc.spec(i)
        h.engine.onFrame(frame({ ...spec, t: i < sc.stepAt ? gw : gw - step, seq: spec.seq ?? i + 1 }), gw)
      }
      return out
    }
    const plain = await restart(0)
    const stepped = await restart(STEP)
    expect(raisedOf(plain, 'signal_loss/')).toBeDefined()
    expect(raisedOf(plain, 'threshold/spo2')).toBeDefined()
    expect(stepped).toEqual(plain)
  })

  it('a gateway restart after the step goes on in seq order (the unit snapshot keeps the boot\'s highest seq and shift)', async () => {
    const dir = await tempDir()
    const feed = (engine: AlertEngine, from: number, to: number, spo2: number): void => {
      for (let i = from; i < to; i++) {
        const gw = T0 + i * S
        engine.onFrame(frame({ t: i < 31 ? gw : gw - STEP, seq: i + 1, numerics: { ...NORMAL, spo2 } }), gw)
        engine.tick(gw)
      }
    }
    const a = await AlertEngine.open({ dir, tickIntervalMs: 0, now: () => T0 + 40 * S })
    feed(a, 0, 40, 97)
    await a.close()
    const b = await AlertEngine.open({ dir, tickIntervalMs: 0, now: () => T0 + 40 * S })
    onTestFinished(async () => { await b.close() })
    const events: AlertEvent[] = []
    b.on('alert', e => { events.push(e) })
    feed(b, 40, 80, 84)
    // Raised on the timeline that continues the frames before the restart (15 s of SpO2 < 90 %).
    const raised = events.find(e => e.type === 'raised' && e.alert.kind === 'threshold' && e.alert.key === 'spo2')
    expect(raised?.alert.raisedAt).toBeGreaterThanOrEqual(T0 + 50 * S)
    expect(raised?.alert.raisedAt).toBeLessThanOrEqual(T0 + 60 * S)
  })

  it('STEMI from the ECG: the 12-lead chunks after the step continue the 10 s window (raised at the same frame as without the step)', async () => {
    const START = Date.UTC(2026, 0, 5, 9, 0, 0)
    const src = new UnitFrameSource({ unitId: 'amb-9', startMs: START, profile: 'stemi', seed: 7, stemi: 'inferior' })
    const frames: Frame[] = []
    for (let i = 0; i < 14 * 4; i++) frames.push({ ...decoder.decode(src.nextFrame().bytes, 'amb-9', START + (i + 1) * 250), interpretation: null })
    const raisedAtFrame = async (step: number): Promise<number> => {
      const engine = await AlertEngine.open({ dir: null, tickIntervalMs: 0, now: () => START })
      onTestFinished(async () => { await engine.close() })
      let i = 0
      let at = -1
      engine.on('alert', e => { if (e.type === 'raised' && e.alert.kind === 'stemi' && e.alert.key === 'ecg' && at < 0) at = i })
      for (; i < frames.length; i++) {
        const f = frames[i]!
        engine.onFrame(i < 16 ? f : { ...f, capturedAtMs: f.capturedAtMs - step }, f.capturedAtMs + 250)
      }
      return at
    }
    const plain = await raisedAtFrame(0)
    expect(plain).toBeGreaterThan(16)
    expect(await raisedAtFrame(STEP)).toBe(plain)
  })

  it('the live hub keeps drawing: the ECG ring, the trend and the numerics go on after the step as without it', async () => {
    const START = Date.now() - 60_000
    const src = new UnitFrameSource({ unitId: 'amb-7', startMs: START, profile: 'healthy', seed: 3 })
    const frames: Frame[] = []
    for (let i = 0; i < 20 * 4; i++) frames.push(decoder.decode(src.nextFrame().bytes, 'amb-7', START + (i + 1) * 250))
    const view = (step: number): UnitView => {
      let now = START
      const hub = new LiveHub({ hospital: { name: 'H', latitude: 51.5, longitude: -0.1 }, now: () => now })
      onTestFinished(async () => { await hub.close() })
      frames.forEach((f, i) => {
        now = f.capturedAtMs + 250
        // SpO2 falls to 84 % after the step: the page must show it.
        const spo2 = i < 40 ? f.numerics : [...f.numerics.filter(n => n.sign !== 3), { sign: 3, value: 84, offsetMs: 0 }]
        hub.push({ ...f, numerics: spo2, capturedAtMs: i < 40 ? f.capturedAtMs : f.capturedAtMs - step })
      })
      const snap = hub.snapshot({ name: 'dr', role: 'clinician' })
      if (snap.type !== 'snapshot') throw new Error('no snapshot')
      return snap.units[0]!
    }
    const plain = view(0)
    const stepped = view(STEP)
    expect(plain.numerics.spo2?.value).toBe(84)
    expect(plain.ecg?.next).toBe(80 * 125)
    expect({ ...stepped, lastSeenMs: 0 }).toEqual({ ...plain, lastSeenMs: 0, ecg: { ...plain.ecg, epoch: stepped.ecg?.epoch }, trendEpoch: stepped.trendEpoch })
  })
})

describe('frame order (frame-order.ts), the cases beside a clock step', () => {
  const f = (boot: string, seq: number, t: number): Frame => frame({ t, seq, boot, numerics: {} })

  it('a device without seq (0) is ordered by capture time: every newer frame is new, an older one late', () => {
    const o = new FrameOrder()
    const late: boolean[] = []
    for (const t of [T0, T0 + S, T0 + 2 * S, T0 + S, T0 + 3 * S]) { o.place(f('b', 0, t), t); late.push(o.late) }
    expect(late).toEqual([false, false, false, true, false])
  })

  it('a backlog of an older boot arriving while the current boot streams is late; a restart is taken once the old boot is silent REBOOT_QUIET_MS', () => {
    const o = new FrameOrder()
    for (let i = 0; i < 10; i++) o.place(f('b2', i + 1, T0 + i * S), T0 + i * S)
    // Boot b1 (never seen, earlier clock) while b2 goes on: its backlog.
    o.place(f('b1', 50, T0 - 60 * S), T0 + 9 * S + 500)
    expect(o.late).toBe(true)
    o.place(f('b2', 11, T0 + 10 * S), T0 + 10 * S)
    expect(o.late).toBe(false)
    // b2 falls silent; b3 with its clock 3 min behind: late at first, new once b2 was silent 5 s.
    o.place(f('b3', 1, T0 + 11 * S - STEP), T0 + 11 * S)
    expect(o.late).toBe(true)
    o.place(f('b3', 2, T0 + 10 * S + REBOOT_QUIET_MS - STEP), T0 + 10 * S + REBOOT_QUIET_MS)
    expect(o.late).toBe(false)
    expect(o.t).toBe(T0 + 10 * S + REBOOT_QUIET_MS)
    // b2's late frames now belong to a boot the unit left.
    o.place(f('b2', 5, T0 + 4 * S), T0 + 16 * S)
    expect(o.late).toBe(true)
  })

  it('after a step the shift stays while frames stream, and drops to 0 once the device clock catches up (a silence as long as the correction)', () => {
    const o = new FrameOrder()
    for (let i = 0; i < 10; i++) o.place(f('b', i + 1, T0 + i * S), T0 + i * S)
    for (let i = 10; i < 20; i++) o.place(f('b', i + 1, T0 + i * S - STEP), T0 + i * S)
    expect([o.late, o.t, o.shift]).toEqual([false, T0 + 19 * S, STEP])
    // Silent for the length of the correction: the device clock (STEP behind the gateway's) has
    // caught up with the timeline, which follows it again.
    const back = T0 + 20 * S + STEP
    o.place(f('b', 21, back - STEP), back)
    expect([o.late, o.t, o.shift]).toEqual([false, back - STEP, 0])
  })

  it('a frame stamped when its measurement began (seq new, clock 30 s back) shifts no later frame', () => {
    const o = new FrameOrder()
    for (let i = 0; i < 10; i++) o.place(f('b', i + 1, T0 + i * S), T0 + i * S)
    o.place(f('b', 11, T0 + 9 * S - 30 * S), T0 + 9 * S + 500)
    expect(o.late).toBe(false)
    o.place(f('b', 12, T0 + 10 * S), T0 + 10 * S)
    expect([o.late, o.t, o.shift]).toEqual([false, T0 + 10 * S, 0])
  })
})

describe('clinical cases (ambulink replay) number frames as a device does', () => {
  it('seq follows capture time per boot: the frame delayed 30 s in the network keeps its place', async () => {
    const c = await loadCase(fileURLToPath(new URL('./clinical-cases/late-frame-with-alarm.ndjson', import.meta.url)))
    const frames = c.inputs.flatMap(i => i.type === 'frame' ? [i] : [])
    const late = frames.find(i => i.arriveMs > i.captureMs)!
    expect(late.frame.alarms?.[0]?.code).toBe('VT')
    const byCapture = [...frames].sort((p, q) => p.captureMs - q.captureMs)
    expect(byCapture.map(i => Number(i.frame.seq))).toEqual(byCapture.map((_, n) => n + 1))
    expect(Number(late.frame.seq)).toBe(62)
  })
})

describe('through the gateway: a device clock set back mid-stream', () => {
  let tg: TestGateway
  beforeAll(async () => { tg = await startTestGateway() }, 180_000)
  afterAll(async () => { await tg?.close() })

  it('SpO2 84 % after the step reaches a clinician subscribed to alerts/{unit} over MQTT, and the hub shows it', async () => {
    const unit = 'amb-clock'
    const token = await tg.addDevice(unit)
    const password = await tg.addUser('dr-clock', 'clinician')
    const clinician = await mqtt.connectAsync(tg.mqttUrl, { username: 'dr-clock', password, clientId: 'dr-clock', reconnectPeriod: 0 })
    onTestFinished(async () => { await clinician.endAsync(true) })
    const alerts: AlertEvent[] = []
    clinician.on('message', (_t, payload) => { alerts.push(JSON.parse(payload.toString('utf8')) as AlertEvent) })
    await clinician.subscribeAsync(`alerts/${unit}`, { qos: 1 })
    const device = await mqtt.connectAsync(tg.mqttUrl, { username: unit, password: token, clientId: unit, reconnectPeriod: 0 })
    onTestFinished(async () => { await device.endAsync(true) })
    // 20 s healthy, then the clock is set back 3 min and SpO2 falls; seq goes on. Device time
    // ends now, so every frame is within the gateway's skew limits.
    const base = Date.now() - 60_000
    const vitals = (spo2: number): Array<{ sign: number, value: number, offsetMs: number }> =>
      [[1, 72], [3, spo2], [4, 125], [7, 16], [9, 36.8], [10, 0], [11, 0]].map(([sign, value]) => ({ sign: sign!, value: value!, offsetMs: 0 }))
    for (let seq = 1; seq <= 60; seq++) {
      const captured = base + seq * S - (seq > 20 ? STEP : 0)
      const bytes = encodeFrame({ unitId: unit, bootId: 'boot-a', seq, capturedAtMs: captured, encounterId: 'enc-clock', numerics: vitals(seq > 20 ? 84 : 97) })
      await device.publishAsync(`units/${unit}/telemetry`, Buffer.from(bytes), { qos: 1 })
    }
    const raised = await waitFor(async () => alerts.find(e => e.type === 'raised' && e.alert.kind === 'threshold' && e.alert.key === 'spo2'), { timeoutMs: 30_000, intervalMs: 20, what: 'the SpO2 alert on alerts/amb-clock' })
    expect(raised.alert).toMatchObject({ unit, priority: 'high', value: 84 })
    const snap = tg.gw.live.snapshot({ name: 'dr-clock', role: 'clinician' })
    if (snap.type !== 'snapshot') throw new Error('no snapshot')
    expect(snap.units.find(u => u.unit === unit)?.numerics.spo2?.value).toBe(84)
  })
})
