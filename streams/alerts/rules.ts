/**
 * Per-sign threshold rules in two tiers: limits outside which a clinician should look (priority
 * per side, usually medium) and critical limits outside which life is threatened within minutes
 * (always high, at once). Persistence is judged over a sliding window (streams/alerts/window.ts):
 * the alert is raised when the value was beyond a limit for ≥ raiseFraction of the last
 * windowMs, and cleared when it was back inside by the margin for ≥ clearFraction of the last
 * clearWindowMs. A value hovering at a limit raises one alert, not a storm (alarm fatigue: Joint
 * Commission Sentinel Event Alert 50 (2013) and NPSG.06.01.01; AAMI/FDA Medical Device Alarm
 * Summit 2011), and an intermittent condition is not hidden by a good second now and then. Alarm
 * delays of 10–15 s remove most nuisance alarms (Welch J, Biomed Instrum Technol 2011;45(s1):46-52);
 * a window of that length at 70 % tolerates 3–4 s of artefact or recovery inside it.
 *
 * Durations are measured in sample time (the device's captured_at + offset), i.e. in the
 * patient's time line: a burst of frames delayed by the network neither fakes nor hides a
 * sustained condition.
 *
 * The defaults below are for adults. Per-hospital overrides come from a JSON file
 * (`ALERT_RULES_FILE`), validated at start; see {@link parseRulesConfig} for the format. Every
 * limit is listed with its source in docs/alerts.md.
 */
import { readFile } from 'node:fs/promises'
import { VITAL_SIGNS } from '../../decoders/index.js'
import { AlertError } from './errors.js'
import type { AlertPriority } from './types.js'
import { NO_DATA, StateWindow } from './window.js'

export interface ThresholdRule {
  /** Vital-sign field name (decoders/vitals.ts), e.g. `heart_rate`: also the alert's `key`. */
  sign: string
  /** Beyond-limit when the value is below this (exclusive); null = no low limit. */
  low: number | null
  /** Beyond-limit when the value is above this (exclusive); null = no high limit. */
  high: number | null
  lowPriority: AlertPriority
  highPriority: AlertPriority
  /** Critical: below this (exclusive) the alert is high priority at once; null = none. */
  critLow: number | null
  /** Critical: above this (exclusive) the alert is high priority at once; null = none. */
  critHigh: number | null
  /** Raise window, ms of sample time (0 = the reading alone decides: spot measurements). */
  minDurationMs: number
  /** Share of the raise window (0..1] beyond a limit that raises. */
  raiseFraction: number
  /** Once raised, "inside" means inside the limits by this much (the sign's unit)… */
  clearMargin: number
  /** …over this window, ms of sample time (0 = the reading alone decides)… */
  clearDurationMs: number
  /** …for at least this share (0..1] of it. */
  clearFraction: number
}

const R = (r: ThresholdRule): ThresholdRule => Object.freeze(r)
/** ≥ 70 % of the raise window; ≥ 90 % of the clear window (see the module comment and docs/alerts.md). */
const RAISE = 0.7
const CLEAR = 0.9

/**
 * Adult defaults (sources beside each, and in docs/alerts.md). Spot measurements (NIBP,
 * temperature, ACVPU) have no window: one reading is the measurement, and the next comes minutes
 * later. Continuous signs use a 10–15 s raise window (Welch 2011) and a 30 s clear window, so the
 * alert ends only after the value has been steady for a while.
 */
