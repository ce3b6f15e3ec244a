/**
 * What the alert engine's evaluators share: the options, the alert book, the rule tables and
 * the ECG STEMI watch, and the slots (`kind/key`) of the engine's own alerts. The engine owns
 * these; thresholds.ts, assessment-alerts.ts, device-alarms.ts and ward.ts work on them.
 */
import type { AlertBook } from './book.js'
import type { EcgStemiWatch } from './ecg-stemi.js'
import type { AlertEngineOptions } from './engine-options.js'
import type { RuleVerdict, ThresholdRule } from './rules.js'
import type { UnitState } from './unit-state.js'

export interface EngineCore {
  readonly options: Readonly<AlertEngineOptions>
  readonly book: AlertBook
  /** Rule index per VitalSign number. */
  readonly ruleBySign: readonly (number | undefined)[]
  readonly ruleSlots: readonly string[]
  /** Children's rules by unit (replacing the adult ones index for index). */
  readonly childRules: Map<UnitState, ThresholdRule[]>
  /** Reused verdict of judgeRule (no allocation on the hot path). */
  readonly verdict: RuleVerdict
  /** STEMI from the ECG (issue 9): ecg-stemi.ts. */
  readonly ecgStemi: EcgStemiWatch
}

export const NEWS2 = 'news2/'
export const STEMI = 'stemi/'
export const STROKE = 'stroke/'
export const STEMI_ECG = 'stemi/ecg'

/** The unit's current sample time: its latest frame's time plus the gateway time elapsed since. */
export function sampleNow (u: UnitState, nowGw: number): number {
  return u.lastCapturedAt + Math.max(0, nowGw - u.lastSeenGw)
}
