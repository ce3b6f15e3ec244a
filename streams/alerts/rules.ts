/**
 * Per-sign threshold rules: low/high limits, a minimum duration before raising and hysteresis
 * before clearing, so that a value hovering at a limit raises one alert, not a storm of them
 * (alarm fatigue: Joint Commission Sentinel Event Alert 50 (2013) and NPSG.06.01.01; AAMI/FDA
 * Medical Device Alarm Summit 2011; short alarm delays remove most nuisance alarms: Welch J,
 * Biomed Instrum Technol 2011;45(s1):46-52).
 *
 * Durations are measured in sample time (the device's captured_at + offset), i.e. in the
 * patient's time line: a burst of frames delayed by the network neither fakes nor hides a
 * sustained condition.
 *
 * The defaults below are for adults. Per-hospital overrides come from a JSON file
 * (`ALERT_RULES_FILE`), validated at start; see {@link parseRulesConfig} for the format.
 */
import { readFile } from 'node:fs/promises'
import { VITAL_SIGNS } from '../../decoders/index.js'
import { AlertError } from './errors.js'
import type { AlertPriority } from './types.js'

export interface ThresholdRule {
  /** Vital-sign field name (decoders/vitals.ts), e.g. `heart_rate`: also the alert's `key`. */
  sign: string
  /** Raise while the value is below this (exclusive); null = no low limit. */
  low: number | null
  /** Raise while the value is above this (exclusive); null = no high limit. */
  high: number | null
  lowPriority: AlertPriority
  highPriority: AlertPriority
  /** The value must stay beyond a limit this long (sample time, ms) before the alert is raised. */
  minDurationMs: number
  /** Once raised, the value must be back inside the limits by this much (the sign's unit)… */
  clearMargin: number
  /** …for this long (sample time, ms) before the alert clears. */
  clearDurationMs: number
}

const R = (r: ThresholdRule): ThresholdRule => Object.freeze(r)

/**
 * Adult defaults. Spot measurements (NIBP, temperature) have no duration: one reading is the
 * measurement, and the next comes minutes later. Continuous signs wait 10–15 s, the alarm delays
 * that remove most artefact alarms (probe movement, a cough) while changing nothing clinically.
 */
export const DEFAULT_RULES: readonly ThresholdRule[] = Object.freeze([
  // < 40: NEWS2 scores ≤ 40 as 3; severe bradycardia in a patient in transit is life-threatening
  // (ERC 2021 bradycardia algorithm). > 130: NEWS2's top band (≥ 131); sustained tachycardia.
  R({ sign: 'heart_rate', low: 40, high: 130, lowPriority: 'high', highPriority: 'medium', minDurationMs: 10_000, clearMargin: 5, clearDurationMs: 10_000 }),
  // < 90 %: the usual hypoxaemia alarm limit and below BTS 2017 emergency-oxygen targets
  // (94–98 %, or 88–92 % in hypercapnic failure); 15 s delay (Welch 2011).
  R({ sign: 'spo2', low: 90, high: null, lowPriority: 'high', highPriority: 'medium', minDurationMs: 15_000, clearMargin: 2, clearDurationMs: 15_000 }),
  // < 90 mmHg: hypotension / shock (ATLS; Sepsis-3 uses SBP ≤ 100 as a qSOFA criterion);
  // > 200 mmHg: severe hypertension (note: stroke thrombolysis requires < 185 mmHg, AHA/ASA 2019).
  R({ sign: 'nibp_systolic', low: 90, high: 200, lowPriority: 'high', highPriority: 'medium', minDurationMs: 0, clearMargin: 5, clearDurationMs: 0 }),
  // < 8 /min: NEWS2 ≤ 8 scores 3, opioid/neurological respiratory depression; > 30 /min: START
  // triage "immediate" criterion, severe respiratory distress.
  R({ sign: 'respiratory_rate', low: 8, high: 30, lowPriority: 'high', highPriority: 'medium', minDurationMs: 15_000, clearMargin: 2, clearDurationMs: 15_000 }),
  // Normal 35–45 mmHg. < 25: hypoperfusion, hyperventilation or a displaced airway; > 60:
  // hypoventilation. Wide on purpose: sidestream sampling by nasal cannula reads low.
  R({ sign: 'etco2', low: 25, high: 60, lowPriority: 'medium', highPriority: 'medium', minDurationMs: 15_000, clearMargin: 3, clearDurationMs: 15_000 }),
  // < 35 °C: hypothermia by definition (ERC 2021 special circumstances); > 39.5 °C: high fever,
  // above NEWS2's top band (≥ 39.1).
  R({ sign: 'temperature', low: 35, high: 39.5, lowPriority: 'medium', highPriority: 'medium', minDurationMs: 0, clearMargin: 0.3, clearDurationMs: 0 })
])

/** Defaults for a rule a hospital adds for a sign without a default rule. */
const NEW_RULE_BASE = Object.freeze({ low: null, high: null, lowPriority: 'medium', highPriority: 'medium', minDurationMs: 10_000, clearMargin: 0, clearDurationMs: 10_000 } as const)

const SIGN_FIELDS: ReadonlySet<string> = new Set(VITAL_SIGNS.map(s => s.field))
const PRIORITIES: readonly AlertPriority[] = ['low', 'medium', 'high']
const RULE_KEYS = ['low', 'high', 'priority', 'lowPriority', 'highPriority', 'minDurationMs', 'clearMargin', 'clearDurationMs', '$comment'] as const

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
          if (v !== null && !isFiniteNumber(v)) fail(p, `must be a number or null, got ${JSON.stringify(v)}`)
          r[k as 'low' | 'high'] = v as number | null
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

/** Where one (unit, rule) stands between samples. NaN = not running. */
export interface RuleRun {
  /** Sample time the value first went beyond a limit in the current run. */
  outSince: number
  /** Sample time the value first came back inside by the margin (while raised). */
  inSince: number
}

/**
 * What a sample means for a rule:
 * - `normal`: inside the limits, nothing raised;
 * - `pending`: beyond a limit, not yet for minDurationMs;
 * - `low` / `high`: beyond that limit long enough (raise), or still beyond it (raised);
 * - `band`: raised, back inside the limits but not by the margin: stays raised;
 * - `clearing`: raised, inside by the margin, not yet for clearDurationMs;
 * - `clear`: inside by the margin for clearDurationMs: clear.
 */
export type RuleOutcome = 'normal' | 'pending' | 'low' | 'high' | 'band' | 'clearing' | 'clear'

/** Advances `run` with the sample (`value` at sample time `t`). O(1), allocates nothing. */
export function stepRule (rule: ThresholdRule, run: RuleRun, raised: boolean, value: number, t: number): RuleOutcome {
  const side = rule.low !== null && value < rule.low ? 'low' : rule.high !== null && value > rule.high ? 'high' : null
  if (!raised) {
    run.inSince = NaN
    if (side === null) { run.outSince = NaN; return 'normal' }
    if (Number.isNaN(run.outSince)) run.outSince = t
    return t - run.outSince >= rule.minDurationMs ? side : 'pending'
  }
  if (side !== null) { run.inSince = NaN; return side }
  const inside = (rule.low === null || value >= rule.low + rule.clearMargin) && (rule.high === null || value <= rule.high - rule.clearMargin)
  if (!inside) { run.inSince = NaN; return 'band' }
  if (Number.isNaN(run.inSince)) run.inSince = t
  if (t - run.inSince >= rule.clearDurationMs) { run.inSince = NaN; run.outSince = NaN; return 'clear' }
  return 'clearing'
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isFiniteNumber (v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v)
}
