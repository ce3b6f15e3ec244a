/**
 * One simulated patient's numerics, paramedic assessment and monitor alarms.
 *
 * Each vital sign is an Ornstein-Uhlenbeck process (a random walk pulled back towards a mean),
 * which is how real trends look: wandering, not jumping, not flat. The means come from a
 * patient profile; for `deteriorating` they slide over `trendMs` from a compensated picture
 * (tachycardic, slightly hypoxic) to decompensation (SpO2 mid-80s, RR > 30, hypotension), so
 * NEWS2 climbs and the monitor alarms, as in sepsis or respiratory failure on the way in.
 *
 * Cadences follow a transport monitor: HR, SpO2, RR, EtCO2 every second; temperature once a
 * minute; NIBP only when the cuff cycles (at start, then every 5 minutes).
 */
import { VITAL_SIGNS } from '../decoders/index.js'
import type { StemiKind } from './ecg-model.js'
import type { Rng } from './rng.js'

export type PatientProfile = 'healthy' | 'stemi' | 'stroke' | 'deteriorating'
export const PATIENT_PROFILES: readonly PatientProfile[] = ['healthy', 'stemi', 'stroke', 'deteriorating']

/** VitalSign enum numbers, looked up in the decoders' table so there is one copy of them. */
function signOf (field: string): number {
  const info = VITAL_SIGNS.find(s => s.field === field)
  if (info === undefined) throw new Error(`decoders/vitals.ts has no vital sign ${field}`)
  return info.sign
}
export const SIGN = Object.freeze({
  heartRate: signOf('heart_rate'),
  pulseRate: signOf('pulse_rate'),
  spo2: signOf('spo2'),
  nibpSystolic: signOf('nibp_systolic'),
  nibpDiastolic: signOf('nibp_diastolic'),
  nibpMean: signOf('nibp_mean'),
  respiratoryRate: signOf('respiratory_rate'),
  etco2: signOf('etco2'),
  temperature: signOf('temperature'),
  acvpu: signOf('consciousness_acvpu'),
  supplementalO2: signOf('supplemental_o2')
})

export interface NumericReading { sign: number, value: number }
export interface AlarmEvent { code: string, priority: 1 | 2 | 3, text: string }
export interface AssessmentInfo {
  stemiSuspected: boolean
  /** Los Angeles Motor Scale, 0-5 (≥ 4 suggests a large-vessel occlusion). */
  lamsScore: number
  fastPositive: boolean
  /** Unix ms; 0 = not applicable or unknown. */
  lastKnownWellMs: number
  ageYears: number
  /** FHIR administrative gender. */
  sex: 'male' | 'female'
}

/** The continuous signs, in this order in every table below. */
const HR = 0
const SPO2 = 1
const SYS = 2
const DIA = 3
const RR = 4
const ETCO2 = 5
const TEMP = 6
type Means = readonly [hr: number, spo2: number, sys: number, dia: number, rr: number, etco2: number, temp: number]

/** Random-walk size (per √minute) and pull-back time constant (s) of each sign. */
const SIGMA_PER_SQRT_MIN: Means = [3, 0.8, 4, 3, 1.5, 1.5, 0.05]
const TAU_S: Means = [60, 60, 120, 120, 60, 60, 600]
/** Physiological floor and ceiling the walk stays within. */
const FLOOR: Means = [30, 60, 60, 30, 6, 10, 34]
const CEIL: Means = [220, 100, 240, 140, 50, 80, 41.5]

const START_MEANS: Readonly<Record<PatientProfile, Means>> = {
  healthy: [76, 98, 124, 78, 14, 38, 36.8],
  stemi: [96, 95, 148, 90, 20, 34, 36.7], // anterior; inferior is adjusted in the constructor
  stroke: [84, 96, 178, 98, 16, 37, 36.8], // hypertensive response is typical in acute stroke
  deteriorating: [104, 94, 112, 68, 22, 32, 38.4]
}
/** Where `deteriorating` ends up after trendMs: sepsis with respiratory failure. */
const DETERIORATED: Means = [138, 84, 78, 45, 34, 26, 39.2]
const INFERIOR_STEMI: Means = [62, 95, 108, 66, 18, 35, 36.6] // RCA: vagal bradycardia, RV hypotension

const NIBP_INTERVAL_MS = 5 * 60_000
const TEMPERATURE_INTERVAL_MS = 60_000
/** Paramedics start oxygen after SpO2 has stayed below target this long (BTS target 94-98%). */
const O2_TRIGGER_SPO2 = 92
const O2_TRIGGER_MS = 20_000
const O2_SPO2_GAIN = 3

