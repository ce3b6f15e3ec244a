/**
 * The alert engine: from validated frames (and units' will messages) to alerts for clinicians.
 * Threshold rules and NEWS2 from the latest numerics, device alarms passed through, STEMI and
 * stroke pre-notification from the crew's assessment, signal loss; one open alert per
 * (unit, kind, key), updated rather than duplicated; escalation of unacknowledged high-priority
 * alerts; acknowledgement by a named clinician; state kept in a journal across restarts.
 *
 * Clocks. Physiology runs on sample time (device captured_at_ms + offset_ms): rule durations,
 * hysteresis, NEWS2 staleness and the NEWS2 trend, so network delays neither fake nor hide a
 * sustained condition and the same frames always give the same alerts (and the same alert
 * timestamps: see line-protocol.ts). The link and the people run on the gateway clock (`now`,
 * injectable): signal loss, escalation, acknowledgement, device-alarm expiry.
 *
 * Hot path: onFrame does O(numerics) work with no JSON, no timers and no per-sample strings;
 * JSON and journal writes happen only when an alert changes.
 */
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { VITAL_SIGN_BY_NUMBER, type Assessment, type Frame } from '../../decoders/index.js'
import type { WireAlarm } from '../../decoders/schema.js'
import { AlertBook, slotOf } from './book.js'
import { ClinicalAudit } from './clinical-audit.js'
import { AlertJournal, type JournalRecord } from './journal.js'
import { LinkWatch, LOSS } from './link.js'
import {
  deviceAlarmMessage, minutesSinceLkw, news2Message, OFFLINE_MESSAGE, STEMI_MESSAGE,
  strokeMessage, strokeSuspected, strokeWindow, thresholdMessage, type StrokeContext, type StrokeFindings
} from './messages.js'
import { news2, NEWS2_FIELDS, NEWS2_STALENESS_DEFAULTS, type News2Result, type News2Staleness } from './news2.js'
import { PAEDIATRIC_BELOW_YEARS, paediatricRules } from './paediatric.js'
import { DEFAULT_RULES, judgeRule, ruleState, type RuleVerdict, type ThresholdRule } from './rules.js'
import { JournalStateStore, type AlertStateStore, type UnitSnapshot } from './state-store.js'
import type { Alert, AlertEvent, AlertPriority } from './types.js'
import { UnitState, type Entry, type News2Point } from './unit-state.js'
import { EcgStemiWatch, type EcgFinding } from './ecg-stemi.js'
import type { EcgSnapshot } from './ecg-snapshot.js'

export interface AlertEngineOptions {
  /** Folder of the journal (DATA_DIR/alerts); null keeps alerts in memory only. */
  dir: string | null
  rules: readonly ThresholdRule[]
  /** NEWS2 staleness per parameter, ms. */
  news2Staleness: News2Staleness
  /** NEWS2 raise window (sample time, ms): a trigger level present for ≥ 70 % of it raises (artefact filter). */
  news2MinDurationMs: number
  /** NEWS2 clear window (sample time, ms): ≥ 90 % of it below the alert's level steps down or clears. */
  news2ClearMs: number
  /** No frame for this long (gateway ms) from a unit with an active encounter: signal loss. */
  signalLossMs: number
  /** A gap between frames longer than this (gateway ms) counts as a gap of the link. */
  linkGapMs: number
  /** This many gaps within linkWindowMs raise signal loss (degraded link) before any long silence. */
  linkDegradedGaps: number
  linkWindowMs: number
  /** Signal loss clears only once the link has run this long without a gap (gateway ms). */
  linkSteadyMs: number
  /** One stream (ECG, or a continuous numeric) absent this long while others continue: stream loss (ms). */
  streamLossMs: number
  /** A high-priority alert unacknowledged this long (ms) escalates, and again every such period. */
  escalateAfterMs: number
  /**
   * An acknowledgement silences an alert whose condition persists for this long (ms, per
   * priority), then it alarms again (IEC 60601-1-8 "audio paused" is time-limited).
   */
  ackSilenceMs: Readonly<Record<AlertPriority, number>>
  /**
   * A medium or low device alarm not repeated for this long (gateway ms) clears (devices report
   * onsets). A high one stays until the device says it ended, or until acknowledged and then not
   * repeated for this long.
   */
  deviceAlarmHoldMs: number
  /** Durable per-unit state (roster, readings); default: a journal in `dir` (none when dir is null). */
  stateStore: AlertStateStore | null
  /** How often a changed unit's state is saved (gateway ms). */
  snapshotIntervalMs: number
  /** Least time (gateway ms) between `updated` events that change only value or message; priority changes go out at once. */
  updateIntervalMs: number
  /** Cleared alerts stay retrievable (and in the journal) this long, ms. */
  retainClearedMs: number
  /** NEWS2 trend kept per unit, ms, and its resolution. */
  news2HistoryMs: number
  news2HistoryStepMs: number
  /** Journal size that triggers compaction, bytes. */
  compactBytes: number
  /** Period of the timer driving tick(), ms; 0 = no timer (tests call tick). */
  tickIntervalMs: number
  /** Gateway clock. */
  now: () => number
  /** Journal failures and listener exceptions; the engine keeps running. */
  onError: (err: Error) => void
}

