/**
 * The alert engine: from validated frames (and units' will messages) to alerts for clinicians.
 * Threshold rules and NEWS2 from the latest numerics, device alarms passed through, STEMI and
 * stroke pre-notification from the crew's assessment, signal loss; one open alert per
 * (unit, kind, key), updated rather than duplicated; escalation of unacknowledged high-priority
 * alerts; acknowledgement by a named clinician; state kept in a journal across restarts.
 *
 * Clocks. Physiology runs on sample time (device captured_at_ms + offset_ms, on the unit's
 * timeline: a device clock set back within a boot is shifted back on, frame-order.ts): rule durations,
 * hysteresis, NEWS2 staleness and the NEWS2 trend, so network delays neither fake nor hide a
 * sustained condition and the same frames always give the same alerts (and the same alert
 * timestamps: see line-protocol.ts). The link and the people run on the gateway clock (`now`,
 * injectable): signal loss, escalation, acknowledgement, device-alarm expiry.
 *
 * Hot path: onFrame does O(numerics) work with no JSON, no timers and no per-sample strings;
 * JSON and journal writes happen only when an alert changes.
 *
 * Files. This one routes frames, owns the units and the timer; the evaluation lives in
 * thresholds.ts (rules, NEWS2, age), assessment-alerts.ts (STEMI, stroke), device-alarms.ts and
 * ward.ts (restore and snapshots); options and defaults in engine-options.ts.
 */
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { VITAL_SIGN_BY_NUMBER, type Frame } from '../../decoders/index.js'
import { applyAssessment, ecgStemiAlert, strokeClock, strokeUpdate } from './assessment-alerts.js'
import { AlertBook, slotOf } from './book.js'
import { ClinicalAudit } from './clinical-audit.js'
import { deviceAlarm, expireDeviceAlarm } from './device-alarms.js'
import { EcgStemiWatch } from './ecg-stemi.js'
import type { EcgSnapshot } from './ecg-snapshot.js'
import { sampleNow, STROKE, type EngineCore } from './engine-core.js'
import { ALERT_ENGINE_DEFAULTS, type AlertEngineOptions } from './engine-options.js'
import { etaAt } from './eta.js'
import { AlertJournal } from './journal.js'
import { LinkWatch, LOSS } from './link.js'
import { OFFLINE_MESSAGE } from './messages.js'
import { news2, NEWS2_FIELDS, type News2Result } from './news2.js'
import { PAEDIATRIC_BELOW_YEARS } from './paediatric.js'
import { JournalStateStore, type AlertStateStore, type UnitSnapshot } from './state-store.js'
import { applyRule, evaluateNews2, rulesFor, setAge, staleReading } from './thresholds.js'
import type { Alert, AlertEvent } from './types.js'
import { UnitState, type News2Point } from './unit-state.js'
import { adoptAlert, adoptUnit, snapshotOf } from './ward.js'

