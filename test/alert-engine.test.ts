// The alert engine on an injected clock: rule duration and hysteresis (no flapping at a limit),
// one open alert per (unit, kind, key), escalation timing, acknowledgement, restart survival
// from the journal, signal loss, device alarms, STEMI/stroke pre-notification, NEWS2 alerts and
// trend, encounter changes; plus the rules file validation and the alert line protocol.
import { appendFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { AlertEngine, alertEventToLine, DEFAULT_RULES, loadRulesFile, parseRulesConfig, type AlertEvent } from '../streams/alerts/index.js'
import { frame, harness, NORMAL, T0, tempDir } from './alert-harness.js'

describe('threshold rules: persistence window and hysteresis', () => {
  it('raises once ≥ 70 % of the raise window is beyond the limit (HR 35: critical, high at once)', async () => {
    const h = await harness()
    h.feed(T0, T0 + 5_000, { heart_rate: 35 })
    expect(h.of('threshold')).toEqual([])
    h.feed(T0 + 6_000, T0 + 6_000, { heart_rate: 35 })   // 7 of the last 10 s
    const raised = h.of('threshold', 'raised')
    expect(raised).toHaveLength(1)
    expect(raised[0]!.alert).toMatchObject({ unit: 'amb-1', encounter: 'enc-1', key: 'heart_rate', priority: 'high', value: 35, valueAt: T0 + 6_000, raisedAt: T0 + 6_000, clearedAt: null })
    expect(raised[0]!.alert.message).toBe('Heart rate critically below 41 bpm for ≥ 70 % of 10 s: 35 bpm (0 s ago)')
  })

  it('a value hovering at the limit neither raises nor, once raised, flaps', async () => {
    const h = await harness()
    // 128/132 alternating for a minute: above 130 half the time, under the 70 % needed.
    for (let i = 0; i < 60; i++) h.feed(T0 + i * 1000, T0 + i * 1000, { heart_rate: i % 2 === 0 ? 132 : 128 })
    expect(h.of('threshold')).toEqual([])
    // Sustained 140: raised once, medium (tachycardia, not critical).
    h.feed(T0 + 60_000, T0 + 75_000, { heart_rate: 140 })
    expect(h.of('threshold', 'raised').map(e => e.alert.priority)).toEqual(['medium'])
    // Hovering at the limit again (126..132, inside the 5 bpm margin): stays raised, never cleared.
    for (let i = 0; i < 120; i++) h.feed(T0 + 76_000 + i * 1000, T0 + 76_000 + i * 1000, { heart_rate: [132, 128, 126, 129][i % 4]! })
    expect(h.of('threshold', 'raised')).toHaveLength(1)
    expect(h.of('threshold', 'cleared')).toHaveLength(0)
    // Value-only updates are throttled to one per 10 s.
    expect(h.of('threshold', 'updated').length).toBeLessThanOrEqual(14)
    expect(h.engine.openAlerts().filter(a => a.kind === 'threshold')).toHaveLength(1)
  })

  it('clears only when back inside by the margin for ≥ 90 % of the 30 s clear window', async () => {
    const h = await harness()
    h.feed(T0, T0 + 10_000, { heart_rate: 140 })
    const id = h.of('threshold', 'raised')[0]!.alert.id
    h.feed(T0 + 11_000, T0 + 60_000, { heart_rate: 127 })   // inside the limits, not by 5 bpm
    expect(h.engine.get(id)!.clearedAt).toBeNull()
    h.feed(T0 + 61_000, T0 + 86_000, { heart_rate: 110 })   // by the margin, 26 of 30 s
    expect(h.engine.get(id)!.clearedAt).toBeNull()
    h.feed(T0 + 87_000, T0 + 87_000, { heart_rate: 110 })   // 27 of 30 s
    const cleared = h.of('threshold', 'cleared')
    expect(cleared).toHaveLength(1)
    expect(cleared[0]!.alert).toMatchObject({ id, clearedAt: T0 + 87_000 })
    expect(h.engine.openAlerts()).toEqual([])
  })

  it('spot measurements (NIBP) raise on one reading; the tier sets the priority', async () => {
    const h = await harness()
    h.feed(T0, T0, { nibp_systolic: 85 })
    expect(h.of('threshold', 'raised').map(e => [e.alert.key, e.alert.priority])).toEqual([['nibp_systolic', 'medium']])
    h.feed(T0 + 1000, T0 + 1000, { nibp_systolic: 96 })
    expect(h.of('threshold', 'cleared')).toHaveLength(1)
    h.feed(T0 + 2000, T0 + 2000, { nibp_systolic: 210 })
    h.feed(T0 + 3000, T0 + 3000, { nibp_systolic: 75 })   // high → low side, critical (< 80)
    expect(h.of('threshold', 'raised').map(e => e.alert.priority)).toEqual(['medium', 'medium'])
    expect(h.of('threshold', 'updated').at(-1)!.alert).toMatchObject({ priority: 'high', value: 75 })
  })
})

describe('one open alert per (unit, kind, key)', () => {
  it('updates the open alert (same id) instead of raising another; other units and keys are separate', async () => {
    const h = await harness({ updateIntervalMs: 0 })
    h.feed(T0, T0 + 10_000, { heart_rate: 35, spo2: 85 })
    h.feed(T0 + 11_000, T0 + 20_000, { heart_rate: 30, spo2: 84 })
    h.feed(T0, T0 + 10_000, { heart_rate: 35 }, { unit: 'amb-2' })
    const open = h.engine.openAlerts().filter(a => a.kind === 'threshold')
    expect(open.map(a => `${a.unit}/${a.key}`).sort()).toEqual(['amb-1/heart_rate', 'amb-1/spo2', 'amb-2/heart_rate'])
    const hr = h.events.filter(e => e.alert.unit === 'amb-1' && e.alert.key === 'heart_rate')
    expect(new Set(hr.map(e => e.alert.id)).size).toBe(1)
    expect(hr.filter(e => e.type === 'raised')).toHaveLength(1)
    expect(hr.at(-1)).toMatchObject({ type: 'updated', alert: { value: 30, updatedAt: T0 + 11_000 } })
    expect(h.engine.alertsFor('amb-2').map(a => `${a.kind}/${a.key}`).sort()).toEqual(['news2/', 'threshold/heart_rate'])
  })

  it('a priority change is sent at once (NEWS2 urgent → emergency), keeping the id', async () => {
    const h = await harness()
    // Partial set: pulse 2 + RR 2 + temp 1 = 5 (urgent), SpO2 etc. missing.
    const urgent = { heart_rate: 115, respiratory_rate: 22, temperature: 38.5 }
    for (let t = T0; t <= T0 + 10_000; t += 1000) { h.clock.now = t; h.engine.onFrame(frame({ t, numerics: urgent }), t) }
    const raised = h.of('news2', 'raised')
    expect(raised).toHaveLength(1)
    expect(raised[0]!.alert).toMatchObject({ priority: 'medium', value: 5 })
    expect(raised[0]!.alert.message).toMatch(/^NEWS2 ≥ 5 \(urgent response threshold ≥ 5\).*missing: SpO2, O2, SBP, ACVPU$/)
    // Emergency level for 7 of the last 10 s: the priority rises with that sample, not a throttle later.
    for (let t = T0 + 11_000; t <= T0 + 17_000; t += 1000) h.engine.onFrame(frame({ t, numerics: { ...urgent, supplemental_o2: 1 } }), t)
    const up = h.of('news2', 'updated').filter(e => e.alert.priority === 'high')
    expect(up).toHaveLength(1)
    expect(up[0]!.alert).toMatchObject({ id: raised[0]!.alert.id, priority: 'high', value: 7, updatedAt: T0 + 17_000 })
  })
})

describe('escalation and acknowledgement', () => {
  it('escalates an unacknowledged high-priority alert every escalateAfterMs until acknowledged', async () => {
    const h = await harness({ escalateAfterMs: 60_000 })
    h.engine.onFrame(frame({ t: T0, assessment: { stemiSuspected: true } }), T0)
    const id = h.of('stemi', 'raised')[0]!.alert.id
    h.engine.tick(T0 + 59_999)
    expect(h.of('stemi', 'escalated')).toHaveLength(0)
    h.engine.tick(T0 + 60_000)
    expect(h.of('stemi', 'escalated').map(e => [e.alert.escalations, e.alert.escalatedAt])).toEqual([[1, T0 + 60_000]])
    h.engine.tick(T0 + 119_999)
    expect(h.of('stemi', 'escalated')).toHaveLength(1)
    h.engine.tick(T0 + 120_000)
    expect(h.of('stemi', 'escalated').map(e => e.alert.escalations)).toEqual([1, 2])

    const acked = h.engine.acknowledge(id, 'Dr Okafor', T0 + 130_000)
    expect(acked).toMatchObject({ id, acknowledgedBy: 'Dr Okafor', acknowledgedAt: T0 + 130_000, escalations: 2 })
    expect(h.of('stemi', 'acknowledged')).toHaveLength(1)
    h.engine.tick(T0 + 500_000)
    expect(h.of('stemi', 'escalated')).toHaveLength(2)
  })

  it('medium-priority alerts do not escalate', async () => {
    const h = await harness({ escalateAfterMs: 60_000 })
    h.engine.onFrame(frame({ t: T0, alarms: [{ code: 'ST_DRIFT', priority: 2 }] }), T0)
    h.engine.tick(T0 + 59_000)
    h.engine.tick(T0 + 120_000)
    expect(h.of('device_alarm', 'escalated')).toEqual([])
    // (meanwhile the silent unit's high-priority signal loss did escalate)
    expect(h.of('signal_loss', 'escalated')).toHaveLength(1)
  })

  it('records who acknowledged and when; a second acknowledgement keeps the first; unknown ids give null', async () => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0, assessment: { stemiSuspected: true } }), T0)
    const id = h.of('stemi', 'raised')[0]!.alert.id
    expect(h.engine.acknowledge(id, 'Dr A', T0 + 1000)).toMatchObject({ acknowledgedBy: 'Dr A', acknowledgedAt: T0 + 1000 })
    expect(h.engine.acknowledge(id, 'Dr B', T0 + 2000)).toMatchObject({ acknowledgedBy: 'Dr A', acknowledgedAt: T0 + 1000 })
    expect(h.of('stemi', 'acknowledged')).toHaveLength(1)
    expect(h.engine.get(id)).toMatchObject({ acknowledgedBy: 'Dr A' })
    expect(h.engine.acknowledge('no-such-id', 'Dr A')).toBeNull()
    expect(() => h.engine.acknowledge(id, '  ')).toThrow(TypeError)
  })
})