export const ALERT_ENGINE_DEFAULTS = Object.freeze({
  dir: null,
  rules: DEFAULT_RULES,
  news2Staleness: NEWS2_STALENESS_DEFAULTS,
  news2MinDurationMs: 10_000,
  news2ClearMs: 30_000,
  signalLossMs: 10_000,
  linkGapMs: 5_000,
  linkDegradedGaps: 3,
  linkWindowMs: 120_000,
  linkSteadyMs: 60_000,
  streamLossMs: 10_000,
  escalateAfterMs: 60_000,
  // IEC 60601-1-8 leaves the audio-paused interval to the manufacturer; 2 min for high priority
  // is the common monitor default and matches the 60 s escalation: a silenced high alert whose
  // condition persists comes back before a second escalation period passes unnoticed.
  ackSilenceMs: Object.freeze({ high: 120_000, medium: 300_000, low: 900_000 }),
  deviceAlarmHoldMs: 60_000,
  stateStore: null,
  snapshotIntervalMs: 5_000,
  updateIntervalMs: 10_000,
  retainClearedMs: 3_600_000,
  news2HistoryMs: 30 * 60_000,
  news2HistoryStepMs: 5_000,
  compactBytes: 8 * 1024 * 1024,
  tickIntervalMs: 1_000
})

/** IEC 60601-1-8 priority of a DeviceAlarm (AlarmPriority 1/2/3); unspecified counts as medium. */
const ALARM_PRIORITY: readonly AlertPriority[] = ['medium', 'low', 'medium', 'high']
const NEWS2_LEVEL: Readonly<Record<string, number>> = { 'single-parameter': 1, urgent: 2, emergency: 3 }
const LEVEL_PRIORITY: readonly AlertPriority[] = ['low', 'medium', 'medium', 'high']
/** NEWS2 window shares: ≥ 70 % of the raise window raises a level; ≥ 90 % of the clear window below it steps down. */
const NEWS2_RAISE = 0.7
const NEWS2_CLEAR = 0.9
const NEWS2 = 'news2/'
const STEMI = 'stemi/'
const STROKE = 'stroke/'
const STEMI_ECG = 'stemi/ecg'
/** Units with no open alert, no encounter and silent this long are forgotten (memory bound). */
const FORGET_UNIT_MS = 3_600_000

export interface AlertEngineEvents { alert: [AlertEvent] }

export class AlertEngine extends EventEmitter<AlertEngineEvents> {
  readonly options: Readonly<AlertEngineOptions>
  private readonly units = new Map<string, UnitState>()
  private readonly book: AlertBook
  private readonly link: LinkWatch
  private store: AlertStateStore | null
  private audit: ClinicalAudit | null = null
  /** Rule index per VitalSign number. */
  private readonly ruleBySign: (number | undefined)[] = []
  private readonly ruleSlots: string[]
  /** Children's rules by unit (replacing the adult ones index for index). */
  private readonly childRules = new Map<UnitState, ThresholdRule[]>()
  private readonly verdict: RuleVerdict = { side: null, priority: 'medium', clear: false }
  private timer: NodeJS.Timeout | null = null
  private lastHousekeepingGw = -Infinity
  private closed = false
  /** STEMI from the ECG (issue 9): ecg-stemi.ts. */
  private readonly ecgStemi: EcgStemiWatch
  private closing: Promise<void> | null = null

  private constructor (options: Partial<AlertEngineOptions>) {
    super()
    const o: AlertEngineOptions = { ...ALERT_ENGINE_DEFAULTS, now: Date.now, onError: () => {}, ...options }
    this.options = Object.freeze(o)
    for (let i = 0; i < o.rules.length; i++) {
      const sign = VITAL_SIGN_BY_NUMBER.findIndex(s => s?.field === o.rules[i]!.sign)
      if (sign > 0) this.ruleBySign[sign] = i
    }
    this.ruleSlots = o.rules.map(r => slotOf('threshold', r.sign))
    this.book = new AlertBook(o, ev => { this.emitSafe(ev) })
    this.link = new LinkWatch(o, this.book)
    this.store = o.stateStore ?? (o.dir === null ? null : new JournalStateStore(o.dir, o.onError, o.compactBytes))
    this.ecgStemi = new EcgStemiWatch(o.dir === null ? null : join(o.dir, 'ecg'), o.onError)
  }

