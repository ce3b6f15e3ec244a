/**
 * NEWS2, the National Early Warning Score 2: Royal College of Physicians, "National Early Warning
 * Score (NEWS) 2: Standardising the assessment of acute-illness severity in the NHS", updated
 * report of a working party, London: RCP, December 2017. Chart 1 (the scoring system), Chart 2
 * (thresholds and triggers) and Chart 3 (clinical response) are cited below by number.
 *
 * Adults (≥ 16 years, not pregnant) only, as the RCP states: the engine does not apply it under
 * 16 (streams/alerts/paediatric.ts). SpO2 is scored on Scale 1 unless a clinician has set Scale 2
 * for the encounter: Scale 2 is for patients with a prescribed target range of 88–92 %
 * (hypercapnic respiratory failure), a decision a clinician makes and documents (RCP 2017,
 * section on SpO2 scales); the dashboard records who set it, and when.
 *
 * Pure: from the latest readings (each with its time) and "now" to the score. A parameter that was
 * never measured, or whose reading is older than its staleness bound, is *missing*: it is reported
 * as missing and never scored as normal. The total of an incomplete set is a lower bound (every
 * missing parameter can only add points), so a trigger that the partial total already meets holds
 * whatever the missing parameters turn out to be.
 */
import type { AlertPriority } from './types.js'

/** Chart 1 parameters, in the chart's order; names as on the chart. */
export const NEWS2_PARAMS = ['respiration_rate', 'spo2', 'air_or_oxygen', 'systolic_bp', 'pulse', 'consciousness', 'temperature'] as const
export type News2Param = typeof NEWS2_PARAMS[number]

/** A reading: the value and when it was measured (Unix ms). */
export interface Reading { value: number, atMs: number }

/**
 * Latest readings by vital-sign field name (decoders/vitals.ts). Pulse is the freshest of
 * `heart_rate` (ECG) and `pulse_rate` (oximeter or NIBP): after ECG lead-off a minutes-old heart
 * rate must not outvote the oximeter reading now (the ECG's heart rate wins a tie).
 */
export interface News2Readings {
  respiratory_rate?: Reading | undefined
  spo2?: Reading | undefined
  supplemental_o2?: Reading | undefined
  nibp_systolic?: Reading | undefined
  heart_rate?: Reading | undefined
  pulse_rate?: Reading | undefined
  consciousness_acvpu?: Reading | undefined
  temperature?: Reading | undefined
}

/** How old a reading may be before it counts as missing, ms, per parameter. */
export type News2Staleness = Readonly<Record<News2Param, number>>

/**
 * NIBP and temperature are spot measurements (an ambulance monitor cycles NIBP every 3–15 min);
 * the others are continuous or re-sent with every frame, so 5 min without one means it is gone.
 */
export const NEWS2_STALENESS_DEFAULTS: News2Staleness = Object.freeze({
  respiration_rate: 5 * 60_000,
  spo2: 5 * 60_000,
  air_or_oxygen: 5 * 60_000,
  systolic_bp: 15 * 60_000,
  pulse: 5 * 60_000,
  consciousness: 5 * 60_000,
  temperature: 15 * 60_000
})

export type News2Score0to3 = 0 | 1 | 2 | 3

export type News2Parameter =
  | { value: number, score: News2Score0to3, atMs: number }
  /** `absent`: never measured; `stale`: last reading older than the staleness bound. */
  | { missing: 'absent' | 'stale' }

/** Chart 2 clinical risk. */
export type News2Band = 'low' | 'low-medium' | 'medium' | 'high'

/** Chart 3 response thresholds, highest first. */
export type News2Trigger = 'emergency' | 'urgent' | 'single-parameter'

export interface News2Result {
  /** Aggregate score; null unless every parameter was scored. */
  total: number | null
  /** Sum of the scored parameters: equals `total` when complete, else a lower bound. */
  partialTotal: number
  parameters: Record<News2Param, News2Parameter>
  /** Missing parameters, in chart order. */
  missing: News2Param[]
  /** Some parameter scored 3 (Chart 2: "3 in single parameter"). */
  anySingle3: boolean
  /**
   * Chart 2 band. For an incomplete score: the band it is certain to reach (partial ≥ 7 → high,
   * ≥ 5 → medium, a single 3 → low-medium), or null while it could still be any band.
   */
  band: News2Band | null
  complete: boolean
  /** The highest Chart 3 trigger met (by the partial total when incomplete), or null. */
  trigger: News2Trigger | null
  /** Alert priority of `trigger`: emergency → high; urgent and single-parameter → medium. */
  priority: AlertPriority | null
}