export const DEFAULT_RULES: readonly ThresholdRule[] = Object.freeze([
  // Low ≤ 40 (below 41), critical at once: NEWS2 scores ≤ 40 as 3 (RCP 2017 chart 1); ERC 2021
  // bradycardia algorithm. No medium tier below it: a resting 41–50 is physiological in
  // athletes (Sharma 2017 international criteria for ECG interpretation in athletes: sinus
  // bradycardia ≥ 30 bpm is normal) and NEWS2 scores it 1. High > 130: NEWS2's top band (≥ 131).
  // Critical ≥ 150 (above 149): ERC 2021 tachycardia algorithm — rates ≥ 150/min are those
  // likely to cause instability.
  R({ sign: 'heart_rate', low: 41, high: 130, lowPriority: 'high', highPriority: 'medium', critLow: 41, critHigh: 149, minDurationMs: 10_000, raiseFraction: RAISE, clearMargin: 5, clearDurationMs: 30_000, clearFraction: CLEAR }),
  // The oximeter's pulse: the same limits; the freshest pulse source is also what NEWS2 scores.
  R({ sign: 'pulse_rate', low: 41, high: 130, lowPriority: 'high', highPriority: 'medium', critLow: 41, critHigh: 149, minDurationMs: 10_000, raiseFraction: RAISE, clearMargin: 5, clearDurationMs: 30_000, clearFraction: CLEAR }),
  // < 90 %: the usual hypoxaemia alarm limit, below BTS 2017 emergency-oxygen targets (94–98 %,
  // or 88–92 % in hypercapnic failure). Critical < 85 %: severe hypoxaemia (WHO pulse oximetry
  // training manual 2011: < 85 % is severe, act at once); 15 s window (Welch 2011).
  R({ sign: 'spo2', low: 90, high: null, lowPriority: 'medium', highPriority: 'medium', critLow: 85, critHigh: null, minDurationMs: 15_000, raiseFraction: RAISE, clearMargin: 2, clearDurationMs: 30_000, clearFraction: CLEAR }),
  // < 90 mmHg: hypotension / shock (NEWS2 ≤ 90 scores 3; ATLS 10th ed.). Critical < 80 mmHg:
  // below the permissive-hypotension floor of 80–90 mmHg (ATLS 10th ed.; ESA/ESICM European
  // trauma guideline 2023: target SBP 80–90), organ perfusion fails. > 200 mmHg: severe
  // hypertension (stroke thrombolysis needs < 185 mmHg: flagged in the stroke alert, AHA/ASA 2019).
  R({ sign: 'nibp_systolic', low: 90, high: 200, lowPriority: 'medium', highPriority: 'medium', critLow: 80, critHigh: null, minDurationMs: 0, raiseFraction: RAISE, clearMargin: 5, clearDurationMs: 0, clearFraction: CLEAR }),
  // < 10 /min: respiratory depression (ASA 2016 practice guideline on opioid-induced respiratory
  // depression: RR < 10). Critical ≤ 8 (below 9): NEWS2 ≤ 8 scores 3 (RCP 2017). > 30 /min: START
  // triage "immediate" criterion, severe respiratory distress.
  R({ sign: 'respiratory_rate', low: 10, high: 30, lowPriority: 'medium', highPriority: 'medium', critLow: 9, critHigh: null, minDurationMs: 15_000, raiseFraction: RAISE, clearMargin: 2, clearDurationMs: 30_000, clearFraction: CLEAR }),
  // Normal 35–45 mmHg. < 25: hypoperfusion, hyperventilation or a displaced airway; > 60:
  // hypoventilation. Wide on purpose: sidestream sampling by nasal cannula reads low. The
  // critical < 10 mmHg of an intubated patient (AHA 2020 ACLS: tube displacement, failing CPR)
  // is not a default: the contract does not say whether the patient is intubated, and a cannula
  // reads < 10 routinely (docs/alerts.md).
  R({ sign: 'etco2', low: 25, high: 60, lowPriority: 'medium', highPriority: 'medium', critLow: null, critHigh: null, minDurationMs: 15_000, raiseFraction: RAISE, clearMargin: 3, clearDurationMs: 30_000, clearFraction: CLEAR }),
  // < 35 °C: hypothermia by definition (ERC 2021 special circumstances); > 39.5 °C: high fever,
  // above NEWS2's top band (≥ 39.1).
  R({ sign: 'temperature', low: 35, high: 39.5, lowPriority: 'medium', highPriority: 'medium', critLow: null, critHigh: null, minDurationMs: 0, raiseFraction: RAISE, clearMargin: 0.3, clearDurationMs: 0, clearFraction: CLEAR }),
  // ACVPU (0 A, 1 C, 2 V, 3 P, 4 U): anything but Alert scores 3 in NEWS2 (RCP 2017 chart 1).
  // Critical P or U (above 2): responds only to pain or not at all, ≈ GCS ≤ 8, airway at risk
  // (NICE NG232 head injury 2023; ATLS 10th ed.: GCS ≤ 8 needs a definitive airway).
  R({ sign: 'consciousness_acvpu', low: null, high: 0.5, lowPriority: 'medium', highPriority: 'medium', critLow: null, critHigh: 2.5, minDurationMs: 0, raiseFraction: RAISE, clearMargin: 0.5, clearDurationMs: 0, clearFraction: CLEAR })
])

/** Defaults for a rule a hospital adds for a sign without a default rule. */
const NEW_RULE_BASE = Object.freeze({
  low: null, high: null, lowPriority: 'medium', highPriority: 'medium', critLow: null, critHigh: null,
  minDurationMs: 10_000, raiseFraction: RAISE, clearMargin: 0, clearDurationMs: 30_000, clearFraction: CLEAR
} as const)

