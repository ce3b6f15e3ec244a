/**
 * Rolling window of the most recent ack latencies. Recording is O(1) into a preallocated ring;
 * percentiles sort a copy, which only happens when stats or progress are asked for.
 */
export interface LatencySummary {
  /** Milliseconds; 0 when nothing was recorded yet. */
  p50: number
  p99: number
  max: number
  /** Samples in the window. */
  count: number
}

export class LatencyWindow {
  private readonly ring: Float64Array
  private next = 0
  private filled = 0

  constructor (size = 8192) {
    this.ring = new Float64Array(size)
  }

  record (ms: number): void {
    this.ring[this.next] = ms
    this.next = (this.next + 1) % this.ring.length
    if (this.filled < this.ring.length) this.filled++
  }

  summary (): LatencySummary {
    if (this.filled === 0) return { p50: 0, p99: 0, max: 0, count: 0 }
    const sorted = this.ring.slice(0, this.filled).sort()
    const at = (q: number): number => round2(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!)
    return { p50: at(0.5), p99: at(0.99), max: round2(sorted[sorted.length - 1]!), count: this.filled }
  }
}

function round2 (x: number): number {
  return Math.round(x * 100) / 100
}
