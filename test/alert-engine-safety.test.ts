// Issue #9, "alerts a clinician can trust", point by point against the real engine on an injected
// clock: acknowledgement withdrawn by a worsening and by the silence period; flapping values
// raise once and neither hide nor storm; high device alarms latch; tiered limits; link hold-off
// and stream loss; stale readings never step an alert down; the ward survives a restart; the
// freshest pulse; the v1.1 contract (presence, encounter end); SpO2 scale 2 and children; stroke
// BP and windows at arrival. No healthy patient raises anything.
import { describe, expect, it, onTestFinished } from 'vitest'
import { encodeFrame, FrameDecoder } from '../decoders/index.js'
import { AlertEngine, parseRulesConfig } from '../streams/alerts/index.js'
import { frame, harness, NORMAL, T0, tempDir } from './alert-harness.js'

const S = 1000
const MIN = 60_000

describe('acknowledgement silences, never hides', () => {
  it('a NEWS2 alert acknowledged at 5 that reaches 9 is unacknowledged again, sounds (realarms) and escalates', async () => {
    const h = await harness({ escalateAfterMs: MIN })
    const urgent = { respiratory_rate: 25, spo2: 93 }          // RR 3 + SpO2 2 = 5
    h.feed(T0, T0 + 10 * S, urgent)
    const id = h.of('news2', 'raised')[0]!.alert.id
    expect(h.engine.acknowledge(id, 'Dr Ade', T0 + 11 * S)).toMatchObject({ priority: 'medium', acknowledgedBy: 'Dr Ade' })
    h.feed(T0 + 12 * S, T0 + 30 * S, { ...urgent, heart_rate: 135, nibp_systolic: 105 })   // + pulse 3 + SBP 1 = 9
    const worse = h.of('news2', 'updated').find(e => e.alert.priority === 'high')!
    expect(worse.alert).toMatchObject({ id, acknowledgedAt: null, acknowledgedBy: null, realarms: 1, value: 9 })
    const at = worse.alert.updatedAt   // gateway time = sample time in this harness
    h.engine.tick(at + MIN - 1)
    expect(h.of('news2', 'escalated')).toHaveLength(0)
    h.engine.tick(at + MIN)
    expect(h.of('news2', 'escalated')).toHaveLength(1)
  })

  it('a rise of NEWS2 response band within medium (single 3 → urgent ≥ 5) withdraws the acknowledgement', async () => {
    const h = await harness()
    h.feed(T0, T0 + 10 * S, { respiratory_rate: 25 })          // a single 3
    const id = h.of('news2', 'raised')[0]!.alert.id
    h.engine.acknowledge(id, 'Dr Ade', T0 + 11 * S)
    h.feed(T0 + 12 * S, T0 + 25 * S, { respiratory_rate: 25, spo2: 93 })
    expect(h.engine.get(id)).toMatchObject({ priority: 'medium', acknowledgedAt: null, realarms: 1 })
  })

  it('a threshold alert acknowledged at medium that turns critical alarms again; a steady one does not', async () => {
    const h = await harness()
    h.feed(T0, T0 + 10 * S, { heart_rate: 140 })
    const id = h.of('threshold', 'raised')[0]!.alert.id
    h.engine.acknowledge(id, 'Dr Ade', T0 + 11 * S)
    h.feed(T0 + 12 * S, T0 + 40 * S, { heart_rate: 141 })
    expect(h.engine.get(id)!.acknowledgedAt).toBe(T0 + 11 * S)
    h.feed(T0 + 41 * S, T0 + 50 * S, { heart_rate: 190 })
    expect(h.engine.get(id)).toMatchObject({ priority: 'high', acknowledgedAt: null, realarms: 1 })
  })

  it.each([
    ['high', 120_000],
    ['medium', 300_000]
  ] as const)('an acknowledgement of a persisting %s alert expires after %i ms and the alert alarms again', async (priority, silence) => {
    const h = await harness({ escalateAfterMs: MIN })
    const alarm = { code: 'X', priority: priority === 'high' ? 3 : 2 }
    // The device repeats the alarm every 10 s: the condition persists.
    for (let t = T0; t <= T0 + silence + 20 * S; t += 10 * S) { h.engine.onFrame(frame({ t, numerics: NORMAL, alarms: [alarm] }), t); h.engine.tick(t) }
    const id = h.of('device_alarm', 'raised')[0]!.alert.id
    expect(h.engine.get(id)!.acknowledgedAt).toBeNull()
    const h2 = await harness({ escalateAfterMs: MIN })
    h2.engine.onFrame(frame({ t: T0, numerics: NORMAL, alarms: [alarm] }), T0)
    const id2 = h2.of('device_alarm', 'raised')[0]!.alert.id
    h2.engine.acknowledge(id2, 'Dr Ade', T0 + S)
    for (let t = T0 + 10 * S; t < T0 + S + silence; t += 10 * S) { h2.engine.onFrame(frame({ t, numerics: NORMAL, alarms: [alarm] }), t); h2.engine.tick(t) }
    h2.engine.tick(T0 + S + silence - 1)
    expect(h2.engine.get(id2)!.acknowledgedAt).toBe(T0 + S)
    h2.engine.tick(T0 + S + silence)
    expect(h2.engine.get(id2)).toMatchObject({ acknowledgedAt: null, realarms: 1, clearedAt: null })
    expect(h2.of('device_alarm', 'updated').at(-1)!.alert.realarms).toBe(1)
  })
})