export { ALERT_ENGINE_DEFAULTS, type AlertEngineOptions } from './engine-options.js'

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
  /** What the evaluators (thresholds, assessment, device alarms, ward) share: engine-core.ts. */
  private readonly core: EngineCore
  private timer: NodeJS.Timeout | null = null
  private lastHousekeepingGw = -Infinity
  private closed = false
  private closing: Promise<void> | null = null

  private constructor (options: Partial<AlertEngineOptions>) {
    super()
    const o: AlertEngineOptions = { ...ALERT_ENGINE_DEFAULTS, now: Date.now, onError: () => {}, ...options }
    this.options = Object.freeze(o)
    const ruleBySign: (number | undefined)[] = []
    for (let i = 0; i < o.rules.length; i++) {
      const sign = VITAL_SIGN_BY_NUMBER.findIndex(s => s?.field === o.rules[i]!.sign)
      if (sign > 0) ruleBySign[sign] = i
    }
    this.book = new AlertBook(o, ev => { this.emitSafe(ev) })
    this.link = new LinkWatch(o, this.book)
    this.store = o.stateStore ?? (o.dir === null ? null : new JournalStateStore(o.dir, o.onError, o.compactBytes))
    this.core = {
      options: this.options,
      book: this.book,
      ruleBySign,
      ruleSlots: o.rules.map(r => slotOf('threshold', r.sign)),
      childRules: new Map(),
      verdict: { side: null, priority: 'medium', clear: false },
      ecgStemi: new EcgStemiWatch(o.dir === null ? null : join(o.dir, 'ecg'), o.onError)
    }
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
      for (const snap of await this.store.loadAll()) adoptUnit(this.core, this.unit(snap.unit, t), snap, t)
    }
    if (dir === null) return
    const keep = (a: Alert): boolean => a.clearedAt === null || a.clearedAt >= t - retainClearedMs
    const { journal, records, skipped } = await AlertJournal.open(dir, keep, onError)
    this.book.journal = journal
    if (skipped > 0) onError(new Error(`alert journal: ${skipped} unreadable line(s) skipped (torn write at a crash?)`))
    for (const r of records) adoptAlert(this.core, r, t, id => this.unit(id, t))
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
    if (snapshot !== null && snapshot.unit === unit) adoptUnit(this.core, this.unit(unit, nowMs), snapshot, nowMs)
    const u = this.unit(unit, nowMs)
    for (const a of open) {
      if (a.unit !== unit || a.clearedAt !== null || u.open.has(slotOf(a.kind, a.key)) || this.book.get(a.id) !== null) continue
      const silence = this.options.ackSilenceMs[a.priority]
      const ackUntil = a.acknowledgedAt === null ? null : Math.max(a.acknowledgedAt + silence, nowMs)
      // Unacknowledged high alerts escalate escalateAfterMs after their last escalation (or raise), as on the first process.
      const due = a.priority === 'high' && a.acknowledgedAt === null ? (a.escalatedAt ?? a.raisedAt) + this.options.escalateAfterMs : null
      adoptAlert(this.core, { e: 'state', a: { ...a }, x: due, k: ackUntil }, nowMs, id => this.unit(id, nowMs))
    }
    u.dirty = true
  }

  /** Feeds one validated frame. `nowMs` is the gateway time it arrived. */
  onFrame (f: Frame, nowMs: number = this.options.now()): void {
    if (this.closed) return
    const u = this.unit(f.unitId, nowMs)
    // New or late by seq within a boot, and the frame's sample time on the unit's timeline: a
    // device clock set back within a boot does not make its new frames look late (frame-order.ts).
    // Every sample time below is `at` plus the item's offset, never the raw captured_at_ms.
    const order = u.order
    order.place(f, nowMs)
    const at = order.t
    const late = order.late
    // ECG counts as present (lead on) only when it is newer than what the unit sent before: a
    // store-and-forward backlog's older ECG must not clear a lead-off alert that still holds.
    const wf = f.waveforms[0]
    let freshEcg = false
    if (wf !== undefined) {
      const end = at + wf.offsetMs + wf.samples.length * 1000 / wf.sampleRateHz
      freshEcg = end > u.latestEcgEndT
      if (freshEcg) u.latestEcgEndT = end
    }
    this.link.frameArrived(u, nowMs, freshEcg)

    // A late frame (a resend, a backlog: not newer than what we processed) changes no
    // physiology, but its alarms and assessment may be new to us: they are still applied below,
    // when the frame is of the current encounter.
    if (!late) {
      u.bootId = f.bootId
      // An ECG chunk that continues the tracing may start before the newest (vitals) frame.
      if (at > u.lastCapturedAt) u.lastCapturedAt = at
      // An empty encounter id never ends an encounter (contract v1.1): only encounter_ended does.
      if (f.encounterId !== '' && f.encounterId !== u.encounter) this.changeEncounter(u, f.encounterId, at, nowMs)
      u.dirty = true
      this.numerics(u, f, at, nowMs, false)
    } else if (f.encounterId === u.encounter || f.encounterId === '') {
      // A late frame of this patient (a store-and-forward backlog sent after live frames): a
      // reading newer than what the engine holds for its sign — a blood pressure taken while the
      // link was down — is still evaluated. A resend's own readings, and older ones, change nothing.
      this.numerics(u, f, at, nowMs, true)
    }
    // Expected arrival from the position (before the assessment, so a new stroke alert shows it).
    const pos = f.position
    if (pos !== null && !late && this.options.hospital !== null) this.setEta(u.unit, etaAt(this.options.hospital, pos, at + pos.offsetMs), nowMs)
    // A late frame of another encounter (the previous patient's, arriving after the next one
    // began) is stored but says nothing about the patient on screen now: its device alarms and
    // assessment (suspected STEMI, stroke scale, sex and age for the ST thresholds) stay out.
    // Only an encounter the unit had is told late this way: an id it never had is the next patient,
    // whose frames may be late by their clock (a restart with the clock behind, not yet told from
    // a backlog), and their alarms must sound.
    const otherPatient = late && f.encounterId !== '' && f.encounterId !== u.encounter && u.pastEncounters.has(f.encounterId)
    if (!otherPatient) {
      for (const a of f.alarms) deviceAlarm(this.core, u, a, at + a.offsetMs, nowMs)
      if (f.assessment !== null) applyAssessment(this.core, u, f.assessment, at, nowMs)
      // STEMI from the ECG (issue 9): the device's interpretation and the gateway's ST measurement.
      if (f.assessment !== null) this.core.ecgStemi.assessment(u.unit, f.assessment)
    }
    // A late frame: the watch takes its ECG only as the tracing's exact continuation.
    const ecg = this.core.ecgStemi.onFrame(f, late, at)
    if (ecg !== null) ecgStemiAlert(this.core, u, ecg, at, nowMs)
    if (f.encounterEnded && !late && u.encounter !== '') this.endEncounter(u, at, nowMs)
  }

  private numerics (u: UnitState, f: Frame, at: number, nowMs: number, late: boolean): void {
    let news2Dirty = false
    let bpDirty = false
    let latest = at
    const rules = rulesFor(this.core, u)
    for (const n of f.numerics) {
      const info = VITAL_SIGN_BY_NUMBER[n.sign]
      if (info === undefined) continue
      const t = at + n.offsetMs
      const r = u.readings[info.field]
      if (r === undefined) u.readings[info.field] = { value: n.value, atMs: t }
      else if (late ? t > r.atMs : t >= r.atMs) { r.value = n.value; r.atMs = t } else continue
      if (t > latest) latest = t
      if (t > u.latestNumericT) u.latestNumericT = t
      // A late reading does not clear a stream-loss alert: the stream may still be lost now, and
      // the next check would raise it again (an alert that flaps).
      if (u.open.size > 0 && !late) this.link.streamBack(u, info.field, t, nowMs)
      if (NEWS2_FIELDS.has(info.field)) news2Dirty = true
      if (n.sign === 4 || n.sign === 5) bpDirty = true
      const ri = this.core.ruleBySign[n.sign]
      if (ri !== undefined) applyRule(this.core, u, ri, rules[ri]!, n.value, t, nowMs)
    }
    // A late reading changes the score as of the newest reading held, not as of its own time.
    if (late && (news2Dirty || bpDirty)) { latest = Math.max(latest, u.latestNumericT); u.dirty = true }
    if (news2Dirty) evaluateNews2(this.core, u, latest, nowMs)
    if (bpDirty) { const e = u.open.get(STROKE); if (e !== undefined) strokeUpdate(this.core, u, e, latest, nowMs, false) }
  }

  /** The 10 s 12-lead snapshot taken when an ECG STEMI alert was raised, or null. */
  async ecgSnapshot (alertId: string): Promise<EcgSnapshot | null> { return await this.core.ecgStemi.snapshots.get(alertId) }

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
    if (u.lastCapturedAt > -Infinity) evaluateNews2(this.core, u, u.lastCapturedAt, nowMs)
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
    if (e !== undefined) strokeUpdate(this.core, u, e, sampleNow(u, nowMs), nowMs, false)
  }

  private changeEncounter (u: UnitState, next: string, t: number, nowGw: number): void {
    const prev = u.encounter
    u.pastEncounters.add(prev)
    u.encounter = next
    if (prev === '' || prev === '?') {
      // Dispatch assigned an encounter to the patient already monitored: same patient, re-tag.
      for (const e of u.open.values()) this.book.retag(e, next, t, nowGw)
      return
    }
    // Another patient: close the previous patient's alerts, forget their readings.
    for (const [slot, e] of [...u.open]) this.book.clear(u, slot, e, slot === LOSS ? nowGw : t, nowGw)
    setAge(this.core, u, null)
    u.resetPatient()
  }

  /** Contract v1.1 `encounter_ended`: the patient was handed over; nothing of theirs stays open. */
  private endEncounter (u: UnitState, t: number, nowGw: number): void {
    for (const [slot, e] of [...u.open]) this.book.clear(u, slot, e, slot === LOSS ? nowGw : t, nowGw)
    setAge(this.core, u, null)
    u.resetPatient()
    u.pastEncounters.add(u.encounter)
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
    const { snapshotIntervalMs } = this.options
    for (const u of this.units.values()) {
      if (u.encounter !== '') this.link.check(u, nowMs)
      if (u.dirty && this.store !== null && u.encounter !== '' && nowMs - u.savedGw >= snapshotIntervalMs) this.save(u, nowMs)
    }
    for (const e of [...this.book.openSet]) {
      const a = e.alert
      if (expireDeviceAlarm(this.core, this.units.get(a.unit), e, nowMs)) continue
      if (a.kind === 'stroke') strokeClock(this.core, this.units.get(a.unit), e, nowMs)
      else if (a.kind === 'threshold') staleReading(this.core, this.units.get(a.unit), e, nowMs)
      this.book.reAlarmDue(e, nowMs)
      this.book.escalateDue(e, nowMs)
    }
    if (nowMs - this.lastHousekeepingGw >= 60_000) this.housekeeping(nowMs)
  }

  private save (u: UnitState, nowMs: number): void {
    u.dirty = false
    u.savedGw = nowMs
    this.store!.save(snapshotOf(this.core, u))
  }

  private housekeeping (nowMs: number): void {
    this.lastHousekeepingGw = nowMs
    this.book.prune(nowMs)
    for (const [id, u] of this.units) {
      if (u.open.size === 0 && u.encounter === '' && nowMs - u.lastSeenGw > FORGET_UNIT_MS) { this.units.delete(id); this.core.childRules.delete(u); this.core.ecgStemi.forget(id) }
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
    return news2(u.readings, sampleNow(u, nowMs), this.options.news2Staleness, u.spo2Scale)
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
      await this.core.ecgStemi.close()
      await this.audit?.close()
      await this.book.journal?.close()
    })()
    return this.closing
  }
}

/** The journal folder under DATA_DIR. */
export function alertsDir (dataDir: string): string { return join(dataDir, 'alerts') }