describe('restart survival', () => {
  it('reopening the journal restores open alerts with their ack state, ids and hysteresis', async () => {
    const dir = await tempDir()
    const clock = { now: T0 }
    const opts = { dir, tickIntervalMs: 0, now: () => clock.now }
    const first = await AlertEngine.open(opts)
    for (let t = T0; t <= T0 + 10_000; t += 1000) first.onFrame(frame({ t, numerics: { ...NORMAL, heart_rate: 35 } }), t)
    first.onFrame(frame({ t: T0 + 11_000, numerics: NORMAL, assessment: { stemiSuspected: true } }), T0 + 11_000)
    first.onFrame(frame({ t: T0 + 12_000, unit: 'amb-2', alarms: [{ code: 'LEAD_OFF', priority: 1 }] }), T0 + 12_000)
    const stemi = first.openAlerts().find(a => a.kind === 'stemi')!
    first.acknowledge(stemi.id, 'Dr Okafor', T0 + 13_000)
    clock.now = T0 + 14_000
    first.tick()   // no change (nothing due)
    const before = first.openAlerts()
    expect(before.map(a => a.kind).sort()).toEqual(['device_alarm', 'news2', 'stemi', 'threshold'])
    await first.close()
    await first.close()   // twice is safe

    const second = await AlertEngine.open(opts)
    onTestFinished(() => second.close())
    expect(second.openAlerts()).toEqual(before)
    expect(second.get(stemi.id)).toMatchObject({ acknowledgedBy: 'Dr Okafor', acknowledgedAt: T0 + 13_000 })

    // Hysteresis continues: HR still low updates the same alert, never raises a second one.
    const events: AlertEvent[] = []
    second.on('alert', e => { events.push(e) })
    const hrId = before.find(a => a.key === 'heart_rate')!.id
    for (let t = T0 + 20_000; t <= T0 + 40_000; t += 1000) second.onFrame(frame({ t, numerics: { ...NORMAL, heart_rate: 36 } }), t)
    expect(events.filter(e => e.type === 'raised')).toEqual([])
    for (let t = T0 + 41_000; t <= T0 + 67_000; t += 1000) second.onFrame(frame({ t, numerics: NORMAL }), t)
    expect(events.filter(e => e.type === 'cleared' && e.alert.kind === 'threshold').map(e => e.alert.id)).toEqual([hrId])
  })

  it('escalation continues after a restart; cleared alerts stay retrievable; a torn last line is skipped', async () => {
    const dir = await tempDir()
    const clock = { now: T0 }
    const errors: Error[] = []
    const opts = { dir, tickIntervalMs: 0, now: () => clock.now, escalateAfterMs: 60_000, onError: (e: Error) => { errors.push(e) } }
    const first = await AlertEngine.open(opts)
    first.onFrame(frame({ t: T0, assessment: { stemiSuspected: true } }), T0)
    first.onFrame(frame({ t: T0 + 1000, unit: 'amb-3', assessment: { stemiSuspected: true } }), T0 + 1000)
    first.onFrame(frame({ t: T0 + 2000, unit: 'amb-3', assessment: { stemiSuspected: false } }), T0 + 2000)
    const [open] = first.openAlerts()
    const cleared = first.alertsFor('amb-3')[0]!
    await first.close()
    await appendFile(join(dir, 'journal.ndjson'), '{"e":"raised","a":{"id":"x')   // crash mid-write

    clock.now = T0 + 70_000
    const second = await AlertEngine.open(opts)
    onTestFinished(() => second.close())
    expect(errors.map(e => e.message)).toEqual([expect.stringMatching(/1 unreadable line/)])
    expect(second.get(cleared.id)).toMatchObject({ clearedAt: T0 + 2000 })
    const events: AlertEvent[] = []
    second.on('alert', e => { events.push(e) })
    second.tick(T0 + 70_000)   // due at T0 + 60 000 (before the restart)
    expect(events.map(e => [e.type, e.alert.id, e.alert.escalations])).toEqual([['escalated', open!.id, 1]])
    const journal = await readFile(join(dir, 'journal.ndjson'), 'utf8')
    expect(journal).not.toContain('"id":"x')   // compacted on open
  })
})