describe('persistence over a sliding window: flapping values raise once, neither hide nor storm', () => {
  it.each([
    ['SpO2 85 % for 9 s, 92 % for 1 s', 'spo2', 85, 92, 'medium'],
    ['heart rate 34 for 9 s, 41 for 1 s', 'heart_rate', 34, 41, 'high']
  ] as const)('%s, for 5 min: one alert, never cleared, updates throttled', async (_name, sign, bad, good, priority) => {
    const h = await harness()
    for (let i = 0; i < 300; i++) h.feed(T0 + i * S, T0 + i * S, { [sign]: i % 10 === 9 ? good : bad })
    const mine = h.events.filter(e => e.alert.kind === 'threshold' && e.alert.key === sign)
    expect(mine.filter(e => e.type === 'raised').map(e => e.alert.priority)).toEqual([priority])
    expect(mine.filter(e => e.type === 'cleared')).toEqual([])
    expect(mine.filter(e => e.type === 'updated').length).toBeLessThanOrEqual(31)
    // NEWS2 also raises (SpO2 ≤ 91 or pulse ≤ 40 score 3) and stays.
    expect(h.of('news2', 'raised')).toHaveLength(1)
    expect(h.of('news2', 'cleared')).toEqual([])
    // Recovery: steady normal values clear each once.
    h.feed(T0 + 300 * S, T0 + 340 * S, {})
    expect(h.events.filter(e => e.type === 'cleared').map(e => e.alert.kind).sort()).toEqual(['news2', 'threshold'])
  })

  it('a healthy patient with normal variation raises nothing in an hour', async () => {
    const h = await harness()
    for (let i = 0; i < 3600; i++) {
      h.feed(T0 + i * S, T0 + i * S, { heart_rate: 60 + (i * 7) % 40, spo2: 95 + i % 5, respiratory_rate: 12 + i % 9, nibp_systolic: 112 + i % 60 })
      if (i % 10 === 0) h.engine.tick(T0 + i * S)
    }
    expect(h.events).toEqual([])
  })
})