/** Monitor alarm limits with hysteresis: raised on crossing `limit`, re-armed past `rearm`. */
interface AlarmRule { code: string, of: number, above: boolean, limit: number, rearm: number, priority: (v: number) => 1 | 2 | 3, text: (v: number) => string }
const ALARM_RULES: readonly AlarmRule[] = [
  { code: 'SPO2_LOW', of: SPO2, above: false, limit: 90, rearm: 92, priority: v => v < 85 ? 3 : 2, text: v => `SpO2 ${v} % below 90 %` },
  { code: 'HR_HIGH', of: HR, above: true, limit: 130, rearm: 125, priority: () => 2, text: v => `HR ${v} bpm above 130 bpm` },
  { code: 'RESP_RATE_HIGH', of: RR, above: true, limit: 30, rearm: 28, priority: () => 2, text: v => `RR ${v} /min above 30 /min` },
  { code: 'NIBP_SYS_LOW', of: SYS, above: false, limit: 90, rearm: 95, priority: () => 3, text: v => `NIBP systolic ${v} mmHg below 90 mmHg` }
]
/** Technical alarm (probe falls off a restless patient): mean time between, deteriorating only. */
const PROBE_OFF_MEAN_MS = 8 * 60_000

export interface VitalsOptions {
  profile: PatientProfile
  /** Device clock at the start of the simulation, Unix ms (for last-known-well). */
  startMs: number
  rng: Rng
  /** ECG injury pattern; only meaningful for the stemi profile. */
  stemi?: StemiKind
  /** How long `deteriorating` takes to decompensate, ms. */
  trendMs?: number
}

export class VitalsSim {
  readonly profile: PatientProfile
  readonly stemi: StemiKind
  readonly assessment: Readonly<AssessmentInfo>
  private readonly rng: Rng
  private readonly trendMs: number
  private readonly start: Means
  private readonly values: number[]
  private acvpu: number
  private o2 = 0
  private lowSpo2SinceMs = -1
  private nextNibpMs = 0
  private nextTemperatureMs = 0
  private readonly alarmRaised = new Set<string>()

  constructor (options: VitalsOptions) {
    const { profile, rng } = options
    this.profile = profile
    this.rng = rng
    this.trendMs = options.trendMs ?? 12 * 60_000
    this.stemi = profile === 'stemi' ? (options.stemi ?? rng.pick(['inferior', 'anterior'] as const)) : 'none'
    this.start = this.stemi === 'inferior' ? INFERIOR_STEMI : START_MEANS[profile]
    // Each patient differs a little from the profile's textbook means.
    this.values = this.start.map((m, i) => clamp(m + 0.5 * SIGMA_PER_SQRT_MIN[i]! * rng.gaussian(), FLOOR[i]!, CEIL[i]!))
    this.acvpu = profile === 'stroke' ? 1 : 0
    this.assessment = Object.freeze(makeAssessment(profile, options.startMs, rng))
  }

  /** The patient's current underlying heart rate, bpm: what the ECG should beat at. */
  get heartRateBpm (): number { return this.values[HR]! }
  get respiratoryRate (): number { return this.values[RR]! }

  /**
   * Advances the patient by `dtMs` and returns this second's readings and any new alarms.
   * @param elapsedMs device time since the start of the simulation
   * @param ecgHeartRate the rate the ECG shows, so HR agrees with the waveform; null without ECG
   */
  tick (elapsedMs: number, dtMs: number, ecgHeartRate: number | null): { numerics: NumericReading[], alarms: AlarmEvent[] } {
    this.walk(elapsedMs, dtMs)
    const v = this.values
    const hr = Math.round(ecgHeartRate ?? v[HR]!)
    const spo2 = Math.min(100, Math.round(v[SPO2]!))
    const rr = Math.round(v[RR]!)
    const numerics: NumericReading[] = [
      { sign: SIGN.heartRate, value: hr },
      { sign: SIGN.pulseRate, value: Math.max(0, Math.round(hr + 0.7 * this.rng.gaussian())) },
      { sign: SIGN.spo2, value: spo2 },
      { sign: SIGN.respiratoryRate, value: rr },
      { sign: SIGN.etco2, value: Math.round(v[ETCO2]!) },
      { sign: SIGN.acvpu, value: this.acvpu },
      { sign: SIGN.supplementalO2, value: this.o2 }
    ]
    const alarms: AlarmEvent[] = []
    this.checkAlarm(HR, hr, alarms)
    this.checkAlarm(SPO2, spo2, alarms)
    this.checkAlarm(RR, rr, alarms)
    if (elapsedMs >= this.nextNibpMs) {
      this.nextNibpMs += NIBP_INTERVAL_MS
      const sys = Math.round(v[SYS]! + 2 * this.rng.gaussian())
      const dia = Math.round(Math.min(v[DIA]! + 2 * this.rng.gaussian(), sys - 15))
      numerics.push(
        { sign: SIGN.nibpSystolic, value: sys },
        { sign: SIGN.nibpDiastolic, value: dia },
        { sign: SIGN.nibpMean, value: Math.round(dia + (sys - dia) / 3) }
      )
      this.checkAlarm(SYS, sys, alarms)
    }
    if (elapsedMs >= this.nextTemperatureMs) {
      this.nextTemperatureMs += TEMPERATURE_INTERVAL_MS
      numerics.push({ sign: SIGN.temperature, value: Math.round(v[TEMP]! * 10) / 10 })
    }
    if (this.profile === 'deteriorating' && this.rng.next() < dtMs / PROBE_OFF_MEAN_MS) {
      alarms.push({ code: 'SPO2_PROBE_OFF', priority: 1, text: 'SpO2 probe off the finger' })
    }
    return { numerics, alarms }
  }