  /** Opens the engine: reloads the ward (units, readings) and open alerts, starts the timer. */
  static async open (options: Partial<AlertEngineOptions> = {}): Promise<AlertEngine> {
    const engine = new AlertEngine(options)
    await engine.restore()
    const every = engine.options.tickIntervalMs
    if (every > 0) {
      engine.timer = setInterval(() => { engine.tick() }, every)
      engine.timer.unref()
    }
    return engine
  }

  private async restore (): Promise<void> {
    const { dir, retainClearedMs, now, onError } = this.options
    const t = now()
    if (dir !== null) this.audit = await ClinicalAudit.open(dir)
    if (this.store !== null) {
      for (const snap of await this.store.loadAll()) this.adoptUnit(snap, t)
    }
    if (dir === null) return
    const keep = (a: Alert): boolean => a.clearedAt === null || a.clearedAt >= t - retainClearedMs
    const { journal, records, skipped } = await AlertJournal.open(dir, keep, onError)
    this.book.journal = journal
    if (skipped > 0) onError(new Error(`alert journal: ${skipped} unreadable line(s) skipped (torn write at a crash?)`))
    for (const r of records) this.adopt(r, t)
  }

  /** A unit of the ward before the restart: watched again from now (signal loss if it never returns). */
  private adoptUnit (s: UnitSnapshot, t: number): void {
    const u = this.unit(s.unit, t)
    u.encounter = s.encounter
    u.bootId = s.bootId
    u.lastCapturedAt = s.lastCapturedAt
    u.readings = s.readings
    u.news2Level = s.news2Level
    u.spo2Scale = s.spo2Scale === 2 ? 2 : 1
    if (s.hadEcg) u.lastEcgGw = t
    this.setAge(u, s.ageYears)
  }

  /** Re-creates a journaled alert, and its unit so signal loss and hysteresis pick up where they were. */
  private adopt (r: JournalRecord, t: number): void {
    const a = r.a
    const stroke = r.s ?? null
    const e = this.book.adopt(r, t, stroke === null ? -1 : strokeWindow(stroke.lastKnownWellMs, t))
    if (a.clearedAt !== null) return
    const u = this.unit(a.unit, t)
    if (u.encounter === '') u.encounter = a.encounter
    const slot = slotOf(a.kind, a.key)
    u.open.set(slot, e)
    if (a.kind === 'news2' && u.news2Level === 0) u.news2Level = a.priority === 'high' ? 3 : 2
    if (a.kind === 'stroke' && stroke !== null) {
      u.lamsScore = stroke.lamsScore
      u.fastPositive = stroke.fastPositive
      u.lastKnownWellMs = stroke.lastKnownWellMs
    }
    if (a.kind === 'stemi') u.stemi = true
    if (a.kind === 'threshold') {
      const rule = this.options.rules.find(x => x.sign === a.key)
      // The hospital removed this rule since: nothing could ever clear the alert.
      if (rule === undefined) { this.book.clear(u, slot, e, t, t); return }
      const v = a.value ?? NaN
      e.side = rule.low !== null && (rule.high === null || v < (rule.low + rule.high) / 2) ? 'low' : 'high'
    }
  }

  private unit (id: string, nowGw: number): UnitState {
    let u = this.units.get(id)
    if (u === undefined) {
      const o = this.options
      u = new UnitState(id, o.rules, nowGw, o.news2MinDurationMs, o.news2ClearMs)
      this.units.set(id, u)
    }
    return u
  }

  /**
   * Starts watching a unit this process has not seen (another gateway process had it, or the
   * roster came from elsewhere): it raises signal loss unless frames arrive within signalLossMs
   * of `lastSeenMs`. A unit already watched is left as it is.
   */
  watchUnit (unit: string, lastSeenMs: number, encounter = '?'): void {
    if (this.closed || this.units.has(unit)) return
    const u = this.unit(unit, lastSeenMs)
    u.encounter = encounter
    u.dirty = true
  }

  /** Whether the engine has processed a frame of the unit (a take-over would be older than what it knows). */
  hasFramesOf (unit: string): boolean { return (this.units.get(unit)?.lastCapturedAt ?? -Infinity) > -Infinity }

