/**
 * Persistence judged over a sliding window, not a run: the share of the last N seconds a
 * condition was present. One sample back inside a limit no longer restarts the count, so an
 * intermittent condition (SpO2 85 % for 9 s, 92 % for 1 s, again and again) raises, and the same
 * filter on clearing keeps a flapping value from clearing and re-raising (alarm storms).
 *
 * Time is cut into 1 s buckets of sample time; each bucket holds a small state number (0 = no
 * data: counts for nothing, so a missing stream neither raises nor clears). A sample's state also
 * fills the seconds since the previous sample when the gap is short (a 1 Hz numeric whose frame
 * was lost), never longer gaps. Two windows share one ring: the raise window and the (longer)
 * clear window, each with its own counts per state. O(gap) per sample, allocation-free.
 *
 * Seconds without data inside the stream's span do not count against a condition: a share is of
 * the window less those holes, and of no less than 60 % of the window (MIN_COVERAGE). A link that
 * drops 5 s in every 11 s leaves about 55 % of a window with data, and SpO2 84 % in every one of
 * those seconds must still raise (it did not when the holes counted against it: 55 % never
 * reaches a 70 % raise fraction). The seconds before the stream's first sample still count as
 * before, so a stream that starts abnormal raises after the rule's duration, not sooner; with no
 * hole the share is of the whole window, as it always was.
 */

/** Bucket state meaning "no sample in this second". */
export const NO_DATA = 0

/** Longest gap (s) a sample's state is carried over to the seconds before it. */
const FILL_SEC = 5

/**
 * The share of a window a condition needs is taken of its seconds with data, but of no fewer than
 * this fraction of the window: a raise at 70 % then needs the condition in ≥ 42 % of the whole
 * window (5 s of a 10 s heart-rate or NEWS2 window, 7 s of a 15 s SpO2 window). It is what keeps a
 * short burst of wrong readings right after a hole (a probe or ECG leads reattached) from raising
 * alone: at half the window, 4 s of HR 30 after leads off for 5 s raised a high heart-rate alert
 * (test/alert-flapping-link.test.ts). Higher would miss the link that keeps dropping: a 10 s
 * window on a link down 5 s in every 10 s has readings in 5 of its seconds at worst, ≥ 0.7 × 6.
 * An engineering bound, not a clinical number: the clinical durations and fractions are the
 * rules' (rules.ts, docs/alerts.md).
 */
export const MIN_COVERAGE = 0.6

/**
 * A window as it travels in a unit snapshot (state-store.ts): the newest second of sample time
 * (`s`, Unix s) and one digit per second (`b`, oldest first, the last one is second `s`), at
 * most as many as the window holds (max(raise, clear) seconds: ≤ 300 by rules.ts' bound);
 * leading seconds without data are left out, unless the stream began before them (holes inside
 * it, kept so a restored window gives the same shares).
 */
export interface WindowState { s: number, b: string }

export class StateWindow {
  private readonly ring: Uint8Array
  /** Counts per state over the last raiseSec / clearSec buckets (index 0 unused). */
  private readonly raiseCounts: Uint16Array
  private readonly clearCounts: Uint16Array
  private lastSec = -1
  private lastState = NO_DATA
  /** The first second with data since the window was empty (-1: none). */
  private firstSec = -1

  constructor (readonly raiseSec: number, readonly clearSec: number, private readonly states: number) {
    this.ring = new Uint8Array(Math.max(raiseSec, clearSec))
    this.raiseCounts = new Uint16Array(states)
    this.clearCounts = new Uint16Array(states)
  }

  /** Records `state` (1..states-1) at sample time `tMs`. Older samples than the newest second are ignored. */
  add (tMs: number, state: number): void {
    const sec = Math.floor(tMs / 1000)
    if (sec < this.lastSec) return
    const ring = this.ring
    const size = ring.length
    if (sec === this.lastSec) {
      // The latest sample of a second stands for it.
      const i = sec % size
      this.raiseCounts[ring[i]!]!--
      this.clearCounts[ring[i]!]!--
      ring[i] = state
      this.raiseCounts[state]!++
      this.clearCounts[state]!++
      this.lastState = state
      return
    }
    const gap = this.lastSec < 0 ? Infinity : sec - this.lastSec
    if (gap > size) {
      this.reset()
      this.push(sec, state)
    } else {
      const fill = gap <= FILL_SEC ? this.lastState : NO_DATA
      for (let s = this.lastSec + 1; s < sec; s++) this.push(s, fill)
      this.push(sec, state)
    }
    this.lastSec = sec
    this.lastState = state
  }

