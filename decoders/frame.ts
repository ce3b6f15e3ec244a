/**
 * Decode once, validate whole. A frame either comes out fully valid and normalised, or a
 * FrameError says exactly what is wrong; nothing half-valid is ever stored.
 */
import Long from 'long'
import { FrameError } from './errors.js'
import { DECODER_DEFAULTS, LIMITS, type DecoderOptions } from './options.js'
import { decodeWire, type WireAlarm, type WireFrame, type WireNumeric, type WirePosition, type WireWaveform } from './schema.js'
import { LEAD_FIELDS, VITAL_SIGN_BY_NUMBER } from './vitals.js'
import { validateInterpretation, type EcgInterpretation } from './interpretation.js'

/** Which assessment fields the frame carried (contract v1.1: proto3 `optional`). */
export interface AssessmentPresence {
  stemiSuspected: boolean
  lamsScore: boolean
  fastPositive: boolean
  lastKnownWellMs: boolean
  ageYears: boolean
  sex: boolean
}

/**
 * The crew's assessment. Fields the frame left out hold their proto3 defaults (false, 0, '') for
 * storage as before, and `present` says which ones were sent: an omitted field means "unchanged"
 * to the alert engine, never false.
 */
export interface Assessment {
  present: AssessmentPresence
  stemiSuspected: boolean
  lamsScore: number
  fastPositive: boolean
  /** Unix ms, 0 = unknown */
  lastKnownWellMs: number
  ageYears: number
  sex: string
}

/** Longest seq decimal a double holds exactly (2^53 has 16 digits). */
export const SEQ_EXACT_DIGITS = 15

/**
 * A frame's seq decimal as a number, or NaN when it has more than SEQ_EXACT_DIGITS digits (a
 * double would round it). For comparing seqs on the hot path without BigInt.
 */
export function seqNumber (seq: string): number {
  return seq.length > SEQ_EXACT_DIGITS ? Number.NaN : Number(seq)
}

/** A validated frame. Times are Unix ms; seq is the exact decimal of the uint64. */
export interface Frame {
  unitId: string
  bootId: string
  seq: string
  capturedAtMs: number
  encounterId: string
  /** Contract v1.1: the encounter ends with this frame (an empty encounter id never ends one). */
  encounterEnded: boolean
  numerics: WireNumeric[]
  waveforms: WireWaveform[]
  position: WirePosition | null
  alarms: WireAlarm[]
  assessment: Assessment | null
  /** (v1.1) The device's 12-lead interpretation, when the frame carries one. */
  interpretation?: EcgInterpretation | null
  /** Size of the encoded frame. */
  byteLength: number
}

export class FrameDecoder {
  readonly options: Readonly<DecoderOptions>

  constructor (options: Partial<DecoderOptions> = {}) {
    this.options = Object.freeze({ ...DECODER_DEFAULTS, ...options })
  }

  /**
   * Decodes and validates one frame received from `unit` (the authenticated identity).
   * @param nowMs gateway clock, injectable for tests
   */
  decode (bytes: Uint8Array, unit: string, nowMs: number = Date.now()): Frame {
    if (bytes.length === 0) throw new FrameError('AMB_ERR_FRAME_EMPTY', 'empty frame')
    if (bytes.length > this.options.maxFrameBytes) {
      throw new FrameError('AMB_ERR_FRAME_TOO_LARGE', `frame of ${bytes.length} bytes exceeds maxFrameBytes ${this.options.maxFrameBytes}`)
    }
    let wire: WireFrame
    try {
      wire = decodeWire(bytes)
    } catch (err) {
      throw new FrameError('AMB_ERR_FRAME_MALFORMED', `not a TelemetryFrame: ${(err as Error).message}`, { cause: err })
    }
    return this.validate(wire, unit, nowMs, bytes.length)
  }