  /**
   * Takes over a unit another gateway process held (failover, or the unit reconnected here):
   * its snapshot (readings, NEWS2 level, scale, age, encounter) and the cluster's open alerts
   * for it (same ids; an acknowledgement keeps its silence, escalation its schedule), so the
   * next frames continue them: nothing is raised again, NEWS2 scores with the inputs already
   * known. Ignored for a unit whose frames this engine already processed (its own state is
   * newer); a slot already open here keeps this engine's alert.
   */
  takeOver (snapshot: UnitSnapshot | null, open: readonly Alert[], unit: string, nowMs: number = this.options.now()): void {
    if (this.closed || this.hasFramesOf(unit)) return
    if (snapshot !== null && snapshot.unit === unit) this.adoptUnit(snapshot, nowMs)
    const u = this.unit(unit, nowMs)
    for (const a of open) {
      if (a.unit !== unit || a.clearedAt !== null || u.open.has(slotOf(a.kind, a.key)) || this.book.get(a.id) !== null) continue
      const silence = this.options.ackSilenceMs[a.priority]
      const ackUntil = a.acknowledgedAt === null ? null : Math.max(a.acknowledgedAt + silence, nowMs)
      // Unacknowledged high alerts escalate escalateAfterMs after their last escalation (or raise), as on the first process.
      const due = a.priority === 'high' && a.acknowledgedAt === null ? (a.escalatedAt ?? a.raisedAt) + this.options.escalateAfterMs : null
      this.adopt({ e: 'state', a: { ...a }, x: due, k: ackUntil }, nowMs)
    }
    u.dirty = true
  }

  /** Feeds one validated frame. `nowMs` is the gateway time it arrived. */
  onFrame (f: Frame, nowMs: number = this.options.now()): void {
    if (this.closed) return
    const u = this.unit(f.unitId, nowMs)
    this.link.frameArrived(u, nowMs, f.waveforms.length > 0)

    // A resend (same boot, not newer than what we processed) changes no physiology, but its
    // alarms and assessment may be new to us (a late frame): they are still applied below.
    const resend = f.bootId === u.bootId && f.capturedAtMs <= u.lastCapturedAt
    if (!resend) {
      u.bootId = f.bootId
      u.lastCapturedAt = f.capturedAtMs
      // An empty encounter id never ends an encounter (contract v1.1): only encounter_ended does.
      if (f.encounterId !== '' && f.encounterId !== u.encounter) this.changeEncounter(u, f.encounterId, f.capturedAtMs, nowMs)
      u.dirty = true
      this.numerics(u, f, nowMs)
    }
    for (const a of f.alarms) this.deviceAlarm(u, a, f.capturedAtMs + a.offsetMs, nowMs)
    if (f.assessment !== null) this.assessment(u, f.assessment, f.capturedAtMs, nowMs)
    // STEMI from the ECG (issue 9): the device's interpretation and the gateway's ST measurement.
    if (f.assessment !== null) this.ecgStemi.assessment(u.unit, f.assessment)
    const ecg = this.ecgStemi.onFrame(f)
    if (ecg !== null) this.ecgStemiAlert(u, ecg, f.capturedAtMs, nowMs)
    if (f.encounterEnded && !resend && u.encounter !== '') this.endEncounter(u, f.capturedAtMs, nowMs)
  }

  private numerics (u: UnitState, f: Frame, nowMs: number): void {
    let news2Dirty = false
    let bpDirty = false
    let latest = f.capturedAtMs
    const rules = this.childRules.get(u) ?? this.options.rules
    for (const n of f.numerics) {
      const info = VITAL_SIGN_BY_NUMBER[n.sign]
      if (info === undefined) continue
      const t = f.capturedAtMs + n.offsetMs
      const r = u.readings[info.field]
      if (r === undefined) u.readings[info.field] = { value: n.value, atMs: t }
      else if (t >= r.atMs) { r.value = n.value; r.atMs = t } else continue
      if (t > latest) latest = t
      if (t > u.latestNumericT) u.latestNumericT = t
      if (u.open.size > 0) this.link.streamBack(u, info.field, t, nowMs)
      if (NEWS2_FIELDS.has(info.field)) news2Dirty = true
      if (n.sign === 4 || n.sign === 5) bpDirty = true
      const ri = this.ruleBySign[n.sign]
      if (ri !== undefined) this.applyRule(u, ri, rules[ri]!, n.value, t, nowMs)
    }
    if (news2Dirty) this.evaluateNews2(u, latest, nowMs)
    if (bpDirty) { const e = u.open.get(STROKE); if (e !== undefined) this.strokeUpdate(u, e, latest, nowMs, false) }
  }

  /** Raises or updates the ECG STEMI alert (key 'ecg'); a normal ECG later does not clear it. */
  private ecgStemiAlert (u: UnitState, ecg: EcgFinding, t: number, nowGw: number): void {
    const open = u.open.get(STEMI_ECG)
    if (open === undefined) {
      const e = this.book.raise(u, 'stemi', 'ecg', STEMI_ECG, 'high', ecg.message, ecg.value, t, nowGw)
      this.ecgStemi.capture(u.unit, e.alert.id)
      return
    }
    const changed = this.ecgStemi.changed(u.unit, ecg.fingerprint)
    // Same verdict and leads: only a move of ≥ 0.5 mm in the largest elevation is news.
    if (!changed && Math.abs((ecg.value ?? 0) - (open.alert.value ?? 0)) < 0.5) return
    this.book.update(open, 'high', ecg.message, ecg.value, t, nowGw, changed)
    // The tracing that changed the verdict is the one the cardiologist needs.
    if (changed) this.ecgStemi.capture(u.unit, open.alert.id)
  }

