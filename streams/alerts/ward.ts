/**
 * The ward across restarts: units restored from the state store, open alerts re-created from
 * the journal (so signal loss and hysteresis pick up where they were), and unit snapshots.
 */
import { slotOf } from './book.js'
import type { EngineCore } from './engine-core.js'
import type { JournalRecord } from './journal.js'
import { strokeWindow } from './messages.js'
import type { UnitSnapshot } from './state-store.js'
import { setAge } from './thresholds.js'
import type { UnitState } from './unit-state.js'
import type { WindowState } from './window.js'

/** A unit of the ward before the restart: watched again from now (signal loss if it never returns). */
export function adoptUnit (c: EngineCore, u: UnitState, s: UnitSnapshot, t: number): void {
  u.encounter = s.encounter
  u.bootId = s.bootId
  u.lastCapturedAt = s.lastCapturedAt
  u.order.restore(s.bootId, s.lastCapturedAt, s.seqTop, s.clockShiftMs)
  u.readings = s.readings
  u.news2Level = s.news2Level
  u.spo2Scale = s.spo2Scale === 2 ? 2 : 1
  if (s.hadEcg) u.lastEcgGw = t
  setAge(c, u, s.ageYears)
  // After setAge (which empties the windows when the age changes the rules).
  const rules = c.options.rules
  for (let i = 0; i < rules.length; i++) u.windows[i]!.restoreState(s.windows?.[rules[i]!.sign])
  u.news2Window.restoreState(s.news2Window)
  // The degraded-link count goes on; the steady hold-off starts again here (clearing later, never earlier).
  const since = t - c.options.linkWindowMs
  u.gaps = Array.isArray(s.linkGaps)
    ? s.linkGaps.filter(g => Array.isArray(g) && Number.isFinite(g[0]) && Number.isFinite(g[1]) && g[0] >= since && g[0] <= t).map(([atGw, ms]) => ({ atGw, ms }))
    : []
}

/** Re-creates a journaled alert, and its unit's state (`unitOf` finds or makes the unit). */
export function adoptAlert (c: EngineCore, r: JournalRecord, t: number, unitOf: (id: string) => UnitState): void {
  const a = r.a
  const stroke = r.s ?? null
  const e = c.book.adopt(r, t, stroke === null ? -1 : strokeWindow(stroke.lastKnownWellMs, t))
  if (a.clearedAt !== null) return
  const u = unitOf(a.unit)
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
    const rule = c.options.rules.find(x => x.sign === a.key)
    // The hospital removed this rule since: nothing could ever clear the alert.
    if (rule === undefined) { c.book.clear(u, slot, e, t, t); return }
    const v = a.value ?? NaN
    e.side = rule.low !== null && (rule.high === null || v < (rule.low + rule.high) / 2) ? 'low' : 'high'
  }
}

/** What the state store keeps of a unit. */
export function snapshotOf (c: EngineCore, u: UnitState): UnitSnapshot {
  return {
    unit: u.unit,
    encounter: u.encounter,
    bootId: u.bootId,
    lastCapturedAt: u.lastCapturedAt,
    seqTop: u.order.top,
    clockShiftMs: u.order.shift,
    readings: structuredClone(u.readings),
    news2Level: u.news2Level,
    spo2Scale: u.spo2Scale,
    ageYears: u.ageYears,
    hadEcg: u.lastEcgGw > -Infinity,
    windows: windowsOf(c, u),
    news2Window: u.news2Window.toState() ?? undefined,
    linkGaps: u.gaps.slice(-MAX_GAPS).map(g => [g.atGw, g.ms])
  }
}

/** Gaps kept in a snapshot (the degraded-link rule needs a handful: linkDegradedGaps, 3). */
const MAX_GAPS = 16

function windowsOf (c: EngineCore, u: UnitState): Record<string, WindowState> {
  const out: Record<string, WindowState> = {}
  const rules = c.options.rules
  for (let i = 0; i < rules.length; i++) {
    const w = u.windows[i]!.toState()
    if (w !== null) out[rules[i]!.sign] = w
  }
  return out
}