describe('journal compaction', () => {
  it('compacts online past compactBytes without losing events made meanwhile', async () => {
    const dir = await tempDir()
    const clock = { now: T0 }
    const opts = { dir, tickIntervalMs: 0, now: () => clock.now, compactBytes: 10_000, signalLossMs: 3_600_000 }
    const first = await AlertEngine.open(opts)
    // 100 changes of one device alarm's text: 101 journal lines for one alert.
    for (let i = 0; i <= 100; i++) first.onFrame(frame({ t: T0 + i * 100, alarms: [{ code: 'NIBP_CUFF', priority: 2, text: `retry ${i}` }] }), T0 + i * 100)
    first.tick(T0 + 20_000)   // housekeeping: the journal is past 10 kB, compaction starts
    first.onFrame(frame({ t: T0 + 20_001, unit: 'amb-9', assessment: { stemiSuspected: true } }), T0 + 20_001)   // during compaction
    const before = first.openAlerts()
    await first.close()
    const lines = (await readFile(join(dir, 'journal.ndjson'), 'utf8')).trimEnd().split('\n')
    expect(lines).toHaveLength(2)
    const second = await AlertEngine.open(opts)
    onTestFinished(() => second.close())
    expect(second.openAlerts()).toEqual(before)
    expect(before.map(a => a.message)).toEqual(['Device alarm NIBP_CUFF: retry 100', 'STEMI suspected by the crew: cath-lab pre-notification'])
  })
})