  /** The 10 s 12-lead snapshot taken when an ECG STEMI alert was raised, or null. */
  async ecgSnapshot (alertId: string): Promise<EcgSnapshot | null> { return await this.ecgStemi.snapshots.get(alertId) }

  private applyRule (u: UnitState, ri: number, rule: ThresholdRule, value: number, t: number, nowGw: number): void {
    const w = u.windows[ri]!
    w.add(t, ruleState(rule, value))
    const slot = this.ruleSlots[ri]!
    const open = u.open.get(slot)
    const v = judgeRule(rule, w, open?.side ?? null, open?.alert.priority === 'high', this.verdict)
    if (open === undefined) {
      if (v.side === null) return
      const crit = v.priority === 'high' && (v.side === 'low' ? rule.critLow : rule.critHigh) !== null
      this.book.raise(u, 'threshold', rule.sign, slot, v.priority, thresholdMessage(rule, v.side, value, 0, crit), value, t, nowGw).side = v.side
      return
    }
    if (v.clear) { this.book.clear(u, slot, open, t, nowGw); return }
    const side = v.side!
    const flipped = open.side !== side
    open.side = side
    const crit = v.priority === 'high' && (side === 'low' ? rule.critLow : rule.critHigh) !== null
    this.book.update(open, v.priority, thresholdMessage(rule, side, value, 0, crit), value, t, nowGw, flipped, flipped)
  }

  private evaluateNews2 (u: UnitState, t: number, nowGw: number): void {
    // Under 16 NEWS2 is not applied (RCP 2017); the paediatric limits apply instead.
    if (u.ageYears !== null && u.ageYears < PAEDIATRIC_BELOW_YEARS) { u.news2 = null; return }
    const r = news2(u.readings, t, this.options.news2Staleness, u.spo2Scale)
    u.news2 = r
    u.recordNews2(r, t, this.options.news2HistoryMs, this.options.news2HistoryStepMs)
    const level = r.trigger === null ? 0 : NEWS2_LEVEL[r.trigger]!
    const open = u.open.get(NEWS2)
    const cur = open === undefined ? 0 : u.news2Level
    const w = u.news2Window
    // Stale is not normal: an incomplete score below the open level (a parameter went missing)
    // counts for nothing, so it can neither step the alert down nor clear it.
    if (!r.complete && level < cur) return
    w.add(t, level + 1)
    let target = 0
    for (let l = 3; l >= 1; l--) if (w.raiseShare(l + 1, 4) >= NEWS2_RAISE) { target = l; break }
    const value = r.partialTotal
    if (open === undefined) {
      if (target === 0) return
      u.news2Level = target
      this.book.raise(u, 'news2', '', NEWS2, LEVEL_PRIORITY[target]!, news2Message(r, t), value, t, nowGw)
      return
    }
    if (target > cur) {
      // A higher response band: at once, and it withdraws an acknowledgement.
      u.news2Level = target
      this.book.update(open, LEVEL_PRIORITY[target]!, news2Message(r, t), value, t, nowGw, true, true)
      return
    }
    if (target < cur && w.clearShare(1, cur) >= NEWS2_CLEAR) {
      u.news2Level = target
      if (target === 0) this.book.clear(u, NEWS2, open, t, nowGw)
      else this.book.update(open, LEVEL_PRIORITY[target]!, news2Message(r, t), value, t, nowGw, true)
      return
    }
    this.book.update(open, LEVEL_PRIORITY[cur]!, news2Message(r, t), value, t, nowGw)
  }

  private deviceAlarm (u: UnitState, a: WireAlarm, t: number, nowGw: number): void {
    const slot = slotOf('device_alarm', a.code)
    const open = u.open.get(slot)
    const endT = u.alarmEndT.get(a.code)
    // A late or resent report from before the condition ended is history, not a new onset.
    if (endT !== undefined && t <= endT) return
    if (a.ended === true) {
      // Contract v1.1: the device says the condition ended.
      u.alarmEndT.set(a.code, t)
      if (open !== undefined) this.book.clear(u, slot, open, t, nowGw)
      return
    }
    const priority = ALARM_PRIORITY[a.priority] ?? 'medium'
    const message = deviceAlarmMessage(a.code, a.text)
    if (open === undefined) {
      this.book.raise(u, 'device_alarm', a.code, slot, priority, message, null, t, nowGw)
    } else {
      open.touchedGw = nowGw
      this.book.update(open, priority, message, null, t, nowGw, true)
    }
  }

