/**
 * Per-unit accounting of what the gateway acknowledged, so a test can compare exactly what the
 * database must hold (points per measurement, seq numbers) with what the devices were told is
 * safe. Acked seqs are kept as merged ranges: a healthy run is a single [1, n].
 */
import type { FrameMeta } from './frame-source.js'

export class UnitCounters {
  generated = 0
  /** First hand-overs to the MQTT client. */
  published = 0
  /** Later hand-overs of the same frame (after the client gave it back on a disconnect). */
  resent = 0
  acked = 0
  bytesAcked = 0
  ecgPointsAcked = 0
  ecgSamplesAcked = 0
  numericsAcked = 0
  /** Frames with numerics: one `vitals` point each (all readings share offset 0). */
  vitalsPointsAcked = 0
  positionsAcked = 0
  alarmsAcked = 0
  errors = 0
  connects = 0
  inFlightPeak = 0
  firstCapturedAtMs = 0
  lastCapturedAtMs = 0
  /** Flat, sorted, merged [lo, hi, lo, hi, …] of acknowledged seqs. */
  private readonly ranges: number[] = []

  addAck (m: FrameMeta): void {
    this.acked++
    this.bytesAcked += m.bytes
    this.ecgPointsAcked += m.ecgPoints
    this.ecgSamplesAcked += m.ecgSamples
    this.numericsAcked += m.numerics
    if (m.numerics > 0) this.vitalsPointsAcked++
    if (m.hasPosition) this.positionsAcked++
    this.alarmsAcked += m.alarms
    if (this.firstCapturedAtMs === 0 || m.capturedAtMs < this.firstCapturedAtMs) this.firstCapturedAtMs = m.capturedAtMs
    if (m.capturedAtMs > this.lastCapturedAtMs) this.lastCapturedAtMs = m.capturedAtMs
    this.addSeq(m.seq)
  }

  /** Acked seqs as [from, to] inclusive ranges. */
  ackedSeqRanges (): Array<[number, number]> {
    const out: Array<[number, number]> = []
    for (let i = 0; i < this.ranges.length; i += 2) out.push([this.ranges[i]!, this.ranges[i + 1]!])
    return out
  }

  private addSeq (s: number): void {
    const r = this.ranges
    const n = r.length
    // Almost always the next seq after the last one acked.
    if (n > 0 && r[n - 1] === s - 1) {
      r[n - 1] = s
      return
    }
    if (n === 0 || s > r[n - 1]! + 1) {
      r.push(s, s)
      return
    }
    // Out of order: j = first range starting after s.
    let j = n
    while (j > 0 && r[j - 2]! > s) j -= 2
    const hasPrev = j > 0
    if (hasPrev && r[j - 1]! >= s) return // already acked
    const joinsPrev = hasPrev && r[j - 1] === s - 1
    const joinsNext = j < n && r[j] === s + 1
    if (joinsPrev && joinsNext) {
      r[j - 1] = r[j + 1]!
      r.splice(j, 2)
    } else if (joinsPrev) {
      r[j - 1] = s
    } else if (joinsNext) {
      r[j] = s
    } else {
      r.splice(j, 0, s, s)
    }
  }
}
