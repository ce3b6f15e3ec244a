/**
 * The alert book: every open and recently cleared alert, and the only code that changes one.
 * Raise, update (throttled), clear, escalate, acknowledge; each change is journaled and handed to
 * the engine to emit. The engine decides *when* (clinical evaluation); the book keeps *what*.
 */
import { randomUUID } from 'node:crypto'
import type { AlertJournal, JournalRecord } from './journal.js'
import type { StrokeFindings } from './messages.js'
import type { Alert, AlertEvent, AlertEventType, AlertKind, AlertPriority } from './types.js'
import type { Entry, UnitState } from './unit-state.js'

export interface BookOptions {
  escalateAfterMs: number
  /**
   * How long an acknowledgement silences a persisting alert, ms, per priority; then it alarms
   * again (IEC 60601-1-8:2006+A1:2012, 6.8.3: AUDIO PAUSED is a limited interval after which the
   * alarm signal resumes if the condition persists).
   */
  ackSilenceMs: Readonly<Record<AlertPriority, number>>
  updateIntervalMs: number
  retainClearedMs: number
}

const RANK: Readonly<Record<AlertPriority, number>> = { low: 0, medium: 1, high: 2 }

export function slotOf (kind: AlertKind, key: string): string { return kind + '/' + key }

export class AlertBook {
  /** Open and retained cleared alerts by id. */
  readonly byId = new Map<string, Entry>()
  readonly openSet = new Set<Entry>()
  /** Cleared alerts in clearing order, for retention. */
  private clearedQueue: Entry[] = []
  journal: AlertJournal | null = null

  constructor (private readonly o: BookOptions, private readonly emit: (ev: AlertEvent) => void) {}

  /** Takes back a journaled alert (at start-up). Returns its entry; open ones need a unit slot. */
  adopt (r: JournalRecord, t: number, window: number): Entry {
    const a = r.a
    const e: Entry = {
      alert: a,
      escalateAt: r.x ?? NaN,
      ackUntil: r.k ?? NaN,
      lastEmitGw: -Infinity,
      touchedGw: t,
      clearedGw: a.clearedAt === null ? NaN : t,
      side: null,
      stroke: r.s ?? null,
      window
    }
    this.byId.set(a.id, e)
    if (a.clearedAt !== null) {
      this.clearedQueue.push(e)
    } else {
      this.scheduleEscalation(e, t)
      this.openSet.add(e)
    }
    return e
  }

  raise (
    u: UnitState, kind: AlertKind, key: string, slot: string, priority: AlertPriority, message: string, value: number | null,
    t: number, nowGw: number, stroke: StrokeFindings | null = null, window = -1
  ): Entry {
    const alert: Alert = {
      id: randomUUID(),
      unit: u.unit,
      encounter: u.encounter,
      kind,
      key,
      priority,
      message,
      value,
      raisedAt: t,
      updatedAt: t,
      clearedAt: null,
      acknowledgedAt: null,
      acknowledgedBy: null,
      realarms: 0,
      valueAt: value === null ? null : t,
      escalations: 0,
      escalatedAt: null
    }
    const e: Entry = { alert, escalateAt: NaN, ackUntil: NaN, lastEmitGw: nowGw, touchedGw: nowGw, clearedGw: NaN, side: null, stroke, window }
    this.scheduleEscalation(e, nowGw)
    u.open.set(slot, e)
    this.openSet.add(e)
    this.byId.set(alert.id, e)
    this.record('raised', e)
    return e
  }

  /** True when a value-only update of `e` would be held back now (unchanged or too soon). */
  throttled (e: Entry, value: number, nowGw: number): boolean {
    return value === e.alert.value || nowGw - e.lastEmitGw < this.o.updateIntervalMs
  }

  /**
   * Applies a change to an open alert. A priority change (or `urgent`) is sent at once; a change
   * of value or message alone at most once per updateIntervalMs, so a jittering value does not
   * flood clinicians, MQTT and InfluxDB.
   *
   * An acknowledgement silences, it never hides: a rise in priority, or `worse` (the caller's
   * clinical worsening within a priority, e.g. a higher NEWS2 response band), withdraws it, so
   * the alert sounds, flashes and escalates again.
   */
  update (
    e: Entry, priority: AlertPriority, message: string, value: number | null, t: number, nowGw: number, urgent = false, worse = false,
    valueAt: number = t
  ): void {
    const a = e.alert
    const priorityChanged = priority !== a.priority
    const realarm = a.acknowledgedAt !== null && (worse || RANK[priority] > RANK[a.priority])
    if (!priorityChanged && !realarm && message === a.message && value === a.value) return
    if (!priorityChanged && !realarm && !urgent && nowGw - e.lastEmitGw < this.o.updateIntervalMs) return
    a.priority = priority
    a.message = message
    a.valueAt = value === null ? null : valueAt
    a.value = value
    a.updatedAt = Math.max(a.updatedAt, t)
    e.lastEmitGw = nowGw
    if (realarm) this.withdrawAck(e)
    if (priorityChanged || realarm) this.scheduleEscalation(e, nowGw)
    this.record('updated', e)
  }