  private push (s: number, state: number): void {
    const ring = this.ring
    const size = ring.length
    // Evict the buckets leaving each window (the clear window's may be the slot being reused).
    if (s - this.raiseSec >= 0) this.raiseCounts[ring[(s - this.raiseSec) % size]!]!--
    if (s - this.clearSec >= 0) this.clearCounts[ring[(s - this.clearSec) % size]!]!--
    ring[s % size] = state
    if (this.firstSec < 0 && state !== NO_DATA) this.firstSec = s
    this.raiseCounts[state]!++
    this.clearCounts[state]!++
    // Index 0 (no data) is never read; keep it from drifting.
    this.raiseCounts[NO_DATA] = 0
    this.clearCounts[NO_DATA] = 0
  }

  /** Forgets everything (a new patient, or a gap longer than both windows). */
  reset (): void {
    this.ring.fill(NO_DATA)
    this.raiseCounts.fill(0)
    this.clearCounts.fill(0)
    this.lastSec = -1
    this.lastState = NO_DATA
    this.firstSec = -1
  }

  /** What a snapshot keeps of the window (null when it holds nothing). Off the hot path. */
  toState (): WindowState | null {
    if (this.lastSec < 0) return null
    const size = this.ring.length
    let b = ''
    let any = false
    const from = Math.max(0, this.lastSec - size + 1)
    // Seconds without data before the first one with data are left out (restoring reads them as
    // no data), unless the stream began before them: then they are holes inside it, which the
    // shares leave out of the window, and they are kept.
    const holesInside = this.firstSec >= 0 && this.firstSec < from
    for (let s = from; s <= this.lastSec; s++) {
      const state = this.ring[s % size]!
      if (state !== NO_DATA) any = true
      if (b !== '' || state !== NO_DATA || holesInside) b += String.fromCharCode(48 + state)
    }
    return any ? { s: this.lastSec, b } : null
  }

  /**
   * Continues from a snapshot's window (another process', or this one's before a restart): the
   * window is as if its seconds had been added here. A window of another size (the rules
   * changed) keeps the newest seconds that fit. Anything malformed leaves the window empty
   * (the condition then starts its duration again: later, never falsely).
   */
  restoreState (w: WindowState | null | undefined): void {
    this.reset()
    if (w === null || typeof w !== 'object' || !Number.isSafeInteger(w.s) || typeof w.b !== 'string') return
    const n = Math.min(w.b.length, this.ring.length)
    if (n === 0 || w.s - n + 1 < 0) return
    for (let i = w.b.length - n; i < w.b.length; i++) {
      const state = w.b.charCodeAt(i) - 48
      if (!(state >= 0 && state < this.states)) { this.reset(); return }
    }
    for (let i = w.b.length - n, s = w.s - n + 1; i < w.b.length; i++, s++) this.push(s, w.b.charCodeAt(i) - 48)
    // The stream began at the snapshot's first second (its leading holes are left out), or before
    // the ring's reach when it filled the ring: either way the shares are those of the saved window.
    if (this.firstSec >= 0) this.firstSec = Math.min(this.firstSec, w.s - n + 1)
    this.lastSec = w.s
    this.lastState = w.b.charCodeAt(w.b.length - 1) - 48
  }

  /**
   * Share (0..1) of the raise window's seconds with data whose state is in [from, to]; of at least
   * MIN_COVERAGE of the window (see the top of this file).
   */
  raiseShare (from: number, to: number = from): number {
    return this.share(this.raiseCounts, from, to, this.raiseSec)
  }

  /** Share (0..1) of the clear window less its holes whose state is in [from, to], as raiseShare. */
  clearShare (from: number, to: number = from): number {
    return this.share(this.clearCounts, from, to, this.clearSec)
  }

  /** n ÷ (the window less the seconds without data since the stream's first), at least MIN_COVERAGE of it. */
  private share (counts: Uint16Array, from: number, to: number, windowSec: number): number {
    let n = 0
    for (let s = from; s <= to; s++) n += counts[s]!
    if (this.firstSec < 0) return n / windowSec
    let withData = 0
    for (let s = 1; s < counts.length; s++) withData += counts[s]!
    const span = Math.min(windowSec, this.lastSec - this.firstSec + 1)
    return n / Math.max(windowSec - (span - withData), windowSec * MIN_COVERAGE)
  }
}
