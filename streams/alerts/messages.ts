/**
 * Alert messages: short, for a clinician on the phone to the crew, and without patient
 * identifiers (no age, sex or encounter in the text: the alert already carries the encounter).
 */
import type { Assessment } from '../../decoders/index.js'
import { NEWS2_EMERGENCY, NEWS2_LABELS, NEWS2_PARAMS, NEWS2_URGENT, type News2Result } from './news2.js'
import type { ThresholdRule } from './rules.js'

/**
 * Reperfusion windows from last known well. Thrombolysis: within 4.5 h (ESO 2021 guideline on
 * intravenous thrombolysis; NICE NG128; AHA/ASA 2019). Thrombectomy: up to 24 h with imaging
 * selection (DAWN and DEFUSE-3 trials, 2018; NICE NG128 2019, updated 2022; ESO-ESMINT 2019).
 */
export const THROMBOLYSIS_WINDOW_MS = 4.5 * 3_600_000
export const THROMBECTOMY_WINDOW_MS = 24 * 3_600_000

/** LAMS ≥ 4 predicts large-vessel occlusion (Nazliel et al., Stroke 2008; Noorian et al., Stroke 2018). */
export const LAMS_LVO_THRESHOLD = 4

const SIGN_LABELS: Readonly<Record<string, { label: string, unit: string }>> = {
  heart_rate: { label: 'Heart rate', unit: 'bpm' },
  pulse_rate: { label: 'Pulse rate', unit: 'bpm' },
  spo2: { label: 'SpO2', unit: '%' },
  nibp_systolic: { label: 'Systolic BP', unit: 'mmHg' },
  nibp_diastolic: { label: 'Diastolic BP', unit: 'mmHg' },
  nibp_mean: { label: 'Mean BP', unit: 'mmHg' },
  respiratory_rate: { label: 'Respiratory rate', unit: '/min' },
  etco2: { label: 'EtCO2', unit: 'mmHg' },
  temperature: { label: 'Temperature', unit: '°C' },
  consciousness_acvpu: { label: 'ACVPU level', unit: '' },
  supplemental_o2: { label: 'Supplemental O2', unit: '' }
}

function fmt (v: number, unit: string): string {
  const n = Number.isInteger(v) ? String(v) : v.toFixed(1)
  return unit === '' ? n : unit === '%' ? n + ' %' : `${n} ${unit}`
}

/** "3 s", "4 min", "2 h 5 min": a reading's age. */
export function age (ms: number): string {
  const sec = Math.max(0, Math.round(ms / 1000))
  if (sec < 60) return `${sec} s`
  return hm(sec * 1000)
}

/**
 * "SpO2 below 90 % (critical < 85 %) for ≥ 70 % of 15 s: 84 % (2 s ago)". The reading's age is
 * always shown: a value that stopped arriving stays on the alert, marked with how old it is.
 */
export function thresholdMessage (rule: ThresholdRule, side: 'low' | 'high', value: number, ageMs: number, critical: boolean): string {
  const s = SIGN_LABELS[rule.sign] ?? { label: rule.sign, unit: '' }
  const limit = critical ? (side === 'low' ? rule.critLow! : rule.critHigh!) : side === 'low' ? rule.low! : rule.high!
  const tier = critical ? 'critically ' : ''
  const dur = rule.minDurationMs >= 1000 ? ` for ≥ ${Math.round(rule.raiseFraction * 100)} % of ${Math.round(rule.minDurationMs / 1000)} s` : ''
  return `${s.label} ${tier}${side === 'low' ? 'below' : 'above'} ${fmt(limit, s.unit)}${dur}: ${fmt(value, s.unit)} (${age(ageMs)} ago)`
}

/** "SpO2 stream lost for 12 s while other data continue (probe off?): last 93 % 12 s ago". */
export function streamLossMessage (stream: string, silentMs: number, last: number | null): string {
  if (stream === 'ecg') return `ECG lost for ${age(silentMs)} while other data continue (lead off?)`
  const s = SIGN_LABELS[stream] ?? { label: stream, unit: '' }
  const lastText = last === null ? '' : `: last ${fmt(last, s.unit)} ${age(silentMs)} ago`
  return `${s.label} lost for ${age(silentMs)} while other data continue (sensor off?)${lastText}`
}