describe('device alarms latch', () => {
  it('a VF reported once stays open and escalates until acknowledged; then times out; ended clears at once', async () => {
    const h = await harness({ escalateAfterMs: MIN, deviceAlarmHoldMs: MIN })
    h.engine.onFrame(frame({ t: T0, numerics: NORMAL, alarms: [{ code: 'VF', priority: 3, text: 'Ventricular fibrillation' }, { code: 'LEADS', priority: 2 }] }), T0)
    for (let t = T0 + S; t <= T0 + 10 * MIN; t += S) { h.engine.onFrame(frame({ t, numerics: NORMAL, waveforms: false }), t); h.engine.tick(t) }
    expect(h.of('device_alarm', 'cleared').map(e => e.alert.key)).toEqual(['LEADS'])
    expect(h.of('device_alarm', 'escalated').length).toBe(10)
    const vf = h.engine.openAlerts().find(a => a.key === 'VF')!
    h.engine.acknowledge(vf.id, 'Dr Ade', T0 + 10 * MIN)
    h.engine.tick(T0 + 11 * MIN)
    expect(h.engine.get(vf.id)!.clearedAt).toBe(T0 + 11 * MIN)

    h.engine.onFrame(frame({ t: T0 + 12 * MIN, numerics: NORMAL, alarms: [{ code: 'ASYSTOLE', priority: 3 }] }), T0 + 12 * MIN)
    h.engine.onFrame(frame({ t: T0 + 12 * MIN + S, numerics: NORMAL, alarms: [{ code: 'ASYSTOLE', priority: 3, ended: true }] }), T0 + 12 * MIN + S)
    expect(h.of('device_alarm', 'cleared').map(e => [e.alert.key, e.alert.clearedAt])).toContainEqual(['ASYSTOLE', T0 + 12 * MIN + S])
  })
})

describe('tiered limits', () => {
  it.each([
    // [sign, value, priority]: life-threatening values are high at once, others medium.
    ['heart_rate', 190, 'high'], ['heart_rate', 150, 'high'], ['heart_rate', 40, 'high'], ['heart_rate', 140, 'medium'],
    ['pulse_rate', 35, 'high'],
    ['nibp_systolic', 79, 'high'], ['nibp_systolic', 85, 'medium'], ['nibp_systolic', 210, 'medium'],
    ['spo2', 84, 'high'], ['spo2', 88, 'medium'],
    ['respiratory_rate', 8, 'high'], ['respiratory_rate', 9, 'medium'], ['respiratory_rate', 31, 'medium'],
    ['consciousness_acvpu', 4, 'high'], ['consciousness_acvpu', 3, 'high'], ['consciousness_acvpu', 2, 'medium'], ['consciousness_acvpu', 1, 'medium'],
    ['etco2', 20, 'medium'], ['temperature', 34.5, 'medium']
  ] as const)('%s %d raises %s', async (sign, value, priority) => {
    const h = await harness()
    h.feed(T0, T0 + 15 * S, { [sign]: value })
    expect(h.of('threshold', 'raised').map(e => [e.alert.key, e.alert.priority])).toEqual([[sign, priority]])
  })

  it.each([
    ['heart_rate', 130], ['heart_rate', 41], ['heart_rate', 45], ['nibp_systolic', 95], ['spo2', 92], ['respiratory_rate', 12],
    ['consciousness_acvpu', 0], ['temperature', 37.5]
  ] as const)('%s %d raises nothing', async (sign, value) => {
    const h = await harness()
    h.feed(T0, T0 + 60 * S, { [sign]: value })
    expect(h.of('threshold')).toEqual([])
  })

  it('ALERT_RULES_FILE overrides still apply to the engine', async () => {
    const rules = parseRulesConfig({ rules: { heart_rate: { high: 110, critHigh: 140 } } })
    const h = await harness({ rules })
    h.feed(T0, T0 + 10 * S, { heart_rate: 120 })
    expect(h.of('threshold', 'raised').map(e => e.alert.priority)).toEqual(['medium'])
    h.feed(T0 + 11 * S, T0 + 20 * S, { heart_rate: 145 })
    expect(h.of('threshold', 'updated').at(-1)!.alert.priority).toBe('high')
  })
})

