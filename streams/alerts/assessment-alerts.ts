/**
 * The crew's assessment: STEMI and stroke pre-notification (findings, BP flag, reperfusion
 * windows now and at arrival: AHA/ASA 2019, see messages.ts), and the STEMI alert from the ECG.
 */
import type { Assessment } from '../../decoders/index.js'
import type { EcgFinding } from './ecg-stemi.js'
import { STEMI, STEMI_ECG, STROKE, type EngineCore } from './engine-core.js'
import {
  minutesSinceLkw, STEMI_MESSAGE, strokeMessage, strokeSuspected, strokeWindow, type StrokeContext, type StrokeFindings
} from './messages.js'
import { setAge } from './thresholds.js'
import type { Entry, UnitState } from './unit-state.js'

export function applyAssessment (c: EngineCore, u: UnitState, a: Assessment, t: number, nowGw: number): void {
  // A resent older assessment must not undo a newer one.
  if (t < u.assessmentT) return
  u.assessmentT = t
  // Contract v1.1: a field the frame left out is unchanged.
  const p = a.present
  if (p.stemiSuspected) u.stemi = a.stemiSuspected
  if (p.lamsScore) u.lamsScore = a.lamsScore
  if (p.fastPositive) u.fastPositive = a.fastPositive
  if (p.lastKnownWellMs) u.lastKnownWellMs = a.lastKnownWellMs
  if (p.ageYears) setAge(c, u, a.ageYears)
  u.dirty = true
  stemiFromCrew(c, u, t, nowGw)
  strokeFromCrew(c, u, t, nowGw)
}

function stemiFromCrew (c: EngineCore, u: UnitState, t: number, nowGw: number): void {
  const stemi = u.open.get(STEMI)
  if (u.stemi && stemi === undefined) c.book.raise(u, 'stemi', '', STEMI, 'high', STEMI_MESSAGE, null, t, nowGw)
  else if (!u.stemi && stemi !== undefined) c.book.clear(u, STEMI, stemi, t, nowGw)
}

function strokeFromCrew (c: EngineCore, u: UnitState, t: number, nowGw: number): void {
  const stroke = u.open.get(STROKE)
  const findings: StrokeFindings = { lamsScore: u.lamsScore, fastPositive: u.fastPositive, lastKnownWellMs: u.lastKnownWellMs }
  if (!strokeSuspected(findings)) {
    if (stroke !== undefined) c.book.clear(u, STROKE, stroke, t, nowGw)
    return
  }
  if (stroke === undefined) {
    const ctx = strokeContext(u)
    c.book.raise(u, 'stroke', '', STROKE, 'high', strokeMessage(findings, t, ctx), minutesSinceLkw(findings, t), t, nowGw, findings,
      strokeWindow(findings.lastKnownWellMs, t))
    return
  }
  const prev = stroke.stroke
  const changed = prev === null || prev.lamsScore !== findings.lamsScore || prev.fastPositive !== findings.fastPositive ||
    prev.lastKnownWellMs !== findings.lastKnownWellMs
  stroke.stroke = findings
  strokeUpdate(c, u, stroke, t, nowGw, changed)
}

export function strokeContext (u: UnitState): StrokeContext {
  return { sbp: u.readings.nibp_systolic?.value ?? null, dbp: u.readings.nibp_diastolic?.value ?? null, etaMs: u.etaMs }
}

/** Re-renders the stroke alert (findings, BP flag, windows at arrival); a changed finding or window goes out at once. */
export function strokeUpdate (c: EngineCore, u: UnitState, e: Entry, t: number, nowGw: number, changed: boolean): void {
  const f = e.stroke
  if (f === null) return
  const window = strokeWindow(f.lastKnownWellMs, t)
  const urgent = changed || e.window !== window
  e.window = window
  c.book.update(e, 'high', strokeMessage(f, t, strokeContext(u)), minutesSinceLkw(f, t), t, nowGw, urgent)
}

/** Reports a stroke alert's passage out of a reperfusion window as soon as it happens. */
export function strokeClock (c: EngineCore, u: UnitState | undefined, e: Entry, nowMs: number): void {
  const f = e.stroke
  if (f === null || f.lastKnownWellMs <= 0) return
  const w = strokeWindow(f.lastKnownWellMs, nowMs)
  if (w === e.window) return
  e.window = w
  c.book.update(e, e.alert.priority, strokeMessage(f, nowMs, u === undefined ? undefined : strokeContext(u)), minutesSinceLkw(f, nowMs), nowMs, nowMs, true)
}

/** Raises or updates the ECG STEMI alert (key 'ecg'); a normal ECG later does not clear it. */
export function ecgStemiAlert (c: EngineCore, u: UnitState, ecg: EcgFinding, t: number, nowGw: number): void {
  const open = u.open.get(STEMI_ECG)
  if (open === undefined) {
    const e = c.book.raise(u, 'stemi', 'ecg', STEMI_ECG, 'high', ecg.message, ecg.value, t, nowGw)
    c.ecgStemi.capture(u.unit, e.alert.id)
    return
  }
  const changed = c.ecgStemi.changed(u.unit, ecg.fingerprint)
  // Same verdict and leads: only a move of ≥ 0.5 mm in the largest elevation is news.
  if (!changed && Math.abs((ecg.value ?? 0) - (open.alert.value ?? 0)) < 0.5) return
  c.book.update(open, 'high', ecg.message, ecg.value, t, nowGw, changed)
  // The tracing that changed the verdict is the one the cardiologist needs.
  if (changed) c.ecgStemi.capture(u.unit, open.alert.id)
}