/**
 * "NEWS2 7 (emergency response threshold ≥ 7): RR 3, SpO2 2, …". An incomplete score is shown
 * as "≥ n" with the missing parameters named: it is a lower bound, never a normal score.
 */
export function news2Message (r: News2Result, atMs: number): string {
  const total = r.complete ? String(r.partialTotal) : `≥ ${r.partialTotal}`
  const why = r.trigger === 'emergency'
    ? `emergency response threshold ≥ ${NEWS2_EMERGENCY}`
    : r.trigger === 'urgent'
      ? `urgent response threshold ≥ ${NEWS2_URGENT}`
      : 'a single parameter scores 3: urgent ward-based response'
  // Only the parameters that score, each as reading and points ("RR 26/min +3"): a bare
  // "RR 0" would read as a respiratory rate of zero.
  const parts: string[] = []
  for (const p of NEWS2_PARAMS) {
    const x = r.parameters[p]
    // Each scoring reading with its age: a spot NIBP may be minutes old.
    if ('score' in x && x.score > 0) parts.push(`${NEWS2_LABELS[p]} ${news2Reading(p, x.value)} +${x.score} (${age(atMs - x.atMs)} ago)`)
  }
  const missing = r.missing.length > 0 ? `; missing: ${r.missing.map(p => NEWS2_LABELS[p]).join(', ')}` : ''
  return `NEWS2 ${total} (${why}): ${parts.length > 0 ? parts.join(', ') : 'no parameter scores'}${missing}`
}

const ACVPU_LETTERS = ['A', 'C', 'V', 'P', 'U']

function news2Reading (p: (typeof NEWS2_PARAMS)[number], v: number): string {
  switch (p) {
    case 'respiration_rate': return `${v}/min`
    case 'spo2': return `${v}%`
    case 'air_or_oxygen': return v >= 1 ? 'oxygen' : 'air'
    case 'systolic_bp': return `${v} mmHg`
    case 'pulse': return `${v}/min`
    case 'consciousness': return ACVPU_LETTERS[v] ?? String(v)
    case 'temperature': return `${v} °C`
  }
  return String(v)
}

export const STEMI_MESSAGE = 'STEMI suspected by the crew: cath-lab pre-notification'

function hm (ms: number): string {
  const min = Math.max(0, Math.floor(ms / 60_000))
  const h = Math.floor(min / 60)
  return h > 0 ? `${h} h ${min % 60} min` : `${min} min`
}

/** 0 = within both windows, 1 = past thrombolysis only, 2 = past both, -1 = LKW unknown. */
export function strokeWindow (lastKnownWellMs: number, atMs: number): number {
  if (lastKnownWellMs <= 0) return -1
  const since = atMs - lastKnownWellMs
  return since <= THROMBOLYSIS_WINDOW_MS ? 0 : since <= THROMBECTOMY_WINDOW_MS ? 1 : 2
}

/** What stroke pre-notification reads from the crew's assessment. */
export type StrokeFindings = Pick<Assessment, 'lamsScore' | 'fastPositive' | 'lastKnownWellMs'>

/** Whether the assessment calls for stroke pre-notification. */
export function strokeSuspected (a: StrokeFindings): boolean {
  return a.lamsScore >= LAMS_LVO_THRESHOLD || a.fastPositive
}

/** Minutes since last known well at `atMs`, or null when unknown. */
export function minutesSinceLkw (a: StrokeFindings, atMs: number): number | null {
  return a.lastKnownWellMs > 0 ? Math.max(0, Math.floor((atMs - a.lastKnownWellMs) / 60_000)) : null
}

/**
 * Blood pressure above which thrombolysis must not start until it is lowered: SBP > 185 or
 * DBP > 110 mmHg (AHA/ASA 2019 guidelines for the early management of acute ischaemic stroke,
 * section 3.3; ESO 2021 thrombolysis guideline).
 */