  private validate (w: WireFrame, unit: string, nowMs: number, byteLength: number): Frame {
    if (w.unitId === '') throw new FrameError('AMB_ERR_FIELD_MISSING', 'unit_id is empty')
    if (w.unitId !== unit) {
      throw new FrameError('AMB_ERR_UNIT_MISMATCH', `unit_id ${JSON.stringify(w.unitId.slice(0, 64))} does not match the authenticated unit ${unit}`)
    }
    if (w.bootId === '') throw new FrameError('AMB_ERR_FIELD_MISSING', 'boot_id is empty')
    if (!LIMITS.idPattern.test(w.bootId)) throw new FrameError('AMB_ERR_FIELD_INVALID', 'boot_id must match [A-Za-z0-9][A-Za-z0-9_.:-]{0,63}')
    if (w.encounterId !== '' && !LIMITS.idPattern.test(w.encounterId)) {
      throw new FrameError('AMB_ERR_FIELD_INVALID', 'encounter_id must match [A-Za-z0-9][A-Za-z0-9_.:-]{0,63}')
    }
    const seq = Long.isLong(w.seq) ? longDecimal(w.seq) : String(w.seq)
    const captured = toSafeNumber(w.capturedAtMs)
    if (captured === 0) throw new FrameError('AMB_ERR_FIELD_MISSING', 'captured_at_ms is missing')
    if (captured === null || captured < 0) throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', 'captured_at_ms is not a plausible Unix time in ms')
    if (captured > nowMs + this.options.maxFutureSkewMs) {
      throw new FrameError('AMB_ERR_TIME_IN_FUTURE', `captured_at_ms is ${captured - nowMs} ms ahead of the gateway clock (max ${this.options.maxFutureSkewMs})`)
    }
    if (captured < nowMs - this.options.maxPastAgeMs) {
      throw new FrameError('AMB_ERR_TIME_TOO_OLD', `captured_at_ms is ${nowMs - captured} ms old (max ${this.options.maxPastAgeMs})`)
    }

    for (let i = 0; i < w.numerics.length; i++) checkNumeric(w.numerics[i]!, i)
    this.checkWaveforms(w.waveforms)
    if (w.position !== null) checkPosition(w.position)
    for (let i = 0; i < w.alarms.length; i++) checkAlarm(w.alarms[i]!, i)

    let assessment: Assessment | null = null
    if (w.assessment !== null) {
      const a = w.assessment
      const lkw = a.lastKnownWellMs === null ? 0 : toSafeNumber(a.lastKnownWellMs)
      if (lkw === null || lkw < 0 || lkw > nowMs + this.options.maxFutureSkewMs) {
        throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', 'assessment.last_known_well_ms is not a plausible past time')
      }
      const lams = a.lamsScore ?? 0
      const age = a.ageYears ?? 0
      const sex = a.sex ?? ''
      if (lams < 0 || lams > LIMITS.maxLams) throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', `assessment.lams_score ${lams} outside 0..${LIMITS.maxLams}`)
      if (age < 0 || age > LIMITS.maxAgeYears) throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', `assessment.age_years ${age} outside 0..${LIMITS.maxAgeYears}`)
      if (!/^[A-Za-z _-]{0,16}$/.test(sex)) throw new FrameError('AMB_ERR_FIELD_INVALID', 'assessment.sex must be up to 16 letters')
      // protobufjs decodes an absent proto3 `optional` field as null.
      assessment = {
        present: {
          stemiSuspected: a.stemiSuspected !== null,
          lamsScore: a.lamsScore !== null,
          fastPositive: a.fastPositive !== null,
          lastKnownWellMs: a.lastKnownWellMs !== null,
          ageYears: a.ageYears !== null,
          sex: a.sex !== null
        },
        stemiSuspected: a.stemiSuspected === true,
        lamsScore: lams,
        fastPositive: a.fastPositive === true,
        lastKnownWellMs: lkw,
        ageYears: age,
        sex
      }
    }

    return {
      unitId: w.unitId,
      bootId: w.bootId,
      seq,
      capturedAtMs: captured,
      encounterId: w.encounterId,
      encounterEnded: w.encounterEnded,
      numerics: w.numerics,
      waveforms: w.waveforms,
      position: w.position,
      alarms: w.alarms,
      assessment,
      interpretation: w.interpretation == null ? null : validateInterpretation(w.interpretation),
      byteLength
    }
  }

  private checkWaveforms (waves: WireWaveform[]): void {
    if (waves.length === 0) return
    let seen = 0
    let spanUs = -1
    for (const wf of waves) {
      const field = LEAD_FIELDS[wf.lead]
      if (wf.lead === 0 || field === undefined) throw new FrameError('AMB_ERR_FIELD_INVALID', `waveform lead ${wf.lead} is not a known Lead`)
      const bit = 1 << wf.lead
      if ((seen & bit) !== 0) throw new FrameError('AMB_ERR_WAVEFORM_INCONSISTENT', `lead ${field} appears twice`)
      seen |= bit
      const rate = wf.sampleRateHz
      if (rate < LIMITS.minSampleRateHz || rate > LIMITS.maxSampleRateHz) {
        throw new FrameError('AMB_ERR_WAVEFORM_INCONSISTENT', `lead ${field}: sample_rate_hz ${rate} outside ${LIMITS.minSampleRateHz}..${LIMITS.maxSampleRateHz}`)
      }
      const lsb = wf.microvoltsPerLsb
      if (!(lsb > 0) || lsb > LIMITS.maxMicrovoltsPerLsb) {
        throw new FrameError('AMB_ERR_WAVEFORM_INCONSISTENT', `lead ${field}: microvolts_per_lsb ${lsb} must be in (0, ${LIMITS.maxMicrovoltsPerLsb}]`)
      }
      checkOffset(wf.offsetMs, `waveform ${field}`)
      const n = wf.samples.length
      if (n === 0) throw new FrameError('AMB_ERR_WAVEFORM_INCONSISTENT', `lead ${field} has no samples`)
      const span = Math.round(n * 1e6 / rate)
      if (span > this.options.maxWaveformSpanMs * 1000) {
        throw new FrameError('AMB_ERR_WAVEFORM_INCONSISTENT', `lead ${field}: ${n} samples at ${rate} Hz span more than ${this.options.maxWaveformSpanMs} ms`)
      }
      // All leads of a frame cover the same stretch of time (within one sample period).
      if (spanUs === -1) spanUs = span
      else if (Math.abs(span - spanUs) >= 1e6 / rate) {
        throw new FrameError('AMB_ERR_WAVEFORM_INCONSISTENT', `lead ${field} spans ${span / 1000} ms, other leads ${spanUs / 1000} ms`)
      }
      const maxLsb = LIMITS.maxAbsMicrovolts / lsb
      const s = wf.samples
      for (let i = 0; i < n; i++) {
        const v = s[i]!
        if (v > maxLsb || v < -maxLsb) {
          throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', `lead ${field} sample ${i} is ${v * lsb} µV, beyond ±${LIMITS.maxAbsMicrovolts} µV`)
        }
      }
    }
  }
}

