/**
 * Streaming synthetic 12-lead ECG. The dipole model (ecg-model.ts) renders one beat template
 * per measured lead whenever the heart rate moves; each beat is then overlap-added into a small
 * ring buffer at its R time, so per sample the cost is one ring read, the respiratory baseline
 * wander and a table lookup for noise, with no allocation. Overlap-adding (rather than pasting)
 * keeps fast rhythms right: at 150 bpm the next P wave rides on the previous T wave.
 *
 * Like a real electrocardiograph, only I, II and V1-V6 are "measured"; III, aVR, aVL and aVF are
 * computed from I and II, so Einthoven's and Goldberger's relations hold to the LSB.
 */
import { Rng } from './rng.js'
import { MAX_RR_S, MEASURED_LEADS, MIN_RR_S, maxTemplateSamples, renderBeat, type BeatTemplate, type StemiKind } from './ecg-model.js'

export { STEMI_KINDS, type StemiKind } from './ecg-model.js'

/** Leads in Lead enum order (LEAD_I = 1 … LEAD_V6 = 12); index = enum value − 1. */
export const ECG_LEAD_NAMES: readonly string[] = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6']
export const ECG_LEADS = ECG_LEAD_NAMES.length

export interface EcgOptions {
  /** Samples per second per lead. */
  sampleRateHz: number
  /** Initial mean heart rate, beats per minute. */
  heartRateBpm: number
  /** Scale of the output integers: microvolts = sample × microvoltsPerLsb. */
  microvoltsPerLsb: number
  /** ST elevation of an acute infarct, or none. */
  stemi: StemiKind
  /** Beat-to-beat RR variability, as a fraction of RR (standard deviation). */
  hrvFraction: number
  /** Broadband noise, µV RMS. */
  noiseMicrovolts: number
  /** Respiratory baseline wander amplitude in lead II, µV. */
  wanderMicrovolts: number
  /** Breaths per minute: frequency of baseline wander and sinus arrhythmia. */
  respiratoryRateBpm: number
  /** Seed for reproducible output. */
  seed: number
  /**
   * 12 renders every lead; 1 renders lead II only (monitoring mode: the other eleven arrays
   * that next() returns stay zero), at an eighth of the cost.
   */
  leadSet: 12 | 1
}

export const ECG_DEFAULTS: Readonly<EcgOptions> = Object.freeze({
  sampleRateHz: 500,
  heartRateBpm: 75,
  microvoltsPerLsb: 1,
  stemi: 'none',
  hrvFraction: 0.02,
  noiseMicrovolts: 6,
  wanderMicrovolts: 40,
  respiratoryRateBpm: 15,
  seed: 1,
  leadSet: 12
})

/** Largest |µV| the decoder accepts (LIMITS.maxAbsMicrovolts); we clip rather than be rejected. */
const MAX_ABS_UV = 32_000
/** Offset that makes every clamped sample positive before truncation (|sample| < 2^30). */
const ROUND_BIAS = 2 ** 30
/** Samples rendered per inner pass; bounds the ring size and the wander scratch buffer. */
const CHUNK = 256
/** Output row of each measured lead (I, II, V1-V6). */
const MEASURED_ROW = [0, 1, 6, 7, 8, 9, 10, 11] as const
/** Index of lead II among the measured leads. */
const MEASURED_II = 1
/** Breathing shifts the heart's axis; limb lead I moves least, II and mid-precordial most. */
const WANDER_GAIN = [0.5, 1.0, 0.6, 0.7, 0.8, 0.8, 0.7, 0.6] as const
/** How many recent RR intervals the reported heart rate averages, like a monitor's 4-beat HR. */
const HR_AVERAGE_BEATS = 4

/** One shared table of unit-variance Gaussian noise: no random draw per sample. */
const NOISE_BITS = 13
const NOISE_MASK = (1 << NOISE_BITS) - 1
const NOISE = (() => {
  const rng = new Rng(0x5eed)
  const t = new Float32Array(1 << NOISE_BITS)
  for (let i = 0; i < t.length; i++) t[i] = rng.gaussian()
  return t
})()

function nextPow2 (n: number): number {
  return 2 ** Math.ceil(Math.log2(n))
}

export class EcgSynth {
  readonly sampleRateHz: number
  readonly microvoltsPerLsb: number
  readonly stemi: StemiKind
  private readonly opts: Readonly<EcgOptions>
  private readonly rng: Rng
  /** Measured leads rendered: all eight, or lead II alone. */
  private readonly firstRow: number
  private readonly lastRow: number

  private readonly stride: number
  private readonly template: Float32Array
  private beat: BeatTemplate
  private beatRrS: number
  /** R index of the widest template: how far ahead of its R a beat must be placed. */
  private readonly maxRIndex: number