describe('signal loss with a hold-off; stream loss', () => {
  it('a link delivering one frame every 11 s raises once in 2 min and never flaps', async () => {
    const h = await harness({ signalLossMs: 10 * S })
    for (let t = T0; t <= T0 + 2 * MIN; t += S) {
      if ((t - T0) % (11 * S) === 0) h.engine.onFrame(frame({ t, numerics: NORMAL }), t)
      h.engine.tick(t)
    }
    expect(h.of('signal_loss').map(e => e.type).filter(x => x !== 'updated' && x !== 'escalated')).toEqual(['raised'])
    expect(h.engine.openAlerts().find(a => a.kind === 'signal_loss')!.message).toMatch(/^(No telemetry|Degraded link: \d+ gaps)/)
  })

  it('gaps shorter than signalLossMs raise one degraded-link alert naming the gaps; it clears after 60 s steady', async () => {
    const h = await harness({ signalLossMs: 10 * S })
    let t = T0
    for (let i = 0; i < 4; i++, t += 7 * S) { h.engine.onFrame(frame({ t, numerics: NORMAL }), t); h.engine.tick(t) }
    const raised = h.of('signal_loss', 'raised')
    expect(raised.map(e => e.alert.priority)).toEqual(['medium'])
    expect(raised[0]!.alert.message).toBe('Degraded link: 3 gaps in the last 2 min, longest 7 s; clears after 1 min without a gap')
    for (; t <= T0 + 3 * MIN; t += S) { h.engine.onFrame(frame({ t, numerics: NORMAL }), t); h.engine.tick(t) }
    expect(h.of('signal_loss', 'raised')).toHaveLength(1)
    expect(h.of('signal_loss', 'cleared')).toHaveLength(1)
  })

  it('ECG lead-off while numerics continue, and SpO2 probe-off while others continue, each raise their own alert', async () => {
    const h = await harness()
    h.feed(T0, T0 + 10 * S, {}, { waveforms: true })
    const { spo2: _spo2, ...noSpo2 } = NORMAL
    for (let t = T0 + 11 * S; t <= T0 + 40 * S; t += S) { h.engine.onFrame(frame({ t, numerics: noSpo2 }), t); h.engine.tick(t) }
    expect(h.of('stream_loss', 'raised').map(e => [e.alert.key, e.alert.priority])).toEqual([['ecg', 'medium'], ['spo2', 'medium']])
    expect(h.of('stream_loss', 'raised')[1]!.alert.message).toMatch(/^SpO2 lost for 10 s while other data continue \(sensor off\?\): last 97 %/)
    expect(h.of('signal_loss')).toEqual([])
    h.feed(T0 + 41 * S, T0 + 41 * S, {}, { waveforms: true })
    expect(h.of('stream_loss', 'cleared').map(e => e.alert.key).sort()).toEqual(['ecg', 'spo2'])
  })
})

describe('a silent unit is a link loss, not a lead off', () => {
  it('with SIGNAL_LOSS_MS above the 10 s stream-loss window, a unit that stops altogether raises signal loss only, never ECG lead-off', async () => {
    const h = await harness({ signalLossMs: 30 * S })
    h.feed(T0, T0 + 10 * S, {}, { waveforms: true })
    for (let t = T0 + 11 * S; t <= T0 + 45 * S; t += S) h.engine.tick(t)
    expect(h.of('stream_loss')).toEqual([])
    expect(h.of('signal_loss', 'raised').map(e => e.alert.priority)).toEqual(['high'])
  })

  it('ECG stopping while frames go on still raises lead-off after 10 s, with SIGNAL_LOSS_MS at 30 s', async () => {
    const h = await harness({ signalLossMs: 30 * S })
    h.feed(T0, T0 + 10 * S, {}, { waveforms: true })
    for (let t = T0 + 11 * S; t <= T0 + 25 * S; t += S) { h.engine.onFrame(frame({ t, numerics: NORMAL }), t); h.engine.tick(t) }
    expect(h.of('stream_loss', 'raised').map(e => e.alert.key)).toEqual(['ecg'])
    expect(h.of('signal_loss')).toEqual([])
  })
})