  private assessment (u: UnitState, a: Assessment, t: number, nowGw: number): void {
    // A resent older assessment must not undo a newer one.
    if (t < u.assessmentT) return
    u.assessmentT = t
    // Contract v1.1: a field the frame left out is unchanged.
    const p = a.present
    if (p.stemiSuspected) u.stemi = a.stemiSuspected
    if (p.lamsScore) u.lamsScore = a.lamsScore
    if (p.fastPositive) u.fastPositive = a.fastPositive
    if (p.lastKnownWellMs) u.lastKnownWellMs = a.lastKnownWellMs
    if (p.ageYears) this.setAge(u, a.ageYears)
    u.dirty = true

    const stemi = u.open.get(STEMI)
    if (u.stemi && stemi === undefined) this.book.raise(u, 'stemi', '', STEMI, 'high', STEMI_MESSAGE, null, t, nowGw)
    else if (!u.stemi && stemi !== undefined) this.book.clear(u, STEMI, stemi, t, nowGw)

    const stroke = u.open.get(STROKE)
    const findings: StrokeFindings = { lamsScore: u.lamsScore, fastPositive: u.fastPositive, lastKnownWellMs: u.lastKnownWellMs }
    if (!strokeSuspected(findings)) {
      if (stroke !== undefined) this.book.clear(u, STROKE, stroke, t, nowGw)
      return
    }
    if (stroke === undefined) {
      const c = this.strokeContext(u)
      this.book.raise(u, 'stroke', '', STROKE, 'high', strokeMessage(findings, t, c), minutesSinceLkw(findings, t), t, nowGw, findings,
        strokeWindow(findings.lastKnownWellMs, t))
      return
    }
    const prev = stroke.stroke
    const changed = prev === null || prev.lamsScore !== findings.lamsScore || prev.fastPositive !== findings.fastPositive ||
      prev.lastKnownWellMs !== findings.lastKnownWellMs
    stroke.stroke = findings
    this.strokeUpdate(u, stroke, t, nowGw, changed)
  }

  private strokeContext (u: UnitState): StrokeContext {
    return { sbp: u.readings.nibp_systolic?.value ?? null, dbp: u.readings.nibp_diastolic?.value ?? null, etaMs: u.etaMs }
  }

  /** Re-renders the stroke alert (findings, BP flag, windows at arrival); a changed finding or window goes out at once. */
  private strokeUpdate (u: UnitState, e: Entry, t: number, nowGw: number, changed: boolean): void {
    const f = e.stroke
    if (f === null) return
    const window = strokeWindow(f.lastKnownWellMs, t)
    const urgent = changed || e.window !== window
    e.window = window
    this.book.update(e, 'high', strokeMessage(f, t, this.strokeContext(u)), minutesSinceLkw(f, t), t, nowGw, urgent)
  }

  private setAge (u: UnitState, age: number | null): void {
    if (age === u.ageYears) return
    u.ageYears = age
    const child = age !== null && age < PAEDIATRIC_BELOW_YEARS ? paediatricRules(this.options.rules, age) : null
    if (child === null) this.childRules.delete(u)
    else this.childRules.set(u, child)
    for (const w of u.windows) w.reset()
  }

  /**
   * Sets the SpO2 scale NEWS2 uses for the unit's current encounter (a clinician's decision,
   * RCP 2017: Scale 2 for a prescribed 88–92 % target), recorded first in the clinical audit
   * trail (who, when; fsync'd). Resolves false for an unknown unit or one without an encounter.
   */
  async setSpo2ScaleBy (unit: string, scale: 1 | 2, by: string, nowMs: number = this.options.now()): Promise<boolean> {
    if (typeof by !== 'string' || by.trim() === '') throw new TypeError('setSpo2ScaleBy: `by` must name the clinician')
    const u = this.units.get(unit)
    if (this.closed || u === undefined || u.encounter === '' || (scale !== 1 && scale !== 2)) return false
    await this.audit?.append({ at: nowMs, by: by.trim().slice(0, 128), action: 'spo2_scale', unit, encounter: u.encounter, value: scale })
    return this.setSpo2Scale(unit, scale, nowMs)
  }

  /** Sets the SpO2 scale without an audit record (replay and tests); clinicians go through setSpo2ScaleBy. */
  setSpo2Scale (unit: string, scale: 1 | 2, nowMs: number = this.options.now()): boolean {
    const u = this.units.get(unit)
    if (this.closed || u === undefined || u.encounter === '' || (scale !== 1 && scale !== 2)) return false
    u.spo2Scale = scale
    u.dirty = true
    u.news2Window.reset()
    if (u.lastCapturedAt > -Infinity) this.evaluateNews2(u, u.lastCapturedAt, nowMs)
    return true
  }

  /** The SpO2 scale NEWS2 uses for the unit, or null for an unknown unit. */
  spo2ScaleOf (unit: string): 1 | 2 | null { return this.units.get(unit)?.spo2Scale ?? null }

