/**
 * Frames for saturation runs, cheap enough that the load generator is not what is measured.
 *
 * Each unit gets a few real simulator frames (12-lead ECG, numerics and position once a
 * second). Their content after the header (fields 6-10) is encoded once; a frame is then the
 * header (unit, boot, seq, captured_at, encounter: fields 1-5, written by hand below) followed
 * by one of those bodies, in turn. Protobuf fields may come in any order, so this is an ordinary
 * TelemetryFrame; every (unit, boot, seq) is new and every sample instant distinct, so InfluxDB
 * counts stay exact.
 *
 * Device time starts `backdateMs` in the past and advances 250 ms per frame, like a device
 * replaying its store-and-forward queue, so a saturation run far faster than real time stays
 * within the decoder's bounds (MAX_FUTURE_SKEW_MS 5 min, MAX_PAST_AGE_MS 7 days). `maxFrames`
 * keeps device time from running past now.
 */
import { randomBytes } from 'node:crypto'
import { decodeWire, encodeFrame } from '../decoders/index.js'
import type { FrameMeta, SourceFrame } from '../simulator/frame-source.js'
import { UnitFrameSource } from '../simulator/frame-source.js'
import { PATIENT_PROFILES } from '../simulator/vitals.js'

const FRAME_MS = 250
/** Distinct bodies per unit: a multiple of 4, so numerics stay once a second. */
const BODIES = 8

interface Body { bytes: Buffer, ecgPoints: number, ecgSamples: number, numerics: number, hasPosition: boolean }

export class StampedFrames {
  readonly unitId: string
  readonly bootId: string
  readonly encounterId: string
  readonly startMs: number
  /** Frames this unit may produce before device time would pass now. */
  readonly maxFrames: number
  private readonly bodies: Body[]
  private readonly fixed: Buffer
  private seq = 0

  constructor (unitId: string, index: number, backdateMs: number) {
    this.unitId = unitId
    this.bootId = randomBytes(8).toString('hex')
    this.encounterId = `enc-${randomBytes(6).toString('hex')}`
    this.startMs = Math.floor((Date.now() - backdateMs) / FRAME_MS) * FRAME_MS
    this.maxFrames = Math.floor(backdateMs / FRAME_MS)
    const src = new UnitFrameSource({ unitId, startMs: this.startMs, profile: PATIENT_PROFILES[index % PATIENT_PROFILES.length]!, seed: index + 1 })
    this.bodies = []
    for (let i = 0; i < BODIES; i++) {
      const { bytes, meta } = src.nextFrame()
      const w = decodeWire(bytes)
      this.bodies.push({
        bytes: Buffer.from(encodeFrame({ numerics: w.numerics, waveforms: w.waveforms, position: w.position ?? undefined, alarms: w.alarms })),
        ecgPoints: meta.ecgPoints,
        ecgSamples: meta.ecgSamples,
        numerics: meta.numerics,
        hasPosition: meta.hasPosition
      })
    }
    // unit_id (1), boot_id (2) and encounter_id (5) never change: encoded once.
    this.fixed = Buffer.concat([field(1, unitId), field(2, this.bootId), field(5, this.encounterId)])
  }

  get produced (): number { return this.seq }
  get exhausted (): boolean { return this.seq >= this.maxFrames }

  next (): SourceFrame {
    const seq = ++this.seq
    const capturedAtMs = this.startMs + (seq - 1) * FRAME_MS
    const body = this.bodies[(seq - 1) % BODIES]!
    const head = Buffer.allocUnsafe(24)
    let at = 0
    head[at++] = 0x18 // field 3 (seq), varint
    at = varint(head, at, seq)
    head[at++] = 0x20 // field 4 (captured_at_ms), varint
    at = varint(head, at, capturedAtMs)
    const bytes = Buffer.concat([this.fixed, head.subarray(0, at), body.bytes])
    const meta: FrameMeta = {
      unitId: this.unitId,
      bootId: this.bootId,
      seq,
      capturedAtMs,
      bytes: bytes.length,
      ecgPoints: body.ecgPoints,
      ecgSamples: body.ecgSamples,
      numerics: body.numerics,
      hasPosition: body.hasPosition,
      alarms: 0,
      hasAssessment: false
    }
    return { bytes, meta }
  }
}

/** A length-delimited string field. */
function field (n: number, s: string): Buffer {
  const v = Buffer.from(s)
  const head = Buffer.allocUnsafe(6)
  head[0] = (n << 3) | 2
  const at = varint(head, 1, v.length)
  return Buffer.concat([head.subarray(0, at), v])
}

/** Unsigned varint of a non-negative safe integer (float arithmetic: exact below 2^53). */
function varint (b: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    b[at++] = (n % 0x80) | 0x80
    n = Math.floor(n / 0x80)
  }
  b[at++] = n
  return at
}