describe('ECG present means new ECG', () => {
  it('an old ECG from a store-and-forward backlog does not clear a lead-off that still holds; new ECG does', async () => {
    const h = await harness()
    h.feed(T0, T0 + 10 * S, {}, { waveforms: true })
    for (let t = T0 + 11 * S; t <= T0 + 25 * S; t += S) { h.engine.onFrame(frame({ t, numerics: NORMAL }), t); h.engine.tick(t) }
    expect(h.of('stream_loss', 'raised').map(e => e.alert.key)).toEqual(['ecg'])
    h.engine.onFrame(frame({ t: T0 + 5 * S, numerics: NORMAL, waveforms: true }), T0 + 26 * S)
    h.engine.tick(T0 + 26 * S)
    expect(h.of('stream_loss', 'cleared')).toEqual([])
    h.engine.onFrame(frame({ t: T0 + 27 * S, numerics: NORMAL, waveforms: true }), T0 + 27 * S)
    expect(h.of('stream_loss', 'cleared').map(e => e.alert.key)).toEqual(['ecg'])
  })

  it('a monitor that sends each ECG chunk when full, after the vitals measured meanwhile, is never taken for lead-off', async () => {
    const h = await harness()
    for (let t = T0; t <= T0 + 40 * S; t += 250) {
      // The vitals of second t go out at once; the ECG chunk stamped at its start 250 ms before goes out after them.
      if ((t - T0) % S === 0) h.engine.onFrame(frame({ t, numerics: NORMAL }), t)
      if (t > T0) h.engine.onFrame(frame({ t: t - 250, waveforms: true }), t)
      h.engine.tick(t)
    }
    expect(h.of('stream_loss')).toEqual([])
  })
})

describe('a late frame of the previous patient', () => {
  it('raises nothing for the patient now on the unit: its suspected STEMI and device alarm stay out, a current one still counts', async () => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0, encounter: 'enc-A', numerics: NORMAL }), T0)
    h.engine.onFrame(frame({ t: T0 + 60 * S, encounter: 'enc-B', numerics: NORMAL }), T0 + 60 * S)
    // Encounter A's frame from before the hand-over arrives late (same boot, older capture time).
    h.engine.onFrame(frame({ t: T0 + 30 * S, encounter: 'enc-A', assessment: { stemiSuspected: true }, alarms: [{ code: 'VF', priority: 3, text: 'VFib' }] }), T0 + 61 * S)
    expect(h.of('stemi')).toEqual([])
    expect(h.of('device_alarm')).toEqual([])
    // A late frame of the current encounter is still applied (an assessment new to the gateway).
    h.engine.onFrame(frame({ t: T0 + 59 * S + 500, encounter: 'enc-B', assessment: { stemiSuspected: true } }), T0 + 62 * S)
    expect(h.of('stemi', 'raised')).toHaveLength(1)
  })

  it('is only a frame of an encounter the unit had: a new patient whose device clock stepped back (same boot) still raises its device alarm', async () => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0 + 60 * S, encounter: 'enc-A', numerics: NORMAL }), T0)
    // The device's clock is corrected back by a minute (within the 5 min future skew allowed);
    // then the next patient (an encounter this unit never had) is connected, in ventricular fibrillation.
    h.engine.onFrame(frame({ t: T0 + 5 * S, encounter: 'enc-B', alarms: [{ code: 'VF', priority: 3, text: 'VFib' }] }), T0 + 5 * S)
    expect(h.of('device_alarm', 'raised')).toHaveLength(1)
  })
})