describe('signal loss', () => {
  it('raises after signalLossMs without frames from a unit with an encounter, clears once the link is steady for linkSteadyMs', async () => {
    const h = await harness({ signalLossMs: 10_000 })
    h.engine.onFrame(frame({ t: T0, numerics: NORMAL }), T0)
    h.engine.onFrame(frame({ t: T0, unit: 'idle', encounter: '', numerics: NORMAL }), T0)
    h.engine.tick(T0 + 9_999)
    expect(h.of('signal_loss')).toEqual([])
    h.engine.tick(T0 + 10_000)
    const raised = h.of('signal_loss', 'raised')
    expect(raised.map(e => [e.alert.unit, e.alert.priority, e.alert.raisedAt])).toEqual([['amb-1', 'high', T0 + 10_000]])
    expect(raised[0]!.alert.message).toMatch(/No telemetry for 10 s/)
    h.engine.tick(T0 + 12_000)
    expect(h.of('signal_loss')).toHaveLength(1)
    // Frames resume at 15 s, one a second: cleared 60 s later, not at the first frame.
    for (let t = T0 + 15_000; t <= T0 + 75_000; t += 1000) { h.engine.onFrame(frame({ t, numerics: NORMAL }), t); h.engine.tick(t) }
    expect(h.of('signal_loss', 'cleared').map(e => e.alert.clearedAt)).toEqual([T0 + 75_000])
  })

  it('a will message (offline) raises at once; online and steady frames clear', async () => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0, numerics: NORMAL }), T0)
    h.engine.onStatus('amb-1', 'offline', T0 + 500)
    h.engine.onStatus('never-seen', 'offline', T0 + 500)
    expect(h.of('signal_loss', 'raised').map(e => [e.alert.unit, e.alert.raisedAt, e.alert.message])).toEqual([['amb-1', T0 + 500, 'Unit offline: its connection was lost (will message)']])
    h.engine.onStatus('amb-1', 'online', T0 + 3000)
    h.engine.tick(T0 + 12_000)   // grace from the reconnection: no second alert
    expect(h.of('signal_loss', 'cleared')).toHaveLength(0)
    for (let t = T0 + 4000; t <= T0 + 70_000; t += 1000) { h.engine.onFrame(frame({ t, numerics: NORMAL }), t); h.engine.tick(t) }
    expect(h.of('signal_loss', 'raised')).toHaveLength(1)
    // Steady since the reconnection at 3 s: cleared 60 s later.
    expect(h.of('signal_loss', 'cleared').map(e => e.alert.clearedAt)).toEqual([T0 + 63_000])
  })
})