export const THROMBOLYSIS_SBP_MAX = 185
export const THROMBOLYSIS_DBP_MAX = 110

/** The latest blood pressure the stroke alert weighs, and when the ambulance arrives. */
export interface StrokeContext {
  sbp: number | null
  dbp: number | null
  /** Expected arrival at hospital (Unix ms), or null when unknown. */
  etaMs: number | null
}

/** Whether the blood pressure exceeds the thrombolysis limit. */
export function strokeBpHigh (c: StrokeContext): boolean {
  return (c.sbp !== null && c.sbp > THROMBOLYSIS_SBP_MAX) || (c.dbp !== null && c.dbp > THROMBOLYSIS_DBP_MAX)
}

/** "Stroke pre-notification: LAMS 5 (≥ 4: suspected large-vessel occlusion), FAST positive; last known well 1 h 35 min ago: …". */
export function strokeMessage (a: StrokeFindings, atMs: number, c: StrokeContext = { sbp: null, dbp: null, etaMs: null }): string {
  const findings: string[] = []
  findings.push(a.lamsScore >= LAMS_LVO_THRESHOLD
    ? `LAMS ${a.lamsScore} (≥ ${LAMS_LVO_THRESHOLD}: suspected large-vessel occlusion)`
    : `LAMS ${a.lamsScore}`)
  if (a.fastPositive) findings.push('FAST positive')
  let lkw: string
  if (a.lastKnownWellMs <= 0) {
    lkw = 'last known well not recorded: reperfusion windows cannot be assessed'
  } else {
    const since = atMs - a.lastKnownWellMs
    lkw = `last known well ${hm(since)} ago: `
    if (since <= THROMBOLYSIS_WINDOW_MS) {
      lkw += `within the 4.5 h thrombolysis window (${hm(THROMBOLYSIS_WINDOW_MS - since)} left) and the 24 h thrombectomy window`
    } else if (since <= THROMBECTOMY_WINDOW_MS) {
      lkw += `beyond the 4.5 h thrombolysis window; within the 24 h thrombectomy window (${hm(THROMBECTOMY_WINDOW_MS - since)} left)`
    } else {
      lkw += 'beyond the 4.5 h thrombolysis and 24 h thrombectomy windows'
    }
    if (c.etaMs !== null && c.etaMs > atMs) {
      const at = c.etaMs - a.lastKnownWellMs
      const left = (w: number): string => at <= w ? `${hm(w - at)} left` : 'closed'
      lkw += `; at arrival in ${hm(c.etaMs - atMs)}: thrombolysis ${left(THROMBOLYSIS_WINDOW_MS)}, thrombectomy ${left(THROMBECTOMY_WINDOW_MS)}`
    }
  }
  let bp = ''
  if (strokeBpHigh(c)) {
    bp = `; BP ${c.sbp ?? '?'}/${c.dbp ?? '?'} mmHg above the thrombolysis limit ${THROMBOLYSIS_SBP_MAX}/${THROMBOLYSIS_DBP_MAX}: lower before thrombolysis`
  }
  return `Stroke pre-notification: ${findings.join(', ')}; ${lkw}${bp}`
}

export function signalLossMessage (silentMs: number, limitMs: number): string {
  return `No telemetry for ${Math.round(silentMs / 1000)} s (limit ${Math.round(limitMs / 1000)} s) from a unit with an active encounter`
}

/** "Degraded link: 4 gaps in the last 2 min, longest 11 s; clears after 60 s without a gap". */
export function degradedLinkMessage (gaps: number, longestMs: number, windowMs: number, steadyMs: number): string {
  return `Degraded link: ${gaps} gap${gaps === 1 ? '' : 's'} in the last ${age(windowMs)}, longest ${age(longestMs)}; clears after ${age(steadyMs)} without a gap`
}

export const OFFLINE_MESSAGE = 'Unit offline: its connection was lost (will message)'

export function deviceAlarmMessage (code: string, text: string): string {
  return text === '' ? `Device alarm ${code}` : `Device alarm ${code}: ${text}`
}
