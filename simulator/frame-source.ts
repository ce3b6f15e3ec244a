/**
 * One ambulance's monitor: turns the ECG, vitals and route simulations into the telemetry frames
 * the device would send, with no I/O. The MQTT transport (unit-link.ts) only moves the bytes, so
 * tests can run hours of device time through the decoder in a second.
 *
 * Frame k (from 1) is captured at startMs + (k-1)·frameMs and covers exactly frameMs: the device
 * clock advances by the frame length, never by wall-clock jitter, so frame identity and sample
 * timestamps are the same whenever (and however often) the frame is sent.
 */
import { EcgSynth, type StemiKind } from './ecg.js'
import { interpret, interpretationBytes } from './ecg-interpretation.js'
import { SimulatorError } from './errors.js'
import { writeFrame, type AlarmFields, type FrameFields, type NumericFields, type WaveformFields } from './frame-writer.js'
import { Rng } from './rng.js'
import { LUXEMBOURG_ROUTES, RouteFollower, type Route } from './route.js'
import { VitalsSim, type PatientProfile } from './vitals.js'

export type LeadSet = 0 | 1 | 12

/** Device defaults, shared with the fleet's option table (keep one copy). */
export const DEVICE_DEFAULTS = Object.freeze({
  /** Frame length, ms: a monitor typically sends 4 frames per second. */
  frameMs: 250,
  /** 12 leads, 1 (lead II only) or 0 (no ECG). */
  leads: 12 as LeadSet,
  /** ECG sample rate per lead, Hz (diagnostic 12-lead ECGs use 500 Hz). */
  ecgHz: 500,
  microvoltsPerLsb: 1
})

export interface FrameSourceOptions {
  unitId: string
  /** Device clock at the start of frame 1, Unix ms. */
  startMs: number
  profile: PatientProfile
  /** Seed for everything random about this unit (ids too, unless given). */
  seed: number
  frameMs?: number
  leads?: LeadSet
  ecgHz?: number
  microvoltsPerLsb?: number
  /** Numerics and position every this many frames; default: once per second. */
  numericsEveryFrames?: number
  /** Force the infarct territory of a stemi patient (default: drawn from the seed). */
  stemi?: StemiKind
  bootId?: string
  encounterId?: string
  route?: Route
  /** Where along the route the unit starts, 0..1 (default: drawn in 0..0.5). */
  routeStartFraction?: number
}

/** What a frame holds, for the fleet's accounting of what the gateway must have stored. */
export interface FrameMeta {
  unitId: string
  bootId: string
  seq: number
  capturedAtMs: number
  /** Encoded size, bytes. */
  bytes: number
  /** Sample instants: one InfluxDB `ecg` point each. */
  ecgPoints: number
  /** Samples over all leads: ecgPoints × leads, i.e. `ecg` field values. */
  ecgSamples: number
  /** Numeric readings: `vitals` field values (all at offset 0, so one point per frame). */
  numerics: number
  hasPosition: boolean
  alarms: number
  hasAssessment: boolean
  /** (v1.1) The frame carries the device's 12-lead interpretation. */
  hasInterpretation?: boolean
}

export interface SourceFrame { bytes: Buffer, meta: FrameMeta }

const LEAD_II = 2
/** A 12-lead monitor interprets its first 10 s of ECG, then every 30 s (v1.1 field 11). */
const FIRST_INTERPRETATION_MS = 10_000
const INTERPRETATION_EVERY_MS = 30_000

export class UnitFrameSource {
  readonly unitId: string
  readonly bootId: string
  readonly encounterId: string
  readonly profile: PatientProfile
  readonly frameMs: number
  readonly startMs: number
  readonly leads: LeadSet
  readonly samplesPerFrame: number
  private readonly numericsEvery: number
  private readonly ecg: EcgSynth | null
  private readonly vitals: VitalsSim
  private readonly route: RouteFollower
  private readonly fields: FrameFields
  private readonly waves: WaveformFields[]
  private readonly leadIndex: number[]
  private seqValue = 0
  private sentAssessment: VitalsSim['assessment'] | null = null

