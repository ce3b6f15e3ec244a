/**
 * The live hub's per-unit ring buffers: the last seconds of ECG per lead and the last minutes of
 * numerics and positions. Preallocated typed arrays, written in place: a frame costs no
 * allocation per sample, and memory per unit is fixed (≈ 240 kB at 12 leads × 500 Hz × 10 s plus
 * a 30 min trend), whatever the devices send.
 *
 * Indices are absolute (the n-th sample or row since the ring was created): they are what a
 * client sends back to resume, and together with the ring's epoch they say exactly what it has.
 */
import type { WireWaveform } from '../../decoders/index.js'
import { NO_SAMPLE, TREND_SIGNS, type TrendRow } from './protocol.js'

const LEADS = 12
/** A frame that starts this much later than the previous one ended leaves a visible gap. */
const GAP_TOLERANCE_MS = 100
/** The gap drawn for a longer interruption (a monitor shows a break, not the lost minutes). */
const MAX_GAP_FILL_MS = 1000

export class EcgRing {
  readonly capacity: number
  /** Union of the leads ever written (bit i = Lead enum i + 1). */
  leadMask = 0
  /** Absolute index of the next sample to be written. */
  next = 0
  /** Device time of the next sample, Unix ms (NaN before the first frame). */
  private expectMs = Number.NaN
  private readonly data: Int16Array

  constructor (readonly rateHz: number, seconds: number, readonly epoch: string) {
    this.capacity = Math.ceil(rateHz * seconds)
    this.data = new Int16Array(this.capacity * LEADS).fill(NO_SAMPLE)
  }

  /** Oldest absolute index still held. */
  get oldest (): number { return Math.max(0, this.next - this.capacity) }

  /** Device time of sample `index` (valid for indices written since the last gap). */
  timeOf (index: number): number { return this.expectMs - (this.next - index) * 1000 / this.rateHz }

  read (lead: number, index: number): number { return this.data[lead * this.capacity + (index % this.capacity)]! }

  /**
   * Appends one frame's waveforms (all at this ring's rate). Returns the first absolute index
   * written (gap fill included), or -1 when the frame is older than what the ring holds (a replay
   * or a store-and-forward backlog: stored, but not live any more).
   */
  append (waves: readonly WireWaveform[], startMs: number): number {
    const first = waves[0]
    if (first === undefined) return -1
    const n = first.samples.length
    const periodMs = 1000 / this.rateHz
    const from = this.next
    if (!Number.isNaN(this.expectMs)) {
      const gapMs = startMs - this.expectMs
      if (gapMs < -periodMs * n / 2) return -1
      if (gapMs > GAP_TOLERANCE_MS) this.fill(Math.round(Math.min(gapMs, MAX_GAP_FILL_MS) / periodMs))
    }
    let present = 0
    const cap = this.capacity
    const data = this.data
    const at = this.next % cap
    // Per sample (12 leads × 500 Hz per unit, on every frame): the ring wraps at most once per
    // frame, so the index needs no modulo per sample.
    const wrap = cap - at
    for (const wf of waves) {
      const lead = wf.lead - 1
      if (lead < 0 || lead >= LEADS) continue
      present |= 1 << lead
      const s = wf.samples
      const lsb = wf.microvoltsPerLsb
      const base = lead * cap
      const len = Math.min(s.length, n)
      if (lsb === 1 && len === n && n <= cap) {
        // The usual scale: samples are already whole µV.
        for (let i = 0; i < n; i++) {
          const v = s[i]!
          // ±32 000 µV is the decoder's bound; clamp anyway so NO_SAMPLE stays unambiguous.
          data[base + (i < wrap ? at + i : i - wrap)] = v > 32767 ? 32767 : v < -32767 ? -32767 : v
        }
        continue
      }
      for (let i = 0; i < n; i++) {
        const v = i < len ? Math.round(s[i]! * lsb) : NO_SAMPLE
        data[base + ((this.next + i) % cap)] = v === NO_SAMPLE ? v : v > 32767 ? 32767 : v < -32767 ? -32767 : v
      }
    }
    // Leads this frame lacks read as "no signal" rather than as stale samples from the last lap.
    const absent = this.leadMask & ~present
    if (absent !== 0) this.blank(absent, this.next, n)
    this.leadMask |= present
    this.next += n
    this.expectMs = startMs + n * periodMs
    return from
  }