describe('a late reading of this patient', () => {
  const { nibp_systolic: _sbp, ...noBp } = NORMAL
  /** Frames every second without a blood pressure; the one at T0 + 30 s carries 79 mmHg, in order or sent last. */
  async function run (late: boolean): Promise<Awaited<ReturnType<typeof harness>>> {
    const h = await harness()
    const bp = frame({ t: T0 + 30 * S, numerics: { ...noBp, nibp_systolic: 79 } })
    for (let t = T0; t <= T0 + 60 * S; t += S) {
      if (t === T0 + 30 * S && !late) { h.engine.onFrame(bp, t); h.engine.tick(t); continue }
      h.engine.onFrame(frame({ t, numerics: noBp }), t); h.engine.tick(t)
    }
    if (late) { h.engine.onFrame(bp, T0 + 61 * S); h.engine.tick(T0 + 61 * S) }
    return h
  }

  it('a blood pressure taken while the link was down and sent after the live frames is evaluated as it would have been in order', async () => {
    const inOrder = await run(false)
    const late = await run(true)
    expect(inOrder.of('threshold', 'raised').map(e => [e.alert.key, e.alert.priority])).toEqual([['nibp_systolic', 'high']])
    expect(late.of('threshold', 'raised').map(e => [e.alert.key, e.alert.priority])).toEqual([['nibp_systolic', 'high']])
    // It counts in NEWS2 too (systolic ≤ 90 scores 3, RCP 2017).
    expect(late.engine.news2For('amb-1', T0 + 61 * S)!.parameters.systolic_bp).toMatchObject({ value: 79 })
  })

  it('a late copy of readings the engine already holds changes nothing; an older reading never replaces a newer one', async () => {
    const h = await harness()
    h.feed(T0, T0 + 30 * S, { heart_rate: 150 })
    const before = h.events.length
    h.engine.onFrame(frame({ t: T0 + 30 * S, numerics: { ...NORMAL, heart_rate: 150 } }), T0 + 31 * S) // a resend
    h.engine.onFrame(frame({ t: T0 + 10 * S, numerics: { ...NORMAL, heart_rate: 72 } }), T0 + 31 * S) // older
    h.engine.tick(T0 + 31 * S)
    expect(h.events.slice(before).filter(e => e.type === 'cleared' || e.type === 'raised')).toEqual([])
    expect(h.engine.news2For('amb-1', T0 + 31 * S)!.parameters.pulse).toMatchObject({ value: 150 })
  })
})

describe('stale is not normal', () => {
  it('a probe falling off never steps down or clears an emergency NEWS2 alert; the threshold alert keeps its last value with its age', async () => {
    const h = await harness({ updateIntervalMs: 10 * S })
    const sick = { spo2: 80, respiratory_rate: 25, heart_rate: 135 }   // 3 + 3 + 3 = 9
    h.feed(T0, T0 + 20 * S, sick)
    const news = h.of('news2', 'raised')[0]!.alert
    expect(news.priority).toBe('high')
    const { spo2: _s, ...rest } = { ...NORMAL, ...sick }
    for (let t = T0 + 21 * S; t <= T0 + 10 * MIN; t += S) { h.engine.onFrame(frame({ t, numerics: rest }), t); h.engine.tick(t) }
    expect(h.engine.get(news.id)).toMatchObject({ priority: 'high', clearedAt: null })
    const spo2 = h.engine.openAlerts().find(a => a.kind === 'threshold' && a.key === 'spo2')!
    expect(spo2, JSON.stringify(spo2)).toMatchObject({ value: 80, valueAt: T0 + 20 * S, priority: 'high' })
    expect(spo2.message).toMatch(/: 80 % \(9 min \d+ s ago\)$|: 80 % \(9 min ago\)$/)
  })
})