  private readonly ringSize: number
  private readonly ringMask: number
  private readonly ring: Float32Array
  /** Absolute index of the next sample to output. */
  private sampleIndex = 0
  /** Absolute index of the next beat's R peak. */
  private nextR: number

  private targetRrS: number
  private respRateBpm: number
  private respPhase: number
  private noiseCursor: number
  private readonly wander = new Float32Array(CHUNK)
  private readonly rrHistory = new Float64Array(HR_AVERAGE_BEATS)
  private rrCount = 0

  private buffers: Int32Array[] = []
  private views: Int32Array[] = []

  constructor (options: Partial<EcgOptions> = {}) {
    const o = { ...ECG_DEFAULTS, ...options }
    if (!(o.sampleRateHz >= 50 && o.sampleRateHz <= 2000)) throw new RangeError(`sampleRateHz ${o.sampleRateHz} outside 50..2000`)
    // Lower bound keeps |samples| ≤ 32 mV / LSB below 2^30 (see ROUND_BIAS).
    if (!(o.microvoltsPerLsb >= 0.001 && o.microvoltsPerLsb <= 1000)) throw new RangeError(`microvoltsPerLsb ${o.microvoltsPerLsb} outside 0.001..1000`)
    this.opts = Object.freeze(o)
    this.sampleRateHz = o.sampleRateHz
    this.microvoltsPerLsb = o.microvoltsPerLsb
    this.stemi = o.stemi
    this.rng = new Rng(o.seed)
    if (o.leadSet !== 12 && o.leadSet !== 1) throw new RangeError(`leadSet ${String(o.leadSet)} must be 12 or 1`)
    this.firstRow = o.leadSet === 12 ? 0 : MEASURED_II
    this.lastRow = o.leadSet === 12 ? MEASURED_LEADS - 1 : MEASURED_II

    this.stride = maxTemplateSamples(o.sampleRateHz)
    this.template = new Float32Array(MEASURED_LEADS * this.stride)
    this.maxRIndex = renderBeat(MAX_RR_S, o.sampleRateHz, o.stemi, this.template, this.stride).rIndex
    this.targetRrS = rrFromBpm(o.heartRateBpm)
    this.beatRrS = this.targetRrS
    this.beat = renderBeat(this.beatRrS, o.sampleRateHz, o.stemi, this.template, this.stride)

    // A beat placed at most maxRIndex before its R, plus a whole template, plus one chunk.
    this.ringSize = nextPow2(CHUNK + this.maxRIndex + this.stride + 1)
    this.ringMask = this.ringSize - 1
    this.ring = new Float32Array(MEASURED_LEADS * this.ringSize)

    this.respRateBpm = o.respiratoryRateBpm
    this.respPhase = this.rng.range(0, 2 * Math.PI)
    this.noiseCursor = this.rng.int(0, NOISE_MASK)
    // Start somewhere inside a cardiac cycle, so that a fleet's units are not in lockstep.
    this.nextR = Math.round(this.rng.next() * this.targetRrS * o.sampleRateHz)
  }

  /** Heart rate the ECG currently shows (mean of the last four RR intervals), bpm. */
  get heartRateBpm (): number {
    if (this.rrCount === 0) return 60 / this.targetRrS
    const n = Math.min(this.rrCount, HR_AVERAGE_BEATS)
    let sum = 0
    for (let i = 0; i < n; i++) sum += this.rrHistory[i]!
    return 60 * n / sum
  }

  /** Sets the mean heart rate for the coming beats (clamped to 20..300 bpm). */
  setHeartRate (bpm: number): void {
    this.targetRrS = rrFromBpm(bpm)
  }

  setRespiratoryRate (breathsPerMin: number): void {
    this.respRateBpm = Math.max(0, Math.min(60, breathsPerMin))
  }