  private fill (count: number): void {
    this.blank((1 << LEADS) - 1, this.next, count)
    this.next += count
  }

  private blank (mask: number, from: number, count: number): void {
    const c = Math.min(count, this.capacity)
    for (let lead = 0; lead < LEADS; lead++) {
      if ((mask & (1 << lead)) === 0) continue
      const base = lead * this.capacity
      for (let i = 0; i < c; i++) this.data[base + ((from + i) % this.capacity)] = NO_SAMPLE
    }
  }
}

const SIGNS = TREND_SIGNS.length

export class TrendRing {
  /** Absolute index the next new row gets; the current row is next - 1. */
  next = 0
  private readonly t: Float64Array
  private readonly v: Float32Array
  private readonly pos: Float64Array
  private readonly hasPos: Uint8Array

  /**
   * @param capacity rows kept
   * @param stepMs a new row starts at most every stepMs of device time: the ring spans at least
   *   capacity × stepMs, however often a device sends numerics
   */
  constructor (readonly capacity: number, readonly stepMs: number, readonly epoch: string) {
    this.t = new Float64Array(capacity)
    this.v = new Float32Array(capacity * SIGNS).fill(Number.NaN)
    this.pos = new Float64Array(capacity * 4)
    this.hasPos = new Uint8Array(capacity)
  }

  get oldest (): number { return Math.max(0, this.next - this.capacity) }

  /**
   * The slot for device time `t`: the current row when `t` falls within its step, a new row when
   * later, -1 when earlier than the current row (late data stays out of the live trend).
   */
  private slot (t: number): number {
    if (this.next > 0) {
      const cur = (this.next - 1) % this.capacity
      const t0 = this.t[cur]!
      if (t < t0) return -1
      if (t < t0 + this.stepMs) return cur
    }
    const s = this.next % this.capacity
    this.next++
    this.t[s] = t
    this.v.fill(Number.NaN, s * SIGNS, s * SIGNS + SIGNS)
    this.hasPos[s] = 0
    return s
  }

  /** Records sign column `col` (TREND_SIGNS index). */
  setValue (t: number, col: number, value: number): void {
    const s = this.slot(t)
    if (s >= 0) this.v[s * SIGNS + col] = value
  }

  setPosition (t: number, lat: number, lon: number, speedMps: number, headingDeg: number): void {
    const s = this.slot(t)
    if (s < 0) return
    const o = s * 4
    this.pos[o] = lat
    this.pos[o + 1] = lon
    this.pos[o + 2] = speedMps
    this.pos[o + 3] = headingDeg
    this.hasPos[s] = 1
  }

  timeAt (index: number): number { return this.t[index % this.capacity]! }

  /** A sign's value at a row, null when not reported (rounded: float32 noise stays off the wire). */
  valueAt (index: number, col: number): number | null {
    const v = this.v[(index % this.capacity) * SIGNS + col]!
    return Number.isNaN(v) ? null : Math.round(v * 100) / 100
  }

  positionAt (index: number): TrendRow['position'] {
    const s = index % this.capacity
    if (this.hasPos[s] === 0) return null
    const o = s * 4
    return [this.pos[o]!, this.pos[o + 1]!, Math.round(this.pos[o + 2]! * 10) / 10, Math.round(this.pos[o + 3]!)]
  }

  row (index: number): TrendRow {
    const values: Array<number | null> = new Array<number | null>(SIGNS)
    for (let c = 0; c < SIGNS; c++) values[c] = this.valueAt(index, c)
    return { index, t: this.timeAt(index), values, position: this.positionAt(index) }
  }
}