describe('device alarms', () => {
  it('pass through with their IEC 60601-1-8 priority, deduplicated by code; medium/low expire when not repeated, high latch', async () => {
    const h = await harness({ deviceAlarmHoldMs: 60_000 })
    h.engine.onFrame(frame({
      t: T0,
      alarms: [{ code: 'SPO2_PROBE_OFF', priority: 1, text: 'SpO2 probe off' }, { code: 'HR_LOW', priority: 2 }, { code: 'VF', priority: 3, text: 'Ventricular fibrillation' }, { code: 'MISC', priority: 0 }]
    }), T0)
    expect(h.of('device_alarm', 'raised').map(e => [e.alert.key, e.alert.priority, e.alert.value])).toEqual([
      ['SPO2_PROBE_OFF', 'low', null], ['HR_LOW', 'medium', null], ['VF', 'high', null], ['MISC', 'medium', null]
    ])
    expect(h.of('device_alarm', 'raised')[2]!.alert.message).toBe('Device alarm VF: Ventricular fibrillation')
    // VF repeated at 30 s: refreshed, not duplicated.
    h.engine.onFrame(frame({ t: T0 + 30_000, alarms: [{ code: 'VF', priority: 3, text: 'Ventricular fibrillation' }] }), T0 + 30_000)
    expect(h.of('device_alarm', 'raised')).toHaveLength(4)
    h.engine.tick(T0 + 60_000)
    expect(h.of('device_alarm', 'cleared').map(e => e.alert.key).sort()).toEqual(['HR_LOW', 'MISC', 'SPO2_PROBE_OFF'])
    h.engine.tick(T0 + 600_000)
    expect(h.of('device_alarm', 'cleared').map(e => e.alert.key)).not.toContain('VF')
  })
})

