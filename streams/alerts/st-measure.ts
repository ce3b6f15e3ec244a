/**
 * ST deviation measured on the streamed 12-lead waveform (pure): R-peak detection, a median beat
 * per lead, the QRS onset and the J point (QRS end) on the median beats, the isoelectric PR
 * baseline, and the ST deviation at J+60 ms against it. This is the usual computerised method
 * (median-beat analysis: Kligfield P et al., AHA/ACCF/HRS recommendations for the standardization
 * and interpretation of the ECG, Part I, Circulation 2007;115:1306-24; ST at J+60 ms: the
 * measurement point the device contract asks for, also used by the Glasgow and Philips programs).
 *
 * Cost: O(leads × samples) for detection and O(leads × beats × window) for the medians, of which
 * only the median-beat samples the search reads are formed (about half the window); the engine
 * runs it once per 10 s per unit (figures: loadtest/bench-stemi.ts). No allocation proportional
 * to the samples: the working arrays are module scratch, grown once (the function is
 * synchronous, so one set serves every unit). test/st-measure-reference.test.ts holds it equal to
 * the plain computation (every median formed, sorted percentile).
 */

export interface StMeasureOptions {
  /** Offset of the ST measurement point after the J point, ms. */
  jPlusMs: number
  /** Fewest beats a median beat needs. */
  minBeats: number
}

export const ST_MEASURE_DEFAULTS: Readonly<StMeasureOptions> = Object.freeze({
  jPlusMs: 60, // device contract: ST at J+60 ms (Kligfield 2007 recommends reporting J+60)
  minBeats: 4
})

export type StMeasurement =
  | { ok: true, stUv: number[], beats: number, heartRateBpm: number, qrsOnsetMs: number, jPointMs: number, baselineMs: number }
  | { ok: false, reason: string }

/** Refractory period between two R peaks, s (no heart beats faster than 300 bpm). */
const REFRACTORY_S = 0.2
/**
 * Median beat window around the fiducial point, s: before it, the QRS onset (≤ 120 ms) and the
 * PR search (120 ms) with a margin; after it, the J point (≤ 140 ms) and J+60 ms with a margin.
 */
const PRE_S = 0.26
const POST_S = 0.3

/**
 * Measures ST deviation per lead. `leads` holds every lead's samples in µV over the same stretch
 * of time (same length); `fs` the sample rate.
 */
export function measureSt (leads: ReadonlyArray<ArrayLike<number>>, fs: number, options: Partial<StMeasureOptions> = {}): StMeasurement {
  const o = { ...ST_MEASURE_DEFAULTS, ...options }
  const nLeads = leads.length
  const n = leads[0]?.length ?? 0
  if (nLeads === 0 || n === 0) return { ok: false, reason: 'no samples' }
  for (const l of leads) if (l.length !== n) return { ok: false, reason: 'leads differ in length' }

  const peaks = detectQrs(leads, fs)
  const pre = Math.round(PRE_S * fs)
  const post = Math.round(POST_S * fs)
  const usable = peaks.filter(p => p - pre >= 0 && p + post < n)
  if (usable.length < o.minBeats) return { ok: false, reason: `${usable.length} complete beats, need ${o.minBeats}` }
  let rrSum = 0
  for (let i = 1; i < peaks.length; i++) rrSum += peaks[i]! - peaks[i - 1]!
  const heartRateBpm = peaks.length > 1 ? 60 * fs * (peaks.length - 1) / rrSum : 0

  const len = pre + post + 1
  const med = new MedianBeats(leads, usable, pre, len, Math.max(1, Math.round(0.004 * fs)))
  // QRS: the fastest part of the median beat near the fiducial point.
  let peak = pre
  for (let i = pre - Math.round(0.06 * fs); i <= pre + Math.round(0.06 * fs); i++) if (med.velocity(i) > med.velocity(peak)) peak = i
  const thr = 0.12 * med.velocity(peak)
  // QRS onset: walking back, velocity stays under the threshold for 10 ms; J: the same forwards.
  const hold = Math.max(2, Math.round(0.01 * fs))
  let onset = peak
  for (let run = 0; onset > hold && run < hold; onset--) run = med.velocity(onset) < thr ? run + 1 : 0
  onset += hold
  let j = peak
  for (let run = 0; j < len - hold && run < hold; j++) run = med.velocity(j) < thr ? run + 1 : 0
  j -= hold
  if (peak - onset > 0.12 * fs || j - peak > 0.14 * fs) return { ok: false, reason: 'QRS boundaries not found (wide or noisy QRS)' }

  // Isoelectric baseline: the flattest 20 ms in the 120 ms before the QRS onset (the PR segment).
  const seg = Math.max(2, Math.round(0.02 * fs))
  let best = -1
  let bestSum = Infinity
  for (let s = Math.max(1, onset - Math.round(0.12 * fs)); s + seg <= onset; s++) {
    let sum = 0
    for (let i = s; i < s + seg; i++) sum += med.velocity(i)
    if (sum < bestSum) { bestSum = sum; best = s }
  }
  if (best < 0) return { ok: false, reason: 'no PR segment before the QRS' }

  const at = j + Math.round(o.jPlusMs * fs / 1000)
  if (at + 2 >= len) return { ok: false, reason: 'J+60 ms beyond the median beat' }
  const stUv: number[] = []
  for (let l = 0; l < nLeads; l++) {
    let b = 0
    for (let i = best; i < best + seg; i++) b += med.at(l, i)
    b /= seg
    // ±2 samples around the measurement point: a 5-sample mean (10 ms at 500 Hz).
    let v = 0
    for (let i = at - 2; i <= at + 2; i++) v += med.at(l, i)
    stUv.push(Math.round(v / 5 - b))
  }
  const ms = (i: number): number => Math.round((i - pre) * 1000 / fs)
  return { ok: true, stUv, beats: usable.length, heartRateBpm, qrsOnsetMs: ms(onset), jPointMs: ms(j), baselineMs: ms(best) }
}