  private walk (elapsedMs: number, dtMs: number): void {
    const dtS = dtMs / 1000
    const progress = this.profile === 'deteriorating' ? smoothstep(elapsedMs / this.trendMs) : 0
    for (let i = 0; i < this.values.length; i++) {
      let mean = this.start[i]! + progress * (DETERIORATED[i]! - this.start[i]!)
      if (i === SPO2 && this.o2 === 1) mean += O2_SPO2_GAIN
      const pull = 1 - Math.exp(-dtS / TAU_S[i]!)
      const x = this.values[i]! + pull * (mean - this.values[i]!) + SIGMA_PER_SQRT_MIN[i]! * Math.sqrt(dtS / 60) * this.rng.gaussian()
      this.values[i] = clamp(x, FLOOR[i]!, CEIL[i]!)
    }
    if (this.profile === 'deteriorating') this.acvpu = progress > 0.95 ? 2 : progress > 0.6 ? 1 : 0
    if (this.o2 === 0) {
      if (this.values[SPO2]! >= O2_TRIGGER_SPO2) this.lowSpo2SinceMs = -1
      else if (this.lowSpo2SinceMs < 0) this.lowSpo2SinceMs = elapsedMs
      else if (elapsedMs - this.lowSpo2SinceMs >= O2_TRIGGER_MS) this.o2 = 1
    }
  }

  private checkAlarm (index: number, value: number, out: AlarmEvent[]): void {
    for (const rule of ALARM_RULES) {
      if (rule.of !== index) continue
      const crossed = rule.above ? value > rule.limit : value < rule.limit
      const cleared = rule.above ? value < rule.rearm : value > rule.rearm
      if (crossed && !this.alarmRaised.has(rule.code)) {
        this.alarmRaised.add(rule.code)
        out.push({ code: rule.code, priority: rule.priority(value), text: rule.text(value) })
      } else if (cleared) {
        this.alarmRaised.delete(rule.code)
      }
    }
  }
}

function makeAssessment (profile: PatientProfile, startMs: number, rng: Rng): AssessmentInfo {
  const sex = (maleFraction: number): 'male' | 'female' => rng.next() < maleFraction ? 'male' : 'female'
  switch (profile) {
    case 'healthy':
      return { stemiSuspected: false, lamsScore: 0, fastPositive: false, lastKnownWellMs: 0, ageYears: rng.int(18, 60), sex: sex(0.5) }
    case 'stemi':
      return { stemiSuspected: true, lamsScore: 0, fastPositive: false, lastKnownWellMs: 0, ageYears: rng.int(45, 82), sex: sex(0.7) }
    case 'stroke': {
      // Onset witnessed 30-150 min ago, rounded to the minute as a paramedic would note it.
      const lkw = Math.round((startMs - rng.range(30, 150) * 60_000) / 60_000) * 60_000
      return { stemiSuspected: false, lamsScore: rng.int(2, 5), fastPositive: true, lastKnownWellMs: lkw, ageYears: rng.int(55, 92), sex: sex(0.5) }
    }
    case 'deteriorating':
      return { stemiSuspected: false, lamsScore: 0, fastPositive: false, lastKnownWellMs: 0, ageYears: rng.int(68, 94), sex: sex(0.5) }
  }
}

function smoothstep (x: number): number {
  const t = Math.max(0, Math.min(1, x))
  return t * t * (3 - 2 * t)
}

function clamp (x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x
}