  /** Sets the expected arrival time (Unix ms; null = unknown) shown in a stroke alert's windows. */
  setEta (unit: string, etaMs: number | null, nowMs: number = this.options.now()): void {
    const u = this.units.get(unit)
    if (this.closed || u === undefined || u.etaMs === etaMs) return
    u.etaMs = etaMs
    const e = u.open.get(STROKE)
    if (e !== undefined) this.strokeUpdate(u, e, u.lastCapturedAt + Math.max(0, nowMs - u.lastSeenGw), nowMs, false)
  }

  private changeEncounter (u: UnitState, next: string, t: number, nowGw: number): void {
    const prev = u.encounter
    u.encounter = next
    if (prev === '' || prev === '?') {
      // Dispatch assigned an encounter to the patient already monitored: same patient, re-tag.
      for (const e of u.open.values()) this.book.retag(e, next, t, nowGw)
      return
    }
    // Another patient: close the previous patient's alerts, forget their readings.
    for (const [slot, e] of [...u.open]) this.book.clear(u, slot, e, slot === LOSS ? nowGw : t, nowGw)
    this.setAge(u, null)
    u.resetPatient()
  }

  /** Contract v1.1 `encounter_ended`: the patient was handed over; nothing of theirs stays open. */
  private endEncounter (u: UnitState, t: number, nowGw: number): void {
    for (const [slot, e] of [...u.open]) this.book.clear(u, slot, e, slot === LOSS ? nowGw : t, nowGw)
    this.setAge(u, null)
    u.resetPatient()
    u.encounter = ''
    this.store?.remove(u.unit)
    u.dirty = false
  }

  /** A unit's will ('offline') or its own 'online' on `units/{unit}/status`. */
  onStatus (unit: string, status: 'offline' | 'online', nowMs: number = this.options.now()): void {
    if (this.closed) return
    const u = this.units.get(unit)
    if (u === undefined) return
    if (status === 'online') this.link.online(u, nowMs)
    else if (u.encounter !== '') this.link.offline(u, OFFLINE_MESSAGE, nowMs)
  }

  /**
   * Time-driven work, on the gateway clock (the owned timer calls it every tickIntervalMs):
   * signal and stream loss, device-alarm expiry, silence expiry, escalation, stroke window
   * crossings, stale readings, unit snapshots, retention, compaction.
   */
  tick (nowMs: number = this.options.now()): void {
    if (this.closed) return
    const { deviceAlarmHoldMs, snapshotIntervalMs } = this.options
    for (const u of this.units.values()) {
      if (u.encounter !== '') this.link.check(u, nowMs)
      if (u.dirty && this.store !== null && u.encounter !== '' && nowMs - u.savedGw >= snapshotIntervalMs) this.save(u, nowMs)
    }
    for (const e of [...this.book.openSet]) {
      const a = e.alert
      if (a.kind === 'device_alarm' && (a.priority !== 'high' || a.acknowledgedAt !== null) && nowMs - e.touchedGw >= deviceAlarmHoldMs) {
        // Medium/low alarms time out; a high one only once acknowledged (it latches until then).
        const u = this.units.get(a.unit)
        if (u !== undefined) {
          u.alarmEndT.set(a.key, u.lastCapturedAt)
          this.book.clear(u, slotOf(a.kind, a.key), e, nowMs, nowMs)
        }
        continue
      }
      if (a.kind === 'stroke') this.strokeClock(e, nowMs)
      else if (a.kind === 'threshold') this.staleReading(e, nowMs)
      this.book.reAlarmDue(e, nowMs)
      this.book.escalateDue(e, nowMs)
    }
    if (nowMs - this.lastHousekeepingGw >= 60_000) this.housekeeping(nowMs)
  }

  /** Keeps a threshold alert's reading age current while the reading has stopped (throttled). */
  private staleReading (e: Entry, nowMs: number): void {
    const a = e.alert
    const u = this.units.get(a.unit)
    const rules = u === undefined ? undefined : this.childRules.get(u) ?? this.options.rules
    const rule = rules?.find(r => r.sign === a.key)
    const r = u?.readings[a.key]
    if (u === undefined || rule === undefined || r === undefined || e.side === null) return
    const ageMs = u.lastCapturedAt + Math.max(0, nowMs - u.lastSeenGw) - r.atMs
    if (ageMs < 10_000 || this.book.throttled(e, NaN, nowMs)) return
    const crit = a.priority === 'high' && (e.side === 'low' ? rule.critLow : rule.critHigh) !== null
    const t = u.lastCapturedAt + Math.max(0, nowMs - u.lastSeenGw)
    this.book.update(e, a.priority, thresholdMessage(rule, e.side, r.value, ageMs, crit), r.value, t, nowMs, false, false, r.atMs)
  }