/**
 * QRS detection on the summed absolute slope of all leads (smoothed over 40 ms), with an
 * adaptive threshold (40 % of the 98th-percentile peak) and a 200 ms refractory period, as in
 * Pan & Tompkins (IEEE TBME 1985) applied to the spatial velocity. Returns sample indices of the
 * fiducial points (slope-energy maxima).
 */
export function detectQrs (leads: ReadonlyArray<ArrayLike<number>>, fs: number): number[] {
  const n = leads[0]!.length
  if (qrsE.length < n) { qrsE = new Float32Array(n); qrsSm = new Float32Array(n) }
  const e = qrsE
  const sm = qrsSm
  e.fill(0, 0, n)
  for (const l of leads) {
    for (let i = 1; i < n - 1; i++) e[i]! += Math.abs(l[i + 1]! - l[i - 1]!)
  }
  const w = Math.max(1, Math.round(0.04 * fs))
  // The last w/2 entries are never written below: zero, as in a fresh array.
  sm.fill(0, 0, n)
  let acc = 0
  for (let i = 0; i < n; i++) {
    acc += e[i]!
    if (i >= w) acc -= e[i - w]!
    sm[i - (w >> 1) < 0 ? 0 : i - (w >> 1)] = acc / w
  }
  // The 98th percentile on every 4th sample (a QRS lasts ~40 samples, so none is missed).
  const thr = 0.4 * percentileOfEvery4th(sm, n, 0.98)
  const refractory = Math.round(REFRACTORY_S * fs)
  const peaks: number[] = []
  let i = 0
  while (i < n) {
    if (sm[i]! < thr) { i++; continue }
    // Local maximum of this supra-threshold run.
    let m = i
    while (i < n && sm[i]! >= thr) { if (sm[i]! > sm[m]!) m = i; i++ }
    const last = peaks[peaks.length - 1]
    if (last !== undefined && m - last < refractory) {
      if (sm[m]! > sm[last]!) peaks[peaks.length - 1] = m
    } else {
      peaks.push(m)
    }
  }
  return peaks
}

/**
 * The value at rank floor(q × (m − 1)) (0 = smallest) of x[0], x[4], x[8] … below n (m of them):
 * what sorting those values and indexing would give, without the sort. Only the top m − rank
 * values matter, kept in ascending order in a small scratch array (26 of 1,250 for 10 s at
 * 500 Hz): one comparison per value, an insertion now and then. x holds no NaN (sums of |slope|).
 */
function percentileOfEvery4th (x: Float32Array, n: number, q: number): number {
  const m = Math.ceil(n / 4)
  const k = m - Math.floor(q * (m - 1))
  if (qrsTop.length < k) qrsTop = new Float32Array(k)
  const top = qrsTop
  let have = 0
  for (let i = 0; i < n; i += 4) {
    const v = x[i]!
    if (have < k) {
      let j = have++
      while (j > 0 && top[j - 1]! > v) { top[j] = top[j - 1]!; j-- }
      top[j] = v
    } else if (v > top[0]!) {
      // Drop the smallest of the top k, insert v in order.
      let j = 0
      while (j + 1 < k && top[j + 1]! < v) { top[j] = top[j + 1]!; j++ }
      top[j] = v
    }
  }
  return top[0]!
}

