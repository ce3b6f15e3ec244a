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
import { AlertBook, slotOf } from './book.js'
import { AlertJournal, type JournalRecord } from './journal.js'
import {
  deviceAlarmMessage, minutesSinceLkw, news2Message, OFFLINE_MESSAGE, signalLossMessage, STEMI_MESSAGE,
  strokeMessage, strokeSuspected, strokeWindow, thresholdMessage, type StrokeFindings
} from './messages.js'
import { news2, NEWS2_FIELDS, NEWS2_STALENESS_DEFAULTS, type News2Result, type News2Staleness } from './news2.js'
import { DEFAULT_RULES, stepRule, type ThresholdRule } from './rules.js'
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
  /** NEWS2 trigger must hold this long (sample time, ms) before raising (artefact filter). */
  news2MinDurationMs: number
  /** NEWS2 must stay below the alert's level this long (sample time, ms) to step down or clear. */
  news2ClearMs: number
  /** No frame for this long (gateway ms) from a unit with an active encounter: signal loss. */
  signalLossMs: number
  /** A high-priority alert unacknowledged this long (ms) escalates, and again every such period. */
  escalateAfterMs: number
  /** A device alarm not repeated for this long (gateway ms) clears (devices report onsets). */
  deviceAlarmHoldMs: number
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
  escalateAfterMs: 60_000,
  deviceAlarmHoldMs: 60_000,
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
const LOSS = 'signal_loss/'
const NEWS2 = 'news2/'
const STEMI = 'stemi/'
const STROKE = 'stroke/'
const STEMI_ECG = 'stemi/ecg'
/** Units with no open alert and silent this long are forgotten (memory bound). */
const FORGET_UNIT_MS = 3_600_000

export interface AlertEngineEvents { alert: [AlertEvent] }