  /**
   * The next `n` samples of all twelve leads, in Lead enum order. The arrays are views into
   * buffers reused by the next call: copy or encode them before calling again.
   */
  next (n: number): Int32Array[] {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`sample count ${n} must be a non-negative integer`)
    if (n > (this.buffers[0]?.length ?? -1)) {
      this.buffers = Array.from({ length: ECG_LEADS }, () => new Int32Array(n))
      this.views = []
    }
    if (this.views[0]?.length !== n) this.views = this.buffers.map(b => b.subarray(0, n))
    for (let done = 0; done < n;) {
      const len = Math.min(CHUNK, n - done)
      this.render(done, len)
      done += len
    }
    return this.views
  }

  private render (off: number, len: number): void {
    const s0 = this.sampleIndex
    // Place every beat whose template could start before this chunk ends.
    while (this.nextR - this.maxRIndex < s0 + len) this.placeBeat()

    const wander = this.wander
    const dPhase = 2 * Math.PI * this.respRateBpm / 60 / this.sampleRateHz
    let phase = this.respPhase
    const wanderUv = this.opts.wanderMicrovolts
    for (let i = 0; i < len; i++) {
      wander[i] = wanderUv * Math.sin(phase)
      phase += dPhase
    }
    this.respPhase = phase % (2 * Math.PI)

    const ring = this.ring
    const mask = this.ringMask
    const inv = 1 / this.microvoltsPerLsb
    const max = Math.floor(MAX_ABS_UV * inv)
    const noiseUv = this.opts.noiseMicrovolts
    for (let k = this.firstRow; k <= this.lastRow; k++) {
      const row = k * this.ringSize
      const out = this.buffers[MEASURED_ROW[k]!]!
      const gain = WANDER_GAIN[k]!
      const nc = this.noiseCursor + k * 1031 // leads draw from far-apart parts of the table
      for (let i = 0; i < len; i++) {
        const idx = row + ((s0 + i) & mask)
        let v = (ring[idx]! + gain * wander[i]! + noiseUv * NOISE[(nc + i) & NOISE_MASK]!) * inv
        ring[idx] = 0
        v = v > max ? max : v < -max ? -max : v
        // Round half up without Math.round: its result depends on a branch that noisy data
        // mispredicts half the time (4x slower here). Truncating a positive double is branchless.
        out[off + i] = ((v + ROUND_BIAS + 0.5) | 0) - ROUND_BIAS
      }
    }
    if (this.opts.leadSet === 12) this.deriveLimbLeads(off, len, max)
    this.noiseCursor = (this.noiseCursor + len) & NOISE_MASK
    this.sampleIndex = s0 + len
  }

  /** III, aVR, aVL, aVF from the integer I and II, as an electrocardiograph computes them. */
  private deriveLimbLeads (off: number, len: number, max: number): void {
    const [I, II, III, aVR, aVL, aVF] = this.buffers as [Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array]
    // Integer halves round up (as Math.round would): round(y / 2) = (y + 1) >> 1.
    for (let i = off; i < off + len; i++) {
      const a = I[i]!
      const b = II[i]!
      const c = b - a
      III[i] = c > max ? max : c < -max ? -max : c
      aVR[i] = (1 - a - b) >> 1
      aVL[i] = (2 * a - b + 1) >> 1
      aVF[i] = (2 * b - a + 1) >> 1
    }
  }

  /** Adds the beat whose R peak is at `nextR` into the ring and draws the following RR. */
  private placeBeat (): void {
    if (Math.abs(this.targetRrS - this.beatRrS) > 0.04 * this.beatRrS) {
      this.beatRrS = this.targetRrS
      this.beat = renderBeat(this.beatRrS, this.sampleRateHz, this.stemi, this.template, this.stride)
    }
    const start = this.nextR - this.beat.rIndex
    // Never write into samples already output (only the very first beat can start before now).
    const j0 = Math.max(0, this.sampleIndex - start)
    const len = this.beat.length
    const mask = this.ringMask
    for (let k = this.firstRow; k <= this.lastRow; k++) {
      const row = k * this.ringSize
      const tpl = k * this.stride
      for (let j = j0; j < len; j++) this.ring[row + ((start + j) & mask)]! += this.template[tpl + j]!
    }

    // Sinus arrhythmia (RR longer on expiration) plus random beat-to-beat variability. The
    // breathing phase is taken at this R peak, not at the chunk being rendered, so the rhythm
    // does not depend on how callers slice next().
    const hrv = this.opts.hrvFraction
    const phaseAtR = this.respPhase + (this.nextR - this.sampleIndex) * 2 * Math.PI * this.respRateBpm / 60 / this.sampleRateHz
    const factor = 1 + 0.5 * hrv * Math.sin(phaseAtR) + hrv * this.rng.gaussian()
    const rr = Math.min(MAX_RR_S, Math.max(MIN_RR_S, this.targetRrS * factor))
    const rrSamples = Math.max(1, Math.round(rr * this.sampleRateHz))
    this.rrHistory[this.rrCount % HR_AVERAGE_BEATS] = rrSamples / this.sampleRateHz
    this.rrCount++
    this.nextR += rrSamples
  }
}

function rrFromBpm (bpm: number): number {
  if (!(bpm > 0)) throw new RangeError(`heart rate ${bpm} must be positive`)
  return Math.min(MAX_RR_S, Math.max(MIN_RR_S, 60 / bpm))
}