/**
 * Readings are rounded to the chart's resolution before scoring, as a clinician writes down the
 * reading a monitor displays: whole numbers for rates, SpO2 and pressure, 0.1 °C for temperature
 * (half up). Every real value then falls into exactly one band: 20.4 breaths/min scores as 20,
 * 35.04 °C as 35.0, 35.05 °C as 35.1. The 1e-9 absorbs binary representation (35.05 * 10 is
 * 350.49999999999994 in IEEE 754).
 */
function whole (v: number): number { return Math.round(v) }
function tenths (v: number): number { return Math.round(v * 10 + 1e-9) / 10 }

// Chart 1, row by row. Each function takes the rounded reading.

/** Respiration rate, per minute: ≤8 → 3; 9–11 → 1; 12–20 → 0; 21–24 → 2; ≥25 → 3. */
export function scoreRespirationRate (rr: number): News2Score0to3 {
  const v = whole(rr)
  if (v <= 8) return 3
  if (v <= 11) return 1
  if (v <= 20) return 0
  if (v <= 24) return 2
  return 3
}

/** SpO2 Scale 1, %: ≤91 → 3; 92–93 → 2; 94–95 → 1; ≥96 → 0. */
export function scoreSpo2Scale1 (spo2: number): News2Score0to3 {
  const v = whole(spo2)
  if (v <= 91) return 3
  if (v <= 93) return 2
  if (v <= 95) return 1
  return 0
}

/**
 * SpO2 Scale 2 (target 88–92 %, set by a clinician), %: ≤83 → 3; 84–85 → 2; 86–87 → 1; 88–92 → 0,
 * and ≥93 on air → 0; on oxygen 93–94 → 1, 95–96 → 2, ≥97 → 3 (RCP 2017 chart 1).
 */
export function scoreSpo2Scale2 (spo2: number, onOxygen: boolean): News2Score0to3 {
  const v = whole(spo2)
  if (v <= 83) return 3
  if (v <= 85) return 2
  if (v <= 87) return 1
  if (v <= 92 || !onOxygen) return 0
  if (v <= 94) return 1
  if (v <= 96) return 2
  return 3
}

/** Air or oxygen: air → 0; oxygen → 2 (supplemental_o2 0 = air, 1 = on oxygen). */
export function scoreAirOrOxygen (flag: number): News2Score0to3 {
  return flag >= 1 ? 2 : 0
}

/** Systolic blood pressure, mmHg: ≤90 → 3; 91–100 → 2; 101–110 → 1; 111–219 → 0; ≥220 → 3. */
export function scoreSystolic (sbp: number): News2Score0to3 {
  const v = whole(sbp)
  if (v <= 90) return 3
  if (v <= 100) return 2
  if (v <= 110) return 1
  if (v <= 219) return 0
  return 3
}

/** Pulse, per minute: ≤40 → 3; 41–50 → 1; 51–90 → 0; 91–110 → 1; 111–130 → 2; ≥131 → 3. */
export function scorePulse (hr: number): News2Score0to3 {
  const v = whole(hr)
  if (v <= 40) return 3
  if (v <= 50) return 1
  if (v <= 90) return 0
  if (v <= 110) return 1
  if (v <= 130) return 2
  return 3
}

/**
 * Consciousness (ACVPU): Alert → 0; new Confusion, Voice, Pain, Unresponsive → 3. The stream
 * codes ACVPU as 0 = A, 1 = C, 2 = V, 3 = P, 4 = U (DESIGN.md).
 */
export function scoreConsciousness (acvpu: number): News2Score0to3 {
  return whole(acvpu) === 0 ? 0 : 3
}

/** Temperature, °C: ≤35.0 → 3; 35.1–36.0 → 1; 36.1–38.0 → 0; 38.1–39.0 → 1; ≥39.1 → 2. */
export function scoreTemperature (t: number): News2Score0to3 {
  const v = tenths(t)
  if (v <= 35.0) return 3
  if (v <= 36.0) return 1
  if (v <= 38.0) return 0
  if (v <= 39.0) return 1
  return 2
}