describe('restart keeps the ward', () => {
  it('units with active encounters are watched after a restart: one that never reconnects raises signal loss; readings survive', async () => {
    const dir = await tempDir()
    const clock = { now: T0 }
    const opts = { dir, tickIntervalMs: 0, now: () => clock.now, signalLossMs: 10 * S }
    const first = await AlertEngine.open(opts)
    first.onFrame(frame({ t: T0, unit: 'amb-a', numerics: NORMAL }), T0)
    first.onFrame(frame({ t: T0, unit: 'amb-b', numerics: { heart_rate: 80 } }), T0)
    first.onFrame(frame({ t: T0, unit: 'amb-idle', encounter: '', numerics: NORMAL }), T0)
    await first.close()

    clock.now = T0 + 5 * MIN
    const second = await AlertEngine.open(opts)
    onTestFinished(() => second.close())
    expect(second.watchedUnits().sort()).toEqual(['amb-a', 'amb-b'])
    // NIBP and temperature from before the restart still score (15 min staleness).
    expect(second.news2For('amb-a', T0 + 5 * MIN)!.parameters.systolic_bp).toMatchObject({ value: 125 })
    second.tick(T0 + 5 * MIN + 9 * S)
    expect(second.openAlerts()).toEqual([])
    second.onFrame(frame({ t: T0 + 5 * MIN + 9 * S, unit: 'amb-b', numerics: { heart_rate: 80 } }), T0 + 5 * MIN + 9 * S)
    second.tick(T0 + 5 * MIN + 10 * S)
    expect(second.openAlerts().map(a => [a.unit, a.kind])).toEqual([['amb-a', 'signal_loss']])
  })

  it('watchUnit starts watching a unit this process has not seen', async () => {
    const h = await harness({ signalLossMs: 10 * S })
    h.engine.watchUnit('amb-z', T0)
    h.engine.tick(T0 + 10 * S)
    expect(h.of('signal_loss', 'raised').map(e => e.alert.unit)).toEqual(['amb-z'])
  })
})

describe('freshest source wins for pulse', () => {
  it('after ECG lead-off the oximeter pulse of 35 is scored, not a minutes-old heart rate; pulse_rate has its rule', async () => {
    const h = await harness()
    h.feed(T0, T0 + 5 * S, {})
    const { heart_rate: _hr, ...noHr } = NORMAL
    for (let t = T0 + 6 * S; t <= T0 + 2 * MIN; t += S) h.engine.onFrame(frame({ t, numerics: { ...noHr, pulse_rate: 35 } }), t)
    expect(h.engine.news2For('amb-1', T0 + 2 * MIN)!.parameters.pulse).toMatchObject({ value: 35, score: 3 })
    expect(h.of('threshold', 'raised').map(e => [e.alert.key, e.alert.priority])).toEqual([['pulse_rate', 'high']])
    expect(h.of('news2', 'raised')).toHaveLength(1)
  })
})

describe('the contract says what it means (v1.1)', () => {
  it('an assessment that omits stemi_suspected leaves the STEMI alert open; false clears it', async () => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0, assessment: { stemiSuspected: true } }), T0)
    h.engine.onFrame(frame({ t: T0 + S, assessment: { lamsScore: 2 } }), T0 + S)
    expect(h.of('stemi', 'cleared')).toEqual([])
    h.engine.onFrame(frame({ t: T0 + 2 * S, assessment: { stemiSuspected: false } }), T0 + 2 * S)
    expect(h.of('stemi', 'cleared')).toHaveLength(1)
  })

  it('presence decodes from the wire: an omitted field is absent, an explicit false is present', () => {
    const dec = new FrameDecoder()
    const base = { unitId: 'u', bootId: 'b', seq: 1, capturedAtMs: T0 }
    const omitted = dec.decode(encodeFrame({ ...base, assessment: { lamsScore: 5 } }), 'u', T0)
    expect(omitted.assessment!.present).toMatchObject({ stemiSuspected: false, lamsScore: true })
    const explicit = dec.decode(encodeFrame({ ...base, assessment: { stemiSuspected: false } }), 'u', T0)
    expect(explicit.assessment!.present.stemiSuspected).toBe(true)
    // Wire compatible: a v1 device's bytes for stemi_suspected = true (field 10 { field 1 = 1 }).
    const v1 = Buffer.concat([Buffer.from(encodeFrame(base)), Buffer.from([0x52, 0x02, 0x08, 0x01])])
    expect(dec.decode(v1, 'u', T0).assessment).toMatchObject({ stemiSuspected: true, present: { stemiSuspected: true, lamsScore: false } })
    expect(dec.decode(encodeFrame({ ...base, encounterEnded: true, alarms: [{ code: 'VF', priority: 3, text: '', offsetMs: 0, ended: true }] }), 'u', T0))
      .toMatchObject({ encounterEnded: true, alarms: [{ code: 'VF', ended: true }] })
  })

  it('an empty encounter id ends nothing and keeps signal loss on; encounter_ended does both', async () => {
    const h = await harness({ signalLossMs: 10 * S })
    h.feed(T0, T0 + 10 * S, { heart_rate: 35 })
    const open = h.engine.openAlerts().length
    h.feed(T0 + 11 * S, T0 + 11 * S, { heart_rate: 35 }, { encounter: '' })
    expect(h.engine.openAlerts()).toHaveLength(open)
    h.engine.tick(T0 + 22 * S)
    expect(h.of('signal_loss', 'raised')).toHaveLength(1)
    h.engine.onFrame(frame({ t: T0 + 23 * S, numerics: NORMAL, encounterEnded: true }), T0 + 23 * S)
    expect(h.engine.openAlerts()).toEqual([])
    h.engine.tick(T0 + 60 * S)
    expect(h.of('signal_loss', 'raised')).toHaveLength(1)
  })
})