/** percentileOfEvery4th's top values (scratch). */
let qrsTop = new Float32Array(0)
/** detectQrs' slope energy and its smoothed copy (scratch, grown to the longest window seen). */
let qrsE = new Float32Array(0)
let qrsSm = new Float32Array(0)
/** MedianBeats' scratch (one analysis at a time: measureSt is synchronous), grown as needed. */
let medCol = new Float64Array(0)
let medOrder = new Int32Array(0)
let medStart = new Int32Array(0)
let medOut = new Float64Array(0)
let medVel = new Float64Array(0)
/** Per median-beat column, bits: 1 once its medians are in medOut, 2 once its velocity is in medVel. */
let medDone = new Uint8Array(0)

/**
 * The median beat of every lead: sample by sample, the median across the beats aligned on their
 * fiducial points, and its spatial velocity (sum over the leads of |slope| over ±d samples).
 * Computed column by column when measureSt first reads it: the search for the QRS, the J point
 * and the PR segment reads about half of the window's columns, and a column no step reads cannot
 * change the result. Each column is insertion-sorted starting from the order the lead's last
 * column left (the search walks column after column, and neighbouring samples, 2 ms apart, keep
 * nearly the same order across the beats, so a column costs about one pass instead of a full
 * sort; the median is the same whatever the sort).
 */
class MedianBeats {
  private readonly nLeads: number
  private readonly nb: number

  constructor (private readonly leads: ReadonlyArray<ArrayLike<number>>, peaks: readonly number[], pre: number, private readonly len: number, private readonly d: number) {
    const nb = this.nb = peaks.length
    const nLeads = this.nLeads = leads.length
    if (medCol.length < nb) { medCol = new Float64Array(nb); medStart = new Int32Array(nb) }
    if (medOrder.length < nLeads * nb) medOrder = new Int32Array(nLeads * nb)
    if (medOut.length < nLeads * len) medOut = new Float64Array(nLeads * len)
    if (medDone.length < len) { medDone = new Uint8Array(len); medVel = new Float64Array(len) }
    medDone.fill(0, 0, len)
    for (let b = 0; b < nb; b++) medStart[b] = peaks[b]! - pre
    for (let l = 0; l < nLeads; l++) for (let b = 0; b < nb; b++) medOrder[l * nb + b] = b
  }

  /** Median beat of lead `l` at sample k of the window. */
  at (l: number, k: number): number {
    if ((medDone[k]! & 1) === 0) this.column(k)
    return medOut[l * this.len + k]!
  }

  /** Spatial velocity at sample i (0 within d of either end, where the slope is not defined). */
  velocity (i: number): number {
    const { d, len } = this
    if (i < d || i >= len - d) return 0
    if ((medDone[i]! & 2) !== 0) return medVel[i]!
    if ((medDone[i - d]! & 1) === 0) this.column(i - d)
    if ((medDone[i + d]! & 1) === 0) this.column(i + d)
    // Summed lead by lead in order, from 0: the same floating-point sum as a full pass.
    let v = 0
    for (let l = 0, row = 0; l < this.nLeads; l++, row += len) v += Math.abs(medOut[row + i + d]! - medOut[row + i - d]!)
    medVel[i] = v
    medDone[i] = medDone[i]! | 2
    return v
  }

  private column (k: number): void {
    const { nb, len } = this
    const col = medCol
    const start = medStart
    const h = nb >> 1
    const odd = nb % 2 === 1
    for (let l = 0; l < this.nLeads; l++) {
      const s = this.leads[l]!
      const ob = l * nb
      for (let b = 0; b < nb; b++) col[b] = s[start[medOrder[ob + b]!]! + k]!
      for (let i = 1; i < nb; i++) {
        const x = col[i]!
        const o = medOrder[ob + i]!
        let j = i - 1
        while (j >= 0 && col[j]! > x) { col[j + 1] = col[j]!; medOrder[ob + j + 1] = medOrder[ob + j]!; j-- }
        col[j + 1] = x
        medOrder[ob + j + 1] = o
      }
      medOut[l * len + k] = odd ? col[h]! : (col[h - 1]! + col[h]!) / 2
    }
    medDone[k] = medDone[k]! | 1
  }
}