const SIGN_FIELDS: ReadonlySet<string> = new Set(VITAL_SIGNS.map(s => s.field))
const PRIORITIES: readonly AlertPriority[] = ['low', 'medium', 'high']
const RULE_KEYS = [
  'low', 'high', 'critLow', 'critHigh', 'priority', 'lowPriority', 'highPriority', 'minDurationMs', 'raiseFraction',
  'clearMargin', 'clearDurationMs', 'clearFraction', '$comment'
] as const

/**
 * Validates a rules file's content and merges it over the defaults.
 *
 * ```json
 * { "rules": {
 *     "heart_rate": { "low": 45, "high": 120, "minDurationMs": 20000 },
 *     "pulse_rate": { "low": 40, "priority": "high" },
 *     "etco2": null
 * } }
 * ```
 * A sign's object overrides fields of its default rule (or of a new rule with 10 s durations,
 * no margin, medium priority); `priority` sets both sides; `null` disables the sign's rule.
 * Unknown keys are errors, so a typo never silently leaves a default in force.
 * @param source names the file in error messages
 */
export function parseRulesConfig (json: unknown, source = 'ALERT_RULES_FILE'): ThresholdRule[] {
  const fail = (path: string, what: string): never => { throw new AlertError('AMB_ERR_ALERT_RULES', `${source}: ${path} ${what}`) }
  if (!isObject(json)) return fail('(top level)', 'must be a JSON object with a "rules" object')
  for (const k of Object.keys(json)) if (k !== 'rules' && k !== '$comment') fail(k, 'is not a known key (expected "rules")')
  const rules = new Map(DEFAULT_RULES.map(r => [r.sign, r] as const))
  const over = json.rules
  if (over === undefined) return [...rules.values()]
  if (!isObject(over)) return fail('rules', 'must be an object keyed by vital sign')
  for (const [sign, spec] of Object.entries(over)) {
    const at = `rules.${sign}`
    if (!SIGN_FIELDS.has(sign)) fail(at, `is not a vital sign (one of ${[...SIGN_FIELDS].join(', ')})`)
    if (spec === null) { rules.delete(sign); continue }
    if (!isObject(spec)) fail(at, 'must be an object or null (null disables the rule)')
    const s = spec as Record<string, unknown>
    const r: ThresholdRule = { ...(rules.get(sign) ?? { sign, ...NEW_RULE_BASE }) }
    for (const [k, v] of Object.entries(s)) {
      const p = `${at}.${k}`
      switch (k as typeof RULE_KEYS[number]) {
        case 'low':
        case 'high':
        case 'critLow':
        case 'critHigh':
          if (v !== null && !isFiniteNumber(v)) fail(p, `must be a number or null, got ${JSON.stringify(v)}`)
          r[k as 'low' | 'high' | 'critLow' | 'critHigh'] = v as number | null
          break
        case 'raiseFraction':
        case 'clearFraction':
          if (!isFiniteNumber(v) || v <= 0 || v > 1) fail(p, `must be a share in (0, 1], got ${JSON.stringify(v)}`)
          r[k as 'raiseFraction' | 'clearFraction'] = v as number
          break
        case 'priority':
        case 'lowPriority':
        case 'highPriority':
          if (!PRIORITIES.includes(v as AlertPriority)) fail(p, `must be one of ${PRIORITIES.join(', ')}, got ${JSON.stringify(v)}`)
          if (k !== 'highPriority') r.lowPriority = v as AlertPriority
          if (k !== 'lowPriority') r.highPriority = v as AlertPriority
          break
        case 'minDurationMs':
        case 'clearDurationMs':
          if (!Number.isSafeInteger(v) || (v as number) < 0) fail(p, `must be a whole number of ms ≥ 0, got ${JSON.stringify(v)}`)
          r[k as 'minDurationMs' | 'clearDurationMs'] = v as number
          break
        case 'clearMargin':
          if (!isFiniteNumber(v) || v < 0) fail(p, `must be a number ≥ 0, got ${JSON.stringify(v)}`)
          r.clearMargin = v as number
          break
        case '$comment':
          break
        default:
          fail(p, `is not a known key (expected one of ${RULE_KEYS.join(', ')})`)
      }
    }
    if (r.low === null && r.high === null) fail(at, 'needs a low or a high limit (use null to disable the rule)')
    // A limit moved past the default critical one takes it along (the hospital set only the limit).
    if (!('critLow' in s) && r.critLow !== null && r.low !== null && r.critLow > r.low) r.critLow = r.low
    if (!('critHigh' in s) && r.critHigh !== null && r.high !== null && r.critHigh < r.high) r.critHigh = r.high
    if (r.critLow !== null && (r.low === null || r.critLow > r.low)) fail(at, `critLow (${r.critLow}) needs a low limit at or above it`)
    if (r.critHigh !== null && (r.high === null || r.critHigh < r.high)) fail(at, `critHigh (${r.critHigh}) needs a high limit at or below it`)
    if (r.minDurationMs > MAX_WINDOW_MS || r.clearDurationMs > MAX_WINDOW_MS) fail(at, `windows are at most ${MAX_WINDOW_MS} ms`)
    if (r.low !== null && r.high !== null && !(r.low + r.clearMargin < r.high - r.clearMargin)) {
      fail(at, `limits leave no room to clear: low + clearMargin (${r.low + r.clearMargin}) must be below high - clearMargin (${r.high - r.clearMargin})`)
    }
    rules.set(sign, Object.freeze(r))
  }
  return [...rules.values()]
}