/** 2^32, and the high word's bound for a value within ±(2^53 − 1). */
const TWO_32 = 4294967296
const SAFE_HIGH = 0x200000

/** The exact decimal of a Long: a double for the usual values (Long's toString divides, allocating). */
function longDecimal (v: Long): string {
  const hi = v.unsigned ? v.high >>> 0 : v.high
  if (hi < SAFE_HIGH && hi > -SAFE_HIGH) return String(hi * TWO_32 + (v.low >>> 0))
  return v.toString()
}

function toSafeNumber (v: Long | number): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? v : null
  // Within ±(2^53 − 2^32): exact as a double, no Long arithmetic.
  const hi = v.unsigned ? v.high >>> 0 : v.high
  if (hi < SAFE_HIGH && hi > -SAFE_HIGH) return hi * TWO_32 + (v.low >>> 0)
  if (v.greaterThan(Number.MAX_SAFE_INTEGER) || v.lessThan(Number.MIN_SAFE_INTEGER)) return null
  return v.toNumber()
}

function checkOffset (offsetMs: number, what: string): void {
  if (offsetMs < -LIMITS.maxOffsetMs || offsetMs > LIMITS.maxOffsetMs) {
    throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', `${what}: offset_ms ${offsetMs} outside ±${LIMITS.maxOffsetMs}`)
  }
}

function checkNumeric (n: WireNumeric, i: number): void {
  const info = VITAL_SIGN_BY_NUMBER[n.sign]
  if (info === undefined) throw new FrameError('AMB_ERR_UNKNOWN_SIGN', `numerics[${i}]: sign ${n.sign} is not a known VitalSign`)
  const v = n.value
  // NaN fails both comparisons, so it is caught here too.
  if (!(v >= info.min && v <= info.max)) {
    throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', `${info.field} ${v} ${info.unit} outside plausible ${info.min}..${info.max}`)
  }
  if (info.integer && !Number.isInteger(v)) {
    throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', `${info.field} must be a whole number, got ${v}`)
  }
  checkOffset(n.offsetMs, info.field)
}

function checkPosition (p: WirePosition): void {
  if (!(p.latitude >= -90 && p.latitude <= 90) || !(p.longitude >= -180 && p.longitude <= 180)) {
    throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', `position ${p.latitude},${p.longitude} is not on Earth`)
  }
  if (!(p.speedMps >= 0 && p.speedMps <= LIMITS.maxSpeedMps)) {
    throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', `position.speed_mps ${p.speedMps} outside 0..${LIMITS.maxSpeedMps}`)
  }
  if (!(p.headingDeg >= 0 && p.headingDeg <= 360)) {
    throw new FrameError('AMB_ERR_VALUE_OUT_OF_RANGE', `position.heading_deg ${p.headingDeg} outside 0..360`)
  }
  checkOffset(p.offsetMs, 'position')
}

function checkAlarm (a: WireAlarm, i: number): void {
  if (a.code === '' || a.code.length > LIMITS.maxAlarmCodeLength) {
    throw new FrameError('AMB_ERR_FIELD_INVALID', `alarms[${i}].code must have 1..${LIMITS.maxAlarmCodeLength} characters`)
  }
  if (a.priority < 0 || a.priority > 3) throw new FrameError('AMB_ERR_FIELD_INVALID', `alarms[${i}].priority ${a.priority} is not an AlarmPriority`)
  if (a.text.length > LIMITS.maxAlarmTextLength) throw new FrameError('AMB_ERR_FIELD_INVALID', `alarms[${i}].text longer than ${LIMITS.maxAlarmTextLength}`)
  checkOffset(a.offsetMs, `alarms[${i}]`)
}