describe('SpO2 scale 2 and children', () => {
  it('scale 2 set for the encounter: SpO2 88 % on air scores 0 (no NEWS2 alert); scale 1 would alert', async () => {
    const h = await harness()
    h.feed(T0, T0, {})
    expect(await h.engine.setSpo2ScaleBy('amb-1', 2, 'Dr Ade', T0)).toBe(true)
    h.feed(T0 + S, T0 + 30 * S, { spo2: 88 })
    expect(h.of('news2')).toEqual([])
    expect(h.engine.news2For('amb-1', T0 + 30 * S)!.parameters.spo2).toMatchObject({ value: 88, score: 0 })
    expect(await h.engine.setSpo2ScaleBy('unknown', 2, 'Dr Ade')).toBe(false)
    const h1 = await harness()
    h1.feed(T0, T0 + 30 * S, { spo2: 88 })
    expect(h1.of('news2', 'raised')).toHaveLength(1)
  })

  it('under 16 NEWS2 is not applied and the age band limits apply instead', async () => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0, numerics: NORMAL, assessment: { ageYears: 6 } }), T0)
    // 6 years: HR 80–120 and RR 20–25 normal (APLS); RR 16 is below the band.
    h.feed(T0 + S, T0 + 30 * S, { heart_rate: 100, respiratory_rate: 22, nibp_systolic: 100 })
    expect(h.events).toEqual([])
    expect(h.engine.news2Applies('amb-1')).toBe(false)
    expect(h.engine.news2For('amb-1')).toBeNull()
    h.feed(T0 + 31 * S, T0 + 60 * S, { heart_rate: 128, respiratory_rate: 22, nibp_systolic: 100 })
    expect(h.of('threshold', 'raised').map(e => [e.alert.key, e.alert.priority])).toEqual([['heart_rate', 'medium']])
    expect(h.of('news2')).toEqual([])
  })
})

describe('stroke: thrombolysis BP limit and the windows at arrival', () => {
  it('flags SBP > 185 in the stroke alert and shows the time left in each window at the ETA', async () => {
    const h = await harness({ updateIntervalMs: 0 })
    const lkw = T0 - 3 * 3_600_000
    h.engine.onFrame(frame({ t: T0, numerics: { ...NORMAL, nibp_systolic: 170, nibp_diastolic: 95 }, assessment: { lamsScore: 5, lastKnownWellMs: lkw } }), T0)
    expect(h.of('stroke', 'raised')[0]!.alert.message).not.toMatch(/thrombolysis limit/)
    h.engine.setEta('amb-1', T0 + 40 * MIN, T0)
    expect(h.engine.openAlerts().find(a => a.kind === 'stroke')!.message).toMatch(/at arrival in 40 min: thrombolysis 50 min left, thrombectomy 20 h 20 min left/)
    h.engine.onFrame(frame({ t: T0 + S, numerics: { ...NORMAL, nibp_systolic: 190, nibp_diastolic: 95 } }), T0 + S)
    expect(h.engine.openAlerts().find(a => a.kind === 'stroke')!.message).toMatch(/BP 190\/95 mmHg above the thrombolysis limit 185\/110: lower before thrombolysis$/)
  })
})