/** Reads and validates the rules file; every problem is an AMB_ERR_ALERT_RULES naming the file and key. */
export async function loadRulesFile (path: string): Promise<ThresholdRule[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new AlertError('AMB_ERR_ALERT_RULES', `ALERT_RULES_FILE ${path}: cannot read: ${(err as Error).message}`, { cause: err })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new AlertError('AMB_ERR_ALERT_RULES', `ALERT_RULES_FILE ${path}: not valid JSON: ${(err as Error).message}`, { cause: err })
  }
  return parseRulesConfig(json, `ALERT_RULES_FILE ${path}`)
}

/** Longest raise or clear window, ms (bounds the per-unit ring). */
const MAX_WINDOW_MS = 300_000

/** Bucket states of a threshold window. */
export const IN = 1        // inside the limits by the clear margin
export const BAND = 2      // inside the limits, not by the margin
export const LOW = 3
export const CRIT_LOW = 4
export const HIGH = 5
export const CRIT_HIGH = 6
const STATES = 7

/** The window of one (unit, rule). */
export function ruleWindow (rule: ThresholdRule): StateWindow {
  return new StateWindow(Math.max(1, Math.ceil(rule.minDurationMs / 1000)), Math.max(1, Math.ceil(rule.clearDurationMs / 1000)), STATES)
}

/** The bucket state of one reading. */
export function ruleState (rule: ThresholdRule, v: number): number {
  if (rule.low !== null && v < rule.low) return rule.critLow !== null && v < rule.critLow ? CRIT_LOW : LOW
  if (rule.high !== null && v > rule.high) return rule.critHigh !== null && v > rule.critHigh ? CRIT_HIGH : HIGH
  const inside = (rule.low === null || v >= rule.low + rule.clearMargin) && (rule.high === null || v <= rule.high - rule.clearMargin)
  return inside ? IN : BAND
}

/** What a rule's window says now: nothing, raise/keep a side at a priority, or clear. */
export interface RuleVerdict {
  side: 'low' | 'high' | null
  priority: AlertPriority
  clear: boolean
}

/**
 * Judges the window after a sample. `raised` is the open alert's side (null when none) and
 * `critical` whether it stands at the critical tier. Allocation-free: fills `out`.
 * - not raised: raise a side when ≥ raiseFraction of the raise window was beyond it; high
 *   priority when that share was at the critical tier.
 * - raised: a side change or a rise to critical is immediate (same test); stepping down from
 *   critical, and clearing, need ≥ clearFraction of the clear window below it / inside by margin.
 */
export function judgeRule (rule: ThresholdRule, w: StateWindow, raised: 'low' | 'high' | null, critical: boolean, out: RuleVerdict): RuleVerdict {
  const f = rule.raiseFraction
  out.clear = false
  out.side = null
  const lowShare = w.raiseShare(LOW, CRIT_LOW)
  const highShare = w.raiseShare(HIGH, CRIT_HIGH)
  if (lowShare >= f) {
    out.side = 'low'
    out.priority = w.raiseShare(CRIT_LOW) >= f ? 'high' : rule.lowPriority
  } else if (highShare >= f) {
    out.side = 'high'
    out.priority = w.raiseShare(CRIT_HIGH) >= f ? 'high' : rule.highPriority
  }
  if (raised === null) return out
  if (out.side === null || out.side !== raised) {
    if (out.side !== null) return out // flipped to the other limit
    if (w.clearShare(IN) >= rule.clearFraction) { out.clear = true; return out }
    out.side = raised
    out.priority = raised === 'low' ? rule.lowPriority : rule.highPriority
  }
  // Same side: keep the critical tier until the clear window is (nearly) free of it.
  if (critical && out.priority !== 'high') {
    const crit = raised === 'low' ? CRIT_LOW : CRIT_HIGH
    if (w.clearShare(crit) > 1 - rule.clearFraction) out.priority = 'high'
  }
  return out
}

export { NO_DATA }

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isFiniteNumber (v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}