export class AlertEngine extends EventEmitter<AlertEngineEvents> {
  readonly options: Readonly<AlertEngineOptions>
  private readonly units = new Map<string, UnitState>()
  private readonly book: AlertBook
  /** Rule index per VitalSign number. */
  private readonly ruleBySign: (number | undefined)[] = []
  private readonly ruleSlots: string[]
  private timer: NodeJS.Timeout | null = null
  private lastHousekeepingGw = -Infinity
  private closed = false
  /** STEMI from the ECG (issue 9): ecg-stemi.ts. */
  private readonly ecgStemi: EcgStemiWatch

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
    this.ecgStemi = new EcgStemiWatch(o.dir === null ? null : join(o.dir, 'ecg'), o.onError)
  }

  /** Opens the engine: reloads open and recently cleared alerts from the journal, starts the timer. */
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
    if (dir === null) return
    const t = now()
    const keep = (a: Alert): boolean => a.clearedAt === null || a.clearedAt >= t - retainClearedMs
    const { journal, records, skipped } = await AlertJournal.open(dir, keep, onError)
    this.book.journal = journal
    if (skipped > 0) onError(new Error(`alert journal: ${skipped} unreadable line(s) skipped (torn write at a crash?)`))
    for (const r of records) this.adopt(r, t)
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
    if (a.kind === 'news2') u.news2Level = a.priority === 'high' ? 3 : 2
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
      u = new UnitState(id, this.options.rules.length, nowGw)
      this.units.set(id, u)
    }
    return u
  }

  /** Feeds one validated frame. `nowMs` is the gateway time it arrived. */
  onFrame (f: Frame, nowMs: number = this.options.now()): void {
    if (this.closed) return
    const u = this.unit(f.unitId, nowMs)
    u.lastSeenGw = nowMs
    const loss = u.open.get(LOSS)
    if (loss !== undefined) this.book.clear(u, LOSS, loss, nowMs, nowMs)

    // A resend (same boot, not newer than what we processed) changes nothing.
    if (f.bootId === u.bootId && f.capturedAtMs <= u.lastCapturedAt) return
    u.bootId = f.bootId
    u.lastCapturedAt = f.capturedAtMs

    if (f.encounterId !== u.encounter) this.changeEncounter(u, f.encounterId, f.capturedAtMs, nowMs)

    let news2Dirty = false
    let latest = f.capturedAtMs
    const rules = this.options.rules
    for (const n of f.numerics) {
      const info = VITAL_SIGN_BY_NUMBER[n.sign]
      if (info === undefined) continue
      const t = f.capturedAtMs + n.offsetMs
      const r = u.readings[info.field]
      if (r === undefined) u.readings[info.field] = { value: n.value, atMs: t }
      else if (t >= r.atMs) { r.value = n.value; r.atMs = t } else continue
      if (t > latest) latest = t
      if (NEWS2_FIELDS.has(info.field)) news2Dirty = true
      const ri = this.ruleBySign[n.sign]
      if (ri !== undefined) this.applyRule(u, ri, rules[ri]!, n.value, t, nowMs)
    }
    if (news2Dirty) this.evaluateNews2(u, latest, nowMs)
    for (const a of f.alarms) this.deviceAlarm(u, a.code, a.priority, a.text, f.capturedAtMs + a.offsetMs, nowMs)
    if (f.assessment !== null) this.assessment(u, f.assessment, f.capturedAtMs, nowMs)
    // STEMI from the ECG (issue 9): the device's interpretation and the gateway's ST measurement.
    if (f.assessment !== null) this.ecgStemi.assessment(u.unit, f.assessment)
    const ecg = this.ecgStemi.onFrame(f)
    if (ecg !== null) this.ecgStemiAlert(u, ecg, f.capturedAtMs, nowMs)
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
    const slot = this.ruleSlots[ri]!
    const open = u.open.get(slot)
    const out = stepRule(rule, u.runs[ri]!, open !== undefined, value, t)
    switch (out) {
      case 'low':
      case 'high': {
        const priority = out === 'low' ? rule.lowPriority : rule.highPriority
        if (open === undefined) {
          this.book.raise(u, 'threshold', rule.sign, slot, priority, thresholdMessage(rule, out, value), value, t, nowGw).side = out
          return
        }
        const flipped = open.side !== out
        if (!flipped && this.book.throttled(open, value, nowGw)) return
        open.side = out
        this.book.update(open, priority, thresholdMessage(rule, out, value), value, t, nowGw, flipped)
        return
      }
      case 'band':
      case 'clearing':
        // Still raised (hysteresis): keep the current value visible (throttled), priority unchanged.
        if (open !== undefined && !this.book.throttled(open, value, nowGw)) {
          this.book.update(open, open.alert.priority, thresholdMessage(rule, open.side ?? 'low', value), value, t, nowGw)
        }
        return
      case 'clear':
        if (open !== undefined) this.book.clear(u, slot, open, t, nowGw)
    }
  }

  private evaluateNews2 (u: UnitState, t: number, nowGw: number): void {
    const r = news2(u.readings, t, this.options.news2Staleness)
    u.news2 = r
    u.recordNews2(r, t, this.options.news2HistoryMs, this.options.news2HistoryStepMs)
    const level = r.trigger === null ? 0 : NEWS2_LEVEL[r.trigger]!
    const open = u.open.get(NEWS2)
    const value = r.partialTotal
    if (open === undefined) {
      if (level === 0) { u.news2Since = NaN; return }
      if (Number.isNaN(u.news2Since)) u.news2Since = t
      if (t - u.news2Since < this.options.news2MinDurationMs) return
      u.news2Since = NaN
      u.news2Level = level
      this.book.raise(u, 'news2', '', NEWS2, r.priority!, news2Message(r), value, t, nowGw)
      return
    }
    if (level >= u.news2Level) {
      // Stepping up is immediate; the same level only refreshes the value (throttled).
      u.news2DownSince = NaN
      const up = level > u.news2Level
      if (!up && this.book.throttled(open, NaN, nowGw)) return
      u.news2Level = level
      this.book.update(open, r.priority!, news2Message(r), value, t, nowGw, up)
      return
    }
    // Below the alert's level: step down or clear only once that has held for news2ClearMs.
    if (Number.isNaN(u.news2DownSince)) u.news2DownSince = t
    if (t - u.news2DownSince < this.options.news2ClearMs) return
    u.news2DownSince = NaN
    u.news2Level = level
    if (level === 0) this.book.clear(u, NEWS2, open, t, nowGw)
    else this.book.update(open, r.priority!, news2Message(r), value, t, nowGw, true)
  }

  private deviceAlarm (u: UnitState, code: string, p: number, text: string, t: number, nowGw: number): void {
    const slot = slotOf('device_alarm', code)
    const priority = ALARM_PRIORITY[p] ?? 'medium'
    const message = deviceAlarmMessage(code, text)
    const open = u.open.get(slot)
    if (open === undefined) {
      this.book.raise(u, 'device_alarm', code, slot, priority, message, null, t, nowGw)
    } else {
      open.touchedGw = nowGw
      this.book.update(open, priority, message, null, t, nowGw, true)
    }
  }

  private assessment (u: UnitState, a: Assessment, t: number, nowGw: number): void {
    const stemi = u.open.get(STEMI)
    if (a.stemiSuspected && stemi === undefined) this.book.raise(u, 'stemi', '', STEMI, 'high', STEMI_MESSAGE, null, t, nowGw)
    else if (!a.stemiSuspected && stemi !== undefined) this.book.clear(u, STEMI, stemi, t, nowGw)

    const stroke = u.open.get(STROKE)
    if (!strokeSuspected(a)) {
      if (stroke !== undefined) this.book.clear(u, STROKE, stroke, t, nowGw)
      return
    }
    const findings: StrokeFindings = { lamsScore: a.lamsScore, fastPositive: a.fastPositive, lastKnownWellMs: a.lastKnownWellMs }
    const message = strokeMessage(findings, t)
    const minutes = minutesSinceLkw(findings, t)
    const window = strokeWindow(findings.lastKnownWellMs, t)
    if (stroke === undefined) {
      this.book.raise(u, 'stroke', '', STROKE, 'high', message, minutes, t, nowGw, findings, window)
      return
    }
    // A changed finding (LAMS, FAST, LKW) or window goes out at once; the clock's advance is throttled.
    const prev = stroke.stroke
    const changed = prev === null || prev.lamsScore !== findings.lamsScore || prev.fastPositive !== findings.fastPositive ||
      prev.lastKnownWellMs !== findings.lastKnownWellMs || stroke.window !== window
    stroke.stroke = findings
    stroke.window = window
    this.book.update(stroke, 'high', message, minutes, t, nowGw, changed)
  }

  private changeEncounter (u: UnitState, next: string, t: number, nowGw: number): void {
    const prev = u.encounter
    u.encounter = next
    if (prev === '') {
      // Dispatch assigned an encounter to the patient already monitored: same patient, re-tag.
      for (const e of u.open.values()) this.book.retag(e, next, t, nowGw)
      return
    }
    // Another patient (or none): close the previous patient's alerts, forget their readings.
    for (const [slot, e] of [...u.open]) this.book.clear(u, slot, e, slot === LOSS ? nowGw : t, nowGw)
    u.resetPatient()
  }

  /** A unit's will ('offline') or its own 'online' on `units/{unit}/status`. */
  onStatus (unit: string, status: 'offline' | 'online', nowMs: number = this.options.now()): void {
    if (this.closed) return
    const u = this.units.get(unit)
    if (u === undefined) return
    const open = u.open.get(LOSS)
    if (status === 'online') {
      // Grace from the reconnection: frames should follow within signalLossMs.
      u.lastSeenGw = nowMs
      if (open !== undefined) this.book.clear(u, LOSS, open, nowMs, nowMs)
      return
    }
    if (u.encounter === '') return
    if (open === undefined) this.book.raise(u, 'signal_loss', '', LOSS, 'high', OFFLINE_MESSAGE, null, nowMs, nowMs)
    else this.book.update(open, 'high', OFFLINE_MESSAGE, open.alert.value, nowMs, nowMs, true)
  }

  /**
   * Time-driven work, on the gateway clock (the owned timer calls it every tickIntervalMs):
   * signal loss, device-alarm expiry, escalation, stroke window crossings, retention, compaction.
   */
  tick (nowMs: number = this.options.now()): void {
    if (this.closed) return
    const { signalLossMs, deviceAlarmHoldMs } = this.options
    for (const u of this.units.values()) {
      if (u.encounter === '' || u.open.has(LOSS)) continue
      const silent = nowMs - u.lastSeenGw
      if (silent >= signalLossMs) this.book.raise(u, 'signal_loss', '', LOSS, 'high', signalLossMessage(silent, signalLossMs), Math.round(silent / 1000), nowMs, nowMs)
    }
    for (const e of [...this.book.openSet]) {
      const a = e.alert
      if (a.kind === 'device_alarm' && nowMs - e.touchedGw >= deviceAlarmHoldMs) {
        const u = this.units.get(a.unit)
        if (u !== undefined) this.book.clear(u, slotOf(a.kind, a.key), e, nowMs, nowMs)
        continue
      }
      if (a.kind === 'stroke') this.strokeClock(e, nowMs)
      this.book.escalateDue(e, nowMs)
    }
    if (nowMs - this.lastHousekeepingGw >= 60_000) this.housekeeping(nowMs)
  }

  /** Reports a stroke alert's passage out of a reperfusion window as soon as it happens. */
  private strokeClock (e: Entry, nowMs: number): void {
    const f = e.stroke
    if (f === null || f.lastKnownWellMs <= 0) return
    const w = strokeWindow(f.lastKnownWellMs, nowMs)
    if (w === e.window) return
    e.window = w
    this.book.update(e, e.alert.priority, strokeMessage(f, nowMs), minutesSinceLkw(f, nowMs), nowMs, nowMs, true)
  }

  private housekeeping (nowMs: number): void {
    this.lastHousekeepingGw = nowMs
    this.book.prune(nowMs)
    for (const [id, u] of this.units) {
      if (u.open.size === 0 && nowMs - u.lastSeenGw > FORGET_UNIT_MS) { this.units.delete(id); this.ecgStemi.forget(id) }
    }
    const j = this.book.journal
    if (j !== null && j.size > this.options.compactBytes) {
      j.compact(this.book.records()).catch(err => { this.options.onError(err as Error) })
    }
  }

  /**
   * Records a clinician's acknowledgement. Returns the alert, or null for an unknown id (or one
   * cleared longer ago than retainClearedMs). A second acknowledgement keeps the first.
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

  /**
   * The unit's NEWS2 now: its latest readings scored at the unit's current sample time
   * (latest frame time + the gateway time elapsed since), so readings go stale, and hence
   * missing, when the unit stops sending them. null for an unknown unit.
   */
  news2For (unit: string, nowMs: number = this.options.now()): News2Result | null {
    const u = this.units.get(unit)
    if (u === undefined || u.lastCapturedAt === -Infinity) return null
    return news2(u.readings, u.lastCapturedAt + Math.max(0, nowMs - u.lastSeenGw), this.options.news2Staleness)
  }

  /** NEWS2 trend of the last news2HistoryMs (30 min), oldest first. */
  news2History (unit: string): News2Point[] {
    return (this.units.get(unit)?.history ?? []).map(p => ({ ...p }))
  }

  /** Number of open alerts (the `ambulink_alerts_open` gauge). */
  get openCount (): number { return this.book.openSet.size }

  /** Stops the timer, stops taking input, and flushes the journal. Safe to call twice. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    await this.ecgStemi.close()
    await this.book.journal?.close()
  }
}

/** The journal folder under DATA_DIR. */
export function alertsDir (dataDir: string): string { return join(dataDir, 'alerts') }