describe('STEMI and stroke pre-notification', () => {
  const MIN = 60_000
  it('STEMI suspected raises a high-priority cath-lab pre-notification; withdrawn clears it', async () => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0, assessment: { stemiSuspected: true } }), T0)
    expect(h.of('stemi', 'raised').map(e => [e.alert.priority, e.alert.message, e.alert.value])).toEqual([['high', 'STEMI suspected by the crew: cath-lab pre-notification', null]])
    h.engine.onFrame(frame({ t: T0 + 1000, assessment: { stemiSuspected: true } }), T0 + 1000)
    expect(h.of('stemi')).toHaveLength(1)
    h.engine.onFrame(frame({ t: T0 + 2000, assessment: { stemiSuspected: false } }), T0 + 2000)
    expect(h.of('stemi', 'cleared')).toHaveLength(1)
  })

  it.each([
    [{ lamsScore: 5, fastPositive: true, lastKnownWellMs: T0 - 95 * MIN }, 95,
      'Stroke pre-notification: LAMS 5 (≥ 4: suspected large-vessel occlusion), FAST positive; last known well 1 h 35 min ago: within the 4.5 h thrombolysis window (2 h 55 min left) and the 24 h thrombectomy window'],
    [{ lamsScore: 4, fastPositive: false, lastKnownWellMs: T0 - 6 * 60 * MIN }, 360,
      'Stroke pre-notification: LAMS 4 (≥ 4: suspected large-vessel occlusion); last known well 6 h 0 min ago: beyond the 4.5 h thrombolysis window; within the 24 h thrombectomy window (18 h 0 min left)'],
    [{ lamsScore: 2, fastPositive: true, lastKnownWellMs: T0 - 25 * 60 * MIN }, 1500,
      'Stroke pre-notification: LAMS 2, FAST positive; last known well 25 h 0 min ago: beyond the 4.5 h thrombolysis and 24 h thrombectomy windows'],
    [{ lamsScore: 5, fastPositive: true, lastKnownWellMs: 0 }, null,
      'Stroke pre-notification: LAMS 5 (≥ 4: suspected large-vessel occlusion), FAST positive; last known well not recorded: reperfusion windows cannot be assessed']
  ] as const)('stroke %o → value %s', async (assessment, minutes, message) => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0, assessment }), T0)
    expect(h.of('stroke', 'raised').map(e => [e.alert.priority, e.alert.value, e.alert.message])).toEqual([['high', minutes, message]])
  })

  it('LAMS < 4 with FAST negative is no stroke alert; the windows passing update the message', async () => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0, assessment: { lamsScore: 3, fastPositive: false, lastKnownWellMs: T0 - 60 * MIN } }), T0)
    expect(h.of('stroke')).toEqual([])
    const lkw = T0 - 4 * 60 * MIN
    h.engine.onFrame(frame({ t: T0 + 1000, assessment: { lamsScore: 6 - 1, fastPositive: true, lastKnownWellMs: lkw } }), T0 + 1000)
    expect(h.of('stroke', 'raised')).toHaveLength(1)
    h.engine.tick(lkw + 4.5 * 60 * MIN)
    expect(h.of('stroke', 'updated')).toHaveLength(0)
    h.engine.tick(lkw + 4.5 * 60 * MIN + 1)
    const up = h.of('stroke', 'updated')
    expect(up).toHaveLength(1)
    expect(up[0]!.alert.message).toMatch(/beyond the 4.5 h thrombolysis window; within the 24 h thrombectomy window \(19 h 29 min left\)$/)
    h.engine.onFrame(frame({ t: T0 + 2000, assessment: { lamsScore: 0, fastPositive: false, lastKnownWellMs: lkw } }), T0 + 2000)
    expect(h.of('stroke', 'cleared')).toHaveLength(1)
  })
})

