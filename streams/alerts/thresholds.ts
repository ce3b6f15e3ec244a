/**
 * Threshold rules and NEWS2 on the latest numerics (sample time), the patient's age choosing
 * adult or paediatric limits, and the reading-age refresh of an alert whose reading stopped.
 */
import { NEWS2, sampleNow, type EngineCore } from './engine-core.js'
import { news2Message, thresholdMessage } from './messages.js'
import { news2 } from './news2.js'
import { PAEDIATRIC_BELOW_YEARS, paediatricRules } from './paediatric.js'
import { judgeRule, ruleState, type ThresholdRule } from './rules.js'
import type { AlertPriority } from './types.js'
import type { Entry, UnitState } from './unit-state.js'

const NEWS2_LEVEL: Readonly<Record<string, number>> = { 'single-parameter': 1, urgent: 2, emergency: 3 }
const LEVEL_PRIORITY: readonly AlertPriority[] = ['low', 'medium', 'medium', 'high']
/** NEWS2 window shares: ≥ 70 % of the raise window raises a level; ≥ 90 % of the clear window below it steps down. */
const NEWS2_RAISE = 0.7
const NEWS2_CLEAR = 0.9

/** The threshold rules that apply to the unit's patient (paediatric under 16). */
export function rulesFor (c: EngineCore, u: UnitState): readonly ThresholdRule[] {
  return c.childRules.get(u) ?? c.options.rules
}

export function applyRule (c: EngineCore, u: UnitState, ri: number, rule: ThresholdRule, value: number, t: number, nowGw: number): void {
  const w = u.windows[ri]!
  w.add(t, ruleState(rule, value))
  const slot = c.ruleSlots[ri]!
  const open = u.open.get(slot)
  const v = judgeRule(rule, w, open?.side ?? null, open?.alert.priority === 'high', c.verdict)
  if (open === undefined) {
    if (v.side === null) return
    const crit = v.priority === 'high' && (v.side === 'low' ? rule.critLow : rule.critHigh) !== null
    c.book.raise(u, 'threshold', rule.sign, slot, v.priority, thresholdMessage(rule, v.side, value, 0, crit), value, t, nowGw).side = v.side
    return
  }
  if (v.clear) { c.book.clear(u, slot, open, t, nowGw); return }
  const side = v.side!
  const flipped = open.side !== side
  open.side = side
  const crit = v.priority === 'high' && (side === 'low' ? rule.critLow : rule.critHigh) !== null
  c.book.update(open, v.priority, thresholdMessage(rule, side, value, 0, crit), value, t, nowGw, flipped, flipped)
}

export function evaluateNews2 (c: EngineCore, u: UnitState, t: number, nowGw: number): void {
  // Under 16 NEWS2 is not applied (RCP 2017); the paediatric limits apply instead.
  if (u.ageYears !== null && u.ageYears < PAEDIATRIC_BELOW_YEARS) { u.news2 = null; return }
  const r = news2(u.readings, t, c.options.news2Staleness, u.spo2Scale)
  u.news2 = r
  u.recordNews2(r, t, c.options.news2HistoryMs, c.options.news2HistoryStepMs)
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
    c.book.raise(u, 'news2', '', NEWS2, LEVEL_PRIORITY[target]!, news2Message(r, t), value, t, nowGw)
    return
  }
  if (target > cur) {
    // A higher response band: at once, and it withdraws an acknowledgement.
    u.news2Level = target
    c.book.update(open, LEVEL_PRIORITY[target]!, news2Message(r, t), value, t, nowGw, true, true)
    return
  }
  if (target < cur && w.clearShare(1, cur) >= NEWS2_CLEAR) {
    u.news2Level = target
    if (target === 0) c.book.clear(u, NEWS2, open, t, nowGw)
    else c.book.update(open, LEVEL_PRIORITY[target]!, news2Message(r, t), value, t, nowGw, true)
    return
  }
  c.book.update(open, LEVEL_PRIORITY[cur]!, news2Message(r, t), value, t, nowGw)
}

/** Sets the patient's age; under 16 the paediatric limit table replaces the adult rules. */
export function setAge (c: EngineCore, u: UnitState, age: number | null): void {
  if (age === u.ageYears) return
  u.ageYears = age
  const child = age !== null && age < PAEDIATRIC_BELOW_YEARS ? paediatricRules(c.options.rules, age) : null
  if (child === null) c.childRules.delete(u)
  else c.childRules.set(u, child)
  for (const w of u.windows) w.reset()
}

/** Keeps a threshold alert's reading age current while the reading has stopped (throttled). */
export function staleReading (c: EngineCore, u: UnitState | undefined, e: Entry, nowMs: number): void {
  const a = e.alert
  const rule = u === undefined ? undefined : rulesFor(c, u).find(r => r.sign === a.key)
  const r = u?.readings[a.key]
  if (u === undefined || rule === undefined || r === undefined || e.side === null) return
  const t = sampleNow(u, nowMs)
  const ageMs = t - r.atMs
  if (ageMs < 10_000 || c.book.throttled(e, NaN, nowMs)) return
  const crit = a.priority === 'high' && (e.side === 'low' ? rule.critLow : rule.critHigh) !== null
  c.book.update(e, a.priority, thresholdMessage(rule, e.side, r.value, ageMs, crit), r.value, t, nowMs, false, false, r.atMs)
}