const SCORERS: Readonly<Record<News2Param, (v: number) => News2Score0to3>> = {
  respiration_rate: scoreRespirationRate,
  spo2: scoreSpo2Scale1,
  air_or_oxygen: scoreAirOrOxygen,
  systolic_bp: scoreSystolic,
  pulse: scorePulse,
  consciousness: scoreConsciousness,
  temperature: scoreTemperature
}

/** Chart 1 parameter → the vital-sign field(s) it is read from, in order of preference. */
const SOURCES: Readonly<Record<News2Param, ReadonlyArray<keyof News2Readings>>> = {
  respiration_rate: ['respiratory_rate'],
  spo2: ['spo2'],
  air_or_oxygen: ['supplemental_o2'],
  systolic_bp: ['nibp_systolic'],
  pulse: ['heart_rate', 'pulse_rate'],
  consciousness: ['consciousness_acvpu'],
  temperature: ['temperature']
}

/** Vital-sign field names NEWS2 reads: a frame without any of them cannot change the score. */
export const NEWS2_FIELDS: ReadonlySet<string> = new Set(Object.values(SOURCES).flat())

/** Chart 3: aggregate ≥ 7 is the emergency response threshold, ≥ 5 the urgent one. */
export const NEWS2_EMERGENCY = 7
export const NEWS2_URGENT = 5

/**
 * Scores the readings at `nowMs`. A reading is fresh while `nowMs - atMs <= staleness`.
 */
export function news2 (
  readings: News2Readings, nowMs: number, staleness: News2Staleness = NEWS2_STALENESS_DEFAULTS, spo2Scale: 1 | 2 = 1
): News2Result {
  const parameters = {} as Record<News2Param, News2Parameter>
  const missing: News2Param[] = []
  let partial = 0
  let anySingle3 = false
  for (const p of NEWS2_PARAMS) {
    let found: Reading | undefined
    let stale = false
    for (const field of SOURCES[p]) {
      const r = readings[field]
      if (r === undefined) continue
      // Freshest source wins (only pulse has two); the first listed wins a tie.
      if (nowMs - r.atMs <= staleness[p]) { if (found === undefined || r.atMs > found.atMs) found = r } else stale = true
    }
    if (found === undefined) {
      parameters[p] = { missing: stale ? 'stale' : 'absent' }
      missing.push(p)
      continue
    }
    const score = p === 'spo2' && spo2Scale === 2
      ? scoreSpo2Scale2(found.value, (readings.supplemental_o2?.value ?? 0) >= 1 && nowMs - readings.supplemental_o2!.atMs <= staleness.air_or_oxygen)
      : SCORERS[p](found.value)
    parameters[p] = { value: found.value, score, atMs: found.atMs }
    partial += score
    if (score === 3) anySingle3 = true
  }
  const complete = missing.length === 0
  // A partial total only grows as parameters arrive, so thresholds it meets already hold.
  const trigger: News2Trigger | null = partial >= NEWS2_EMERGENCY
    ? 'emergency'
    : partial >= NEWS2_URGENT ? 'urgent' : anySingle3 ? 'single-parameter' : null
  return {
    total: complete ? partial : null,
    partialTotal: partial,
    parameters,
    missing,
    anySingle3,
    band: bandOf(partial, anySingle3, complete),
    complete,
    trigger,
    priority: trigger === null ? null : trigger === 'emergency' ? 'high' : 'medium'
  }
}

/** Chart 2: 0–4 low; a single 3 low–medium; 5–6 medium; ≥ 7 high. */
function bandOf (partial: number, anySingle3: boolean, complete: boolean): News2Band | null {
  if (partial >= NEWS2_EMERGENCY) return 'high'
  if (partial >= NEWS2_URGENT) return 'medium'
  if (anySingle3) return 'low-medium'
  return complete ? 'low' : null
}

/** Short label for messages: "RR 3, SpO2 2, …". */
export const NEWS2_LABELS: Readonly<Record<News2Param, string>> = {
  respiration_rate: 'RR',
  spo2: 'SpO2',
  air_or_oxygen: 'O2',
  systolic_bp: 'SBP',
  pulse: 'pulse',
  consciousness: 'ACVPU',
  temperature: 'temp'
}