describe('NEWS2 in the engine', () => {
  it('alerts on a single 3 after the minimum duration, keeps the trend, and reports stale readings as missing', async () => {
    const h = await harness()
    h.feed(T0, T0 + 10_000, { consciousness_acvpu: 2 })
    const raised = h.of('news2', 'raised')
    expect(raised.map(e => [e.alert.priority, e.alert.value])).toEqual([['medium', 3]])
    expect(raised[0]!.alert.message).toBe('NEWS2 3 (a single parameter scores 3: urgent ward-based response): ACVPU V +3 (0 s ago)')
    const history = h.engine.news2History('amb-1')
    expect(history[0]).toMatchObject({ atMs: T0, total: 3, complete: true, band: 'low-medium' })
    // Back to alert: clears once ≥ 90 % of the 30 s clear window is below the trigger (27 s).
    h.feed(T0 + 11_000, T0 + 36_000, {})
    expect(h.of('news2', 'cleared')).toHaveLength(0)
    h.feed(T0 + 37_000, T0 + 37_000, {})
    expect(h.of('news2', 'cleared')).toHaveLength(1)
    expect(h.engine.news2History('amb-1').at(-1)).toMatchObject({ total: 0, band: 'low' })
    // Silence: NIBP and temperature go stale after 15 min, the rest after 5.
    expect(h.engine.news2For('amb-1', T0 + 37_000 + 6 * 60_000)).toMatchObject({ complete: false, missing: ['respiration_rate', 'spo2', 'air_or_oxygen', 'pulse', 'consciousness'], total: null })
    expect(h.engine.news2For('nobody')).toBeNull()
  })

  it('a new encounter clears the previous patient\'s alerts and readings; assigning one re-tags them', async () => {
    const h = await harness()
    h.feed(T0, T0 + 10_000, { heart_rate: 35 }, { encounter: '' })
    const open = h.engine.openAlerts()
    expect(open.map(a => a.encounter)).toEqual(['', ''])
    h.feed(T0 + 11_000, T0 + 11_000, { heart_rate: 35 }, { encounter: 'enc-7' })
    expect(h.engine.openAlerts().map(a => [a.id, a.encounter])).toEqual(open.map(a => [a.id, 'enc-7']))
    h.engine.onFrame(frame({ t: T0 + 12_000, encounter: 'enc-8', numerics: { heart_rate: 80 } }), T0 + 12_000)
    expect(h.engine.openAlerts()).toEqual([])
    expect(h.engine.news2For('amb-1', T0 + 12_000)).toMatchObject({ missing: ['respiration_rate', 'spo2', 'air_or_oxygen', 'systolic_bp', 'consciousness', 'temperature'] })
  })

  it('a resent frame changes no physiology, and an alarm the device has since ended stays ended', async () => {
    const h = await harness()
    h.feed(T0, T0 + 2_000, {})
    h.engine.onFrame(frame({ t: T0 + 3_000, numerics: { ...NORMAL, heart_rate: 30 }, alarms: [{ code: 'ASYSTOLE', priority: 3 }] }), T0 + 3_000)
    h.engine.onFrame(frame({ t: T0 + 4_000, numerics: NORMAL, alarms: [{ code: 'ASYSTOLE', priority: 3, ended: true }] }), T0 + 4_000)
    // The onset frame again (store-and-forward resend): no second ASYSTOLE, no heart-rate sample.
    h.engine.onFrame(frame({ t: T0 + 3_000, numerics: { ...NORMAL, heart_rate: 30 }, alarms: [{ code: 'ASYSTOLE', priority: 3 }] }), T0 + 5_000)
    expect(h.of('device_alarm').map(e => e.type)).toEqual(['raised', 'cleared'])
    expect(h.engine.news2For('amb-1', T0 + 5_000)!.parameters.pulse).toMatchObject({ value: 72 })
  })
})