  /** Reports a stroke alert's passage out of a reperfusion window as soon as it happens. */
  private strokeClock (e: Entry, nowMs: number): void {
    const f = e.stroke
    if (f === null || f.lastKnownWellMs <= 0) return
    const w = strokeWindow(f.lastKnownWellMs, nowMs)
    if (w === e.window) return
    const u = this.units.get(e.alert.unit)
    e.window = w
    this.book.update(e, e.alert.priority, strokeMessage(f, nowMs, u === undefined ? undefined : this.strokeContext(u)), minutesSinceLkw(f, nowMs), nowMs, nowMs, true)
  }

  private save (u: UnitState, nowMs: number): void {
    u.dirty = false
    u.savedGw = nowMs
    this.store!.save({
      unit: u.unit,
      encounter: u.encounter,
      bootId: u.bootId,
      lastCapturedAt: u.lastCapturedAt,
      readings: structuredClone(u.readings),
      news2Level: u.news2Level,
      spo2Scale: u.spo2Scale,
      ageYears: u.ageYears,
      hadEcg: u.lastEcgGw > -Infinity
    })
  }

  private housekeeping (nowMs: number): void {
    this.lastHousekeepingGw = nowMs
    this.book.prune(nowMs)
    for (const [id, u] of this.units) {
      if (u.open.size === 0 && u.encounter === '' && nowMs - u.lastSeenGw > FORGET_UNIT_MS) { this.units.delete(id); this.childRules.delete(u); this.ecgStemi.forget(id) }
    }
    const j = this.book.journal
    if (j !== null && j.size > this.options.compactBytes) {
      j.compact(this.book.records()).catch(err => { this.options.onError(err as Error) })
    }
  }

  /**
   * Records a clinician's acknowledgement. Returns the alert, or null for an unknown id (or one
   * cleared longer ago than retainClearedMs). A second acknowledgement keeps the first. The
   * acknowledgement silences the alert for ackSilenceMs of its priority; a worsening ends it.
   */
  acknowledge (id: string, by: string, nowMs: number = this.options.now()): Alert | null {
    if (typeof by !== 'string' || by.trim() === '') throw new TypeError('acknowledge: `by` must name the clinician')
    if (this.closed) return this.book.get(id)
    return this.book.acknowledge(id, by.trim().slice(0, 128), nowMs)
  }

  private emitSafe (ev: AlertEvent): void {
    try {
      this.emit('alert', ev)
    } catch (err) {
      // A failing consumer must not break ingest (onFrame runs inside the ingest path).
      this.options.onError(err as Error)
    }
  }

  /** Open alerts, oldest first. */
  openAlerts (): Alert[] { return this.book.openAlerts() }

  /** A unit's open alerts and those cleared within retainClearedMs, newest first. */
  alertsFor (unit: string): Alert[] { return this.book.alertsFor(unit) }

  /** An open or recently cleared alert by id. */
  get (id: string): Alert | null { return this.book.get(id) }

  /** Units being watched (with an active encounter), for the roster. */
  watchedUnits (): string[] { return [...this.units.values()].filter(u => u.encounter !== '').map(u => u.unit) }

  /** Whether NEWS2 applies to the unit's patient (false under 16: the card says so). */
  news2Applies (unit: string): boolean {
    const age = this.units.get(unit)?.ageYears ?? null
    return age === null || age >= PAEDIATRIC_BELOW_YEARS
  }

  /**
   * The unit's NEWS2 now: its latest readings scored at the unit's current sample time
   * (latest frame time + the gateway time elapsed since), so readings go stale, and hence
   * missing, when the unit stops sending them. null for an unknown unit, or a patient under 16.
   */
  news2For (unit: string, nowMs: number = this.options.now()): News2Result | null {
    const u = this.units.get(unit)
    if (u === undefined || u.lastCapturedAt === -Infinity || !this.news2Applies(unit)) return null
    return news2(u.readings, u.lastCapturedAt + Math.max(0, nowMs - u.lastSeenGw), this.options.news2Staleness, u.spo2Scale)
  }

  /** NEWS2 trend of the last news2HistoryMs (30 min), oldest first. */
  news2History (unit: string): News2Point[] {
    return (this.units.get(unit)?.history ?? []).map(p => ({ ...p }))
  }

  /** Number of open alerts (the `ambulink_alerts_open` gauge). */
  get openCount (): number { return this.book.openSet.size }

  /** Stops the timer, stops taking input, saves the ward and flushes the journals. Safe to call twice. */
  close (): Promise<void> {
    // A second call while the first runs waits for the first.
    this.closing ??= (async () => {
      const t = this.options.now()
      if (this.store !== null) for (const u of this.units.values()) if (u.dirty && u.encounter !== '') this.save(u, t)
      this.closed = true
      if (this.timer !== null) clearInterval(this.timer)
      this.timer = null
      await this.store?.close()
      await this.ecgStemi.close()
      await this.audit?.close()
      await this.book.journal?.close()
    })()
    return this.closing
  }
}

/** The journal folder under DATA_DIR. */
export function alertsDir (dataDir: string): string { return join(dataDir, 'alerts') }