  constructor (options: FrameSourceOptions) {
    const o = { ...DEVICE_DEFAULTS, ...withoutUndefined(options), unitId: options.unitId, startMs: options.startMs, profile: options.profile, seed: options.seed }
    const frameMs = o.frameMs
    const numericsEvery = validateDeviceOptions(o)
    if (!Number.isSafeInteger(o.startMs) || o.startMs <= 0) invalid(`startMs ${o.startMs} must be a Unix time in ms`)

    const rng = new Rng(o.seed)
    this.unitId = o.unitId
    this.bootId = o.bootId ?? rng.hex(16)
    this.encounterId = o.encounterId ?? `enc-${rng.hex(12)}`
    this.profile = o.profile
    this.frameMs = frameMs
    this.startMs = o.startMs
    this.leads = o.leads
    this.numericsEvery = numericsEvery
    this.samplesPerFrame = o.leads > 0 ? frameMs * o.ecgHz / 1000 : 0

    this.vitals = new VitalsSim({ profile: o.profile, startMs: o.startMs, rng: rng.fork(), stemi: o.stemi })
    this.ecg = o.leads === 0
      ? null
      : new EcgSynth({
        sampleRateHz: o.ecgHz,
        microvoltsPerLsb: o.microvoltsPerLsb,
        heartRateBpm: this.vitals.heartRateBpm,
        respiratoryRateBpm: this.vitals.respiratoryRate,
        stemi: this.vitals.stemi,
        seed: Math.floor(rng.next() * 2 ** 32),
        leadSet: o.leads === 1 ? 1 : 12
      })
    const route = o.route ?? rng.pick(LUXEMBOURG_ROUTES)
    this.route = new RouteFollower(route, rng.fork(), o.routeStartFraction ?? rng.range(0, 0.5))

    this.leadIndex = o.leads === 12 ? Array.from({ length: 12 }, (_, i) => i) : o.leads === 1 ? [LEAD_II - 1] : []
    this.waves = this.leadIndex.map(i => ({
      lead: i + 1,
      sampleRateHz: o.ecgHz,
      microvoltsPerLsb: o.microvoltsPerLsb,
      offsetMs: 0,
      samples: new Int32Array(0)
    }))
    this.fields = {
      unitId: this.unitId,
      bootId: this.bootId,
      seq: 0,
      capturedAtMs: 0,
      encounterId: this.encounterId,
      numerics: [],
      waveforms: this.waves,
      position: null,
      alarms: [],
      assessment: null
    }
  }

  /** Seq of the last frame produced (0 before the first). */
  get seq (): number { return this.seqValue }
  /** Device time at which the next frame starts. */
  get nextCapturedAtMs (): number { return this.startMs + this.seqValue * this.frameMs }
  /** The patient's heart rate as the ECG shows it, bpm. */
  get heartRateBpm (): number { return this.ecg?.heartRateBpm ?? this.vitals.heartRateBpm }
  get stemi (): StemiKind { return this.vitals.stemi }
  get assessment (): VitalsSim['assessment'] { return this.vitals.assessment }