  /** Ends the silence of an acknowledged open alert whose silence period is over (gateway clock). */
  reAlarmDue (e: Entry, nowGw: number): void {
    if (e.alert.acknowledgedAt === null || !(e.ackUntil <= nowGw)) return
    this.withdrawAck(e)
    e.lastEmitGw = nowGw
    this.scheduleEscalation(e, nowGw)
    this.record('updated', e)
  }

  private withdrawAck (e: Entry): void {
    const a = e.alert
    a.acknowledgedAt = null
    a.acknowledgedBy = null
    a.realarms++
    e.ackUntil = NaN
    e.escalateAt = NaN
  }

  /** Re-tags an open alert with the encounter dispatch just assigned (same patient). */
  retag (e: Entry, encounter: string, t: number, nowGw: number): void {
    e.alert.encounter = encounter
    e.alert.updatedAt = Math.max(t, e.alert.updatedAt)
    e.lastEmitGw = nowGw
    this.record('updated', e)
  }

  clear (u: UnitState, slot: string, e: Entry, t: number, nowGw: number): void {
    u.open.delete(slot)
    this.openSet.delete(e)
    e.alert.clearedAt = t
    e.clearedGw = nowGw
    e.escalateAt = NaN
    e.ackUntil = NaN
    this.clearedQueue.push(e)
    this.record('cleared', e)
  }

  /** Escalates every high-priority alert whose acknowledgement is overdue (gateway clock). */
  escalateDue (e: Entry, nowGw: number): void {
    const a = e.alert
    if (a.priority !== 'high' || a.acknowledgedAt !== null || !(e.escalateAt <= nowGw)) return
    a.escalations++
    a.escalatedAt = nowGw
    e.escalateAt += this.o.escalateAfterMs
    // After a long stall (or a restart) escalate once, not once per missed period.
    if (e.escalateAt <= nowGw) e.escalateAt = nowGw + this.o.escalateAfterMs
    this.record('escalated', e)
  }

  private scheduleEscalation (e: Entry, nowGw: number): void {
    const a = e.alert
    if (a.priority !== 'high' || a.acknowledgedAt !== null) e.escalateAt = NaN
    else if (Number.isNaN(e.escalateAt)) e.escalateAt = nowGw + this.o.escalateAfterMs
  }

  /**
   * Records the first acknowledgement; later ones keep it (and do not extend the silence). null
   * for an unknown id. An open alert is silenced for ackSilenceMs of its priority.
   */
  acknowledge (id: string, by: string, nowMs: number): Alert | null {
    const e = this.byId.get(id)
    if (e === undefined) return null
    const a = e.alert
    if (a.acknowledgedAt === null) {
      a.acknowledgedAt = nowMs
      a.acknowledgedBy = by
      e.escalateAt = NaN
      e.ackUntil = a.clearedAt === null ? nowMs + this.o.ackSilenceMs[a.priority] : NaN
      this.record('acknowledged', e)
    }
    return { ...a }
  }

  /** Forgets alerts cleared more than retainClearedMs ago. */
  prune (nowGw: number): void {
    const cutoff = nowGw - this.o.retainClearedMs
    let drop = 0
    while (drop < this.clearedQueue.length && this.clearedQueue[drop]!.clearedGw < cutoff) {
      this.byId.delete(this.clearedQueue[drop]!.alert.id)
      drop++
    }
    if (drop > 0) this.clearedQueue = this.clearedQueue.slice(drop)
  }

  /** The live state as journal records (compaction). */
  records (): JournalRecord[] {
    return [...this.byId.values()].map(e => journalRecord('raised', e))
  }

  private record (type: AlertEventType, e: Entry): void {
    this.journal?.append(journalRecord(type, e))
    // Consumers get their own copy: the book keeps mutating its alert.
    this.emit({ type, alert: Object.freeze({ ...e.alert }) as Alert })
  }

  openAlerts (): Alert[] {
    return [...this.openSet].map(e => ({ ...e.alert })).sort((p, q) => p.raisedAt - q.raisedAt)
  }

  alertsFor (unit: string): Alert[] {
    const out: Alert[] = []
    for (const e of this.byId.values()) if (e.alert.unit === unit) out.push({ ...e.alert })
    return out.sort((p, q) => q.raisedAt - p.raisedAt)
  }

  get (id: string): Alert | null {
    const e = this.byId.get(id)
    return e === undefined ? null : { ...e.alert }
  }
}

function journalRecord (type: AlertEventType, e: Entry): JournalRecord {
  return { e: type, a: e.alert, x: Number.isNaN(e.escalateAt) ? null : e.escalateAt, k: Number.isNaN(e.ackUntil) ? null : e.ackUntil, s: e.stroke }
}