describe('rules file', () => {
  it('merges overrides over the defaults, adds and disables rules', () => {
    const rules = parseRulesConfig({ rules: { heart_rate: { low: 45, priority: 'high' }, pulse_rate: { high: 150 }, etco2: null } })
    expect(rules.find(r => r.sign === 'heart_rate')).toMatchObject({ low: 45, high: 130, lowPriority: 'high', highPriority: 'high', minDurationMs: 10_000 })
    expect(rules.find(r => r.sign === 'pulse_rate')).toMatchObject({ low: 41, high: 150, critHigh: 150, minDurationMs: 10_000, lowPriority: 'high' })
    expect(rules.find(r => r.sign === 'etco2')).toBeUndefined()
    expect(rules).toHaveLength(DEFAULT_RULES.length - 1)
  })

  it.each([
    [[], '(top level) must be a JSON object'],
    [{ rule: {} }, 'rule is not a known key'],
    [{ rules: { heart_rat: {} } }, 'rules.heart_rat is not a vital sign'],
    [{ rules: { heart_rate: { low: '40' } } }, 'rules.heart_rate.low must be a number or null, got "40"'],
    [{ rules: { heart_rate: { lowPriority: 'urgent' } } }, 'rules.heart_rate.lowPriority must be one of low, medium, high'],
    [{ rules: { spo2: { minDurationMs: -1 } } }, 'rules.spo2.minDurationMs must be a whole number of ms'],
    [{ rules: { spo2: { delay: 5 } } }, 'rules.spo2.delay is not a known key'],
    [{ rules: { spo2: { low: null } } }, 'rules.spo2 needs a low or a high limit'],
    [{ rules: { heart_rate: { low: 100, high: 105 } } }, 'rules.heart_rate limits leave no room to clear']
  ])('%j fails naming the key', (json, message) => {
    expect(() => parseRulesConfig(json, 'rules.json')).toThrow(expect.objectContaining({ code: 'AMB_ERR_ALERT_RULES', message: expect.stringContaining(`rules.json: ${message}`) }))
  })

  it('loadRulesFile names the file for unreadable or invalid JSON', async () => {
    const dir = await tempDir()
    const bad = join(dir, 'rules.json')
    await writeFile(bad, '{ "rules": ')
    await expect(loadRulesFile(bad)).rejects.toThrow(`ALERT_RULES_FILE ${bad}: not valid JSON`)
    await expect(loadRulesFile(join(dir, 'none.json'))).rejects.toThrow(/cannot read/)
    await writeFile(bad, JSON.stringify({ rules: { temperature: { high: 40 } } }))
    expect((await loadRulesFile(bad)).find(r => r.sign === 'temperature')).toMatchObject({ low: 35, high: 40 })
  })
})

describe('alert line protocol', () => {
  it('is a pure function of the event: a replay writes the same point; distinct events at one instant stay distinct', async () => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0, alarms: [{ code: 'LEAD OFF,V1="x"', priority: 3, text: 'Lead "V1" off\nreplace' }] }), T0)
    h.engine.acknowledge(h.events[0]!.alert.id, 'Dr "Q"', T0)
    const [raised, acked] = h.events
    const line = alertEventToLine(raised!)
    expect(alertEventToLine(raised!)).toBe(line)
    expect(line).toBe(`alerts,unit=amb-1,encounter=enc-1,kind=device_alarm,key=LEAD_OFF_V1__x_,priority=high event="raised",id="${raised!.alert.id}",message="Device alarm LEAD OFF,V1=\\"x\\": Lead \\"V1\\" off replace",escalations=0i ${T0 * 1000}\n`)
    const ackLine = alertEventToLine(acked!)
    expect(ackLine).toContain(',acknowledged_by="Dr \\"Q\\""')
    expect(ackLine.trimEnd().endsWith(` ${T0 * 1000 + 3}`)).toBe(true)
  })

  it('omits encounter and key tags when empty and value when null', async () => {
    const h = await harness()
    h.feed(T0, T0 + 10_000, { consciousness_acvpu: 4 }, { encounter: '' })
    const line = alertEventToLine(h.of('news2', 'raised')[0]!)
    expect(line.startsWith('alerts,unit=amb-1,kind=news2,priority=medium event="raised"')).toBe(true)
    expect(line).toContain(',value=3,')
  })
})