  nextFrame (): SourceFrame {
    const seq = ++this.seqValue
    const elapsedMs = (seq - 1) * this.frameMs
    const f = this.fields
    f.seq = seq
    f.capturedAtMs = this.startMs + elapsedMs

    if (this.ecg !== null) {
      const data = this.ecg.next(this.samplesPerFrame)
      for (let i = 0; i < this.waves.length; i++) this.waves[i]!.samples = data[this.leadIndex[i]!]!
    }

    let numerics: NumericFields[] = []
    let alarms: AlarmFields[] = []
    f.position = null
    if ((seq - 1) % this.numericsEvery === 0) {
      const dtMs = seq === 1 ? 0 : this.numericsEvery * this.frameMs
      this.route.advance(dtMs / 1000)
      const tick = this.vitals.tick(elapsedMs, dtMs, this.ecg?.heartRateBpm ?? null)
      this.ecg?.setHeartRate(this.vitals.heartRateBpm)
      this.ecg?.setRespiratoryRate(this.vitals.respiratoryRate)
      numerics = tick.numerics.map(r => ({ sign: r.sign, value: r.value, offsetMs: 0 }))
      alarms = tick.alarms.map(a => ({ code: a.code, priority: a.priority, text: a.text, offsetMs: 0 }))
      f.position = { ...this.route.fix(), offsetMs: 0 }
    }
    f.numerics = numerics
    f.alarms = alarms
    // The paramedic's findings go out with the first frame, and again whenever they change.
    f.assessment = this.vitals.assessment !== this.sentAssessment ? this.vitals.assessment : null
    this.sentAssessment = this.vitals.assessment

    let bytes = writeFrame(f)
    // The 12-lead interpretation goes out with the frame that ends each analysed stretch.
    const endMs = elapsedMs + this.frameMs
    const interpreting = this.leads === 12 && endMs >= FIRST_INTERPRETATION_MS && (endMs - FIRST_INTERPRETATION_MS) % INTERPRETATION_EVERY_MS < this.frameMs
    if (interpreting) bytes = Buffer.concat([bytes, interpretationBytes(interpret(this.heartRateBpm, this.stemi, this.frameMs))])
    return {
      bytes,
      meta: {
        unitId: this.unitId,
        bootId: this.bootId,
        seq,
        capturedAtMs: f.capturedAtMs,
        bytes: bytes.length,
        ecgPoints: this.samplesPerFrame,
        ecgSamples: this.samplesPerFrame * this.waves.length,
        numerics: numerics.length,
        hasPosition: f.position !== null,
        alarms: alarms.length,
        hasAssessment: f.assessment !== null,
        hasInterpretation: interpreting
      }
    }
  }
}

/**
 * Checks the device settings (the Fleet calls this up front, before connecting anyone);
 * returns the numerics cadence in frames.
 */
export function validateDeviceOptions (o: Pick<FrameSourceOptions, 'frameMs' | 'leads' | 'ecgHz' | 'microvoltsPerLsb' | 'numericsEveryFrames'>): number {
  const { frameMs, leads, ecgHz, microvoltsPerLsb } = { ...DEVICE_DEFAULTS, ...withoutUndefined(o) }
  if (!Number.isInteger(frameMs) || frameMs < 10 || frameMs > 60_000) invalid(`frameMs ${frameMs} must be an integer in 10..60000`)
  if (leads !== 0 && leads !== 1 && leads !== 12) invalid(`leads ${String(leads)} must be 0, 1 or 12`)
  if (!Number.isInteger(ecgHz) || ecgHz < 50 || ecgHz > 2000) invalid(`ecgHz ${ecgHz} must be an integer in 50..2000`)
  // Every frame must cover exactly frameMs with whole samples, or timestamps would drift.
  if (leads > 0 && (frameMs * ecgHz) % 1000 !== 0) invalid(`frameMs ${frameMs} × ecgHz ${ecgHz} must be a whole number of samples`)
  if (!(microvoltsPerLsb >= 0.001 && microvoltsPerLsb <= 1000)) invalid(`microvoltsPerLsb ${microvoltsPerLsb} must be in 0.001..1000`)
  const numericsEvery = o.numericsEveryFrames ?? Math.max(1, Math.round(1000 / frameMs))
  if (!Number.isInteger(numericsEvery) || numericsEvery < 1) invalid(`numericsEveryFrames ${numericsEvery} must be a positive integer`)
  return numericsEvery
}

function withoutUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

function invalid (message: string): never {
  throw new SimulatorError('AMB_ERR_SIM_OPTION_INVALID', message)
}
