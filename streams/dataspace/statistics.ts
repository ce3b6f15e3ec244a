/**
 * Questions that travel instead of data (EHDS Art. 69, statistical data requests): counts, means,
 * quantiles and histograms of one vital sign by age band, sex and ISO week, for permits at level
 * `statistical`. Nothing row-level leaves: InfluxDB computes one summary per encounter (its mean
 * and the time of its first sample in the window), and only cell totals are released.
 *
 * The unit of privacy is the encounter (one patient transport). Each encounter falls into exactly
 * ONE cell — its age band and sex (last assessment) and the ISO week (UTC) of its first sample of
 * the sign in the window — and contributes ONE value, its mean of the sign, clamped to [lo, hi].
 * The cells are the full, data-independent product of the requested dimensions (every age band,
 * the four sexes, every ISO week the window touches), so which cells exist says nothing.
 *
 * Protection:
 * - k: a cell whose count of encounters is 1..k-1 is suppressed (no value at all). With noise on,
 *   the decision is made on the NOISY count, so it is post-processing and keeps the guarantee.
 * - Differential privacy (DATASPACE_STATS_NOISE=laplace, the default): the Laplace mechanism
 *   (Dwork, McSherry, Nissim, Smith 2006) with scale Δ/ε. Adding or removing one encounter
 *   changes one cell by at most: 1 for a count (Δ₁ = 1 over the whole vector of cells), 1 bin
 *   of a histogram (Δ₁ = 1), and max(|lo|, |hi|) for a sum of clamped values. A mean is a noisy
 *   sum over a noisy count, each with ε/2 (sequential composition). Quantiles are read off the
 *   noisy histogram (post-processing: no further budget).
 * See docs/dataspace.md (Statistical queries) for what this does and does not guarantee.
 */
import { randomBytes } from 'node:crypto'
import { VITAL_SIGNS } from '../../decoders/index.js'
import { DataspaceError } from './errors.js'
import { ident, type InfluxReader } from './influx-reader.js'
import type { DataspaceOptions } from './options.js'
import { ageBand, normaliseSex } from './protect.js'

export type Statistic = 'count' | 'mean' | 'histogram' | 'quantiles'
export const STATISTICS: readonly Statistic[] = ['count', 'mean', 'histogram', 'quantiles']
export type GroupKey = 'age_band' | 'sex' | 'week'
export const GROUP_KEYS: readonly GroupKey[] = ['age_band', 'sex', 'week']
export type NoiseMechanism = 'laplace' | 'none'

export interface StatsQuery {
  /** A vital sign's storage field (decoders/vitals.ts). */
  sign: string
  statistic: Statistic
  by: GroupKey[]
  /** Real time, [fromMs, toMs), inside the permit's window. */
  fromMs: number
  toMs: number
  /** Clamping range of each encounter's value; public, never taken from the data. */
  lo: number
  hi: number
  /** Histogram bins (and the resolution of quantiles) over [lo, hi]. */
  bins: number
  /** Quantiles asked for, each in (0, 1). */
  quantiles: number[]
  /** Privacy loss this query spends (ignored without noise). */
  epsilon: number
}

export interface StatsCell {
  age_band?: string
  sex?: string
  week?: string
  /** true: fewer than k encounters (noisy count with noise on); no value is given. */
  suppressed: boolean
  count?: number
  mean?: number | null
  histogram?: Array<number | null>
  quantiles?: Record<string, number | null>
}

export interface StatsResult {
  sign: string
  statistic: Statistic
  by: GroupKey[]
  k: number
  noise: { mechanism: 'laplace', epsilon: number, scale: Record<string, number> } | null
  range: { lo: number, hi: number, bins: number, width: number }
  cells: StatsCell[]
  suppressedCells: number
}

/** Smallest epsilon one query may spend. */
export const MIN_EPSILON = 0.001
/** Most cells one query may ask for (dimensions multiply). */
export const MAX_CELLS = 20_000
const WEEK_MS = 7 * 86_400_000
/** 1970-01-05 was a Monday: ISO weeks start there, in UTC. */
const MONDAY_EPOCH_MS = 4 * 86_400_000

/** The ISO 8601 week of an instant (UTC), as YYYY-Www. */
export function isoWeek (ms: number): string {
  const d = new Date(ms)
  const day = (d.getUTCDay() + 6) % 7 // Monday 0
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3)
  const year = new Date(thursday).getUTCFullYear()
  const week = 1 + Math.floor((thursday - Date.UTC(year, 0, 1)) / WEEK_MS)
  return `${year}-W${String(week).padStart(2, '0')}`
}

/** Every ISO week [fromMs, toMs) touches, in order. */
export function weeksOf (fromMs: number, toMs: number): string[] {
  const out: string[] = []
  let t = Math.floor((fromMs - MONDAY_EPOCH_MS) / WEEK_MS) * WEEK_MS + MONDAY_EPOCH_MS
  for (; t < toMs; t += WEEK_MS) {
    out.push(isoWeek(t))
    if (out.length > MAX_CELLS) break
  }
  return out
}

/** Every age band the options define, then `unknown`. */
export function ageBands (o: Pick<DataspaceOptions, 'ageBandYears' | 'topAgeYears'>): string[] {
  const out: string[] = []
  for (let a = 0; a < o.topAgeYears; a += o.ageBandYears) out.push(ageBand(a, o.ageBandYears, o.topAgeYears))
  out.push(`${o.topAgeYears}+`, 'unknown')
  return out
}

export const SEXES: readonly string[] = ['female', 'male', 'other', 'unknown']

/** Uniform in (0, 1) from 53 random bits of the OS CSPRNG (never 0). */
function uniform (): number {
  const b = randomBytes(8)
  const x = (b.readUInt32BE(0) >>> 5) * 67108864 + (b.readUInt32BE(4) >>> 6)
  return (x + 0.5) / 9007199254740992
}

/** One draw of Laplace(0, scale) by inverse transform. */
export function laplace (scale: number, u = uniform()): number {
  const v = u - 0.5
  return -scale * Math.sign(v) * Math.log(1 - 2 * Math.abs(v))
}

interface EncounterSummary { mean: number, firstMs: number, age: number | null, sex: string | null }

function num (v: unknown): number | null { return typeof v === 'number' && Number.isFinite(v) ? v : null }

function timeRange (fromMs: number, toMs: number): string {
  return `time >= ${Math.floor(fromMs)}ms AND time < ${Math.ceil(toMs)}ms`
}

/** Checks a query's names and numbers; throws AMB_ERR_DATASPACE_BAD_REQUEST. */
export function checkStatsQuery (q: StatsQuery): void {
  const bad = (m: string): never => { throw new DataspaceError('AMB_ERR_DATASPACE_BAD_REQUEST', m) }
  if (!VITAL_SIGNS.some(s => s.field === q.sign)) bad(`sign must be one of ${VITAL_SIGNS.map(s => s.field).join(', ')}`)
  if (!STATISTICS.includes(q.statistic)) bad(`statistic must be one of ${STATISTICS.join(', ')}`)
  if (q.by.some(b => !GROUP_KEYS.includes(b)) || new Set(q.by).size !== q.by.length) bad(`by is a comma list of ${GROUP_KEYS.join(', ')}`)
  if (!(Number.isFinite(q.lo) && Number.isFinite(q.hi) && q.lo < q.hi)) bad('lo and hi must be numbers with lo < hi')
  if (!(Number.isInteger(q.bins) && q.bins >= 1 && q.bins <= 100)) bad('bins must be an integer 1..100')
  if (q.quantiles.length === 0 || q.quantiles.length > 20 || q.quantiles.some(p => !(p > 0 && p < 1))) bad('q is a comma list of 1..20 quantiles, each in (0, 1)')
  // Below 0.001 the noise scales reach the range of floats where rounding stops meaning anything.
  if (!(Number.isFinite(q.epsilon) && q.epsilon >= MIN_EPSILON)) bad(`epsilon must be a number ≥ ${MIN_EPSILON}`)
  if (!(q.fromMs < q.toMs)) bad('from must be before to')
}

export class StatisticsEngine {
  constructor (
    private readonly reader: InfluxReader,
    private readonly o: Pick<DataspaceOptions, 'k' | 'maxEncounters' | 'assessmentLookbackMs' | 'ageBandYears' | 'topAgeYears'>,
    private readonly noise: NoiseMechanism
  ) {}

  /** Runs a query: per-encounter summaries from InfluxDB, then cells, suppression and noise. */
  async run (q: StatsQuery, signal?: AbortSignal): Promise<StatsResult> {
    checkStatsQuery(q)
    const dims: Array<{ key: GroupKey, values: string[] }> = q.by.map(key => ({
      key,
      values: key === 'age_band' ? ageBands(this.o) : key === 'sex' ? [...SEXES] : weeksOf(q.fromMs, q.toMs)
    }))
    const cellCount = dims.reduce((n, d) => n * d.values.length, 1)
    if (cellCount > MAX_CELLS) throw new DataspaceError('AMB_ERR_DATASPACE_TOO_LARGE', `the query spans ${cellCount} cells (most ${MAX_CELLS}): group by fewer dimensions or ask for a shorter window`)
    const summaries = await this.summaries(q, signal)
    return this.release(q, dims, summaries)
  }

  /** One row per encounter, computed by InfluxDB: the mean of the sign and its first instant. */
  private async summaries (q: StatsQuery, signal?: AbortSignal): Promise<EncounterSummary[]> {
    const f = ident(q.sign)
    const where = `WHERE ${timeRange(q.fromMs, q.toMs)} GROUP BY "encounter"`
    const byEnc = new Map<string, EncounterSummary>()
    const tooMany = (): never => { throw new DataspaceError('AMB_ERR_DATASPACE_TOO_LARGE', `the window holds more than ${this.o.maxEncounters} encounters; ask for a shorter window`) }
    for await (const s of this.reader.stream(`SELECT mean(${f}) AS "mean" FROM "vitals" ${where}`, signal)) {
      const enc = s.tags.encounter ?? ''
      const m = num(s.values[0]?.[1])
      if (enc === '' || m === null) continue
      byEnc.set(enc, { mean: m, firstMs: NaN, age: null, sex: null })
      if (byEnc.size > this.o.maxEncounters) tooMany()
    }
    for await (const s of this.reader.stream(`SELECT first(${f}) FROM "vitals" ${where}`, signal)) {
      const e = byEnc.get(s.tags.encounter ?? '')
      const t = num(s.values[0]?.[0])
      if (e !== undefined && t !== null) e.firstMs = t / 1000 // epoch=u
    }
    const lb = this.o.assessmentLookbackMs
    const dq = `SELECT last("age_years") AS "age", last("sex") AS "sex" FROM "assessment" WHERE ${timeRange(q.fromMs - lb, q.toMs + lb)} GROUP BY "encounter"`
    for await (const s of this.reader.stream(dq, signal)) {
      const e = byEnc.get(s.tags.encounter ?? '')
      const row = s.values[0]
      if (e === undefined || row === undefined) continue
      const ai = s.columns.indexOf('age')
      const si = s.columns.indexOf('sex')
      e.age = ai >= 0 ? num(row[ai]) : null
      e.sex = si >= 0 && typeof row[si] === 'string' ? row[si] as string : null
    }
    return [...byEnc.values()].filter(e => Number.isFinite(e.firstMs))
  }

  private cellKey (e: EncounterSummary, by: GroupKey[]): string {
    return by.map(b => {
      if (b === 'age_band') return e.age !== null && e.age > 0 ? ageBand(e.age, this.o.ageBandYears, this.o.topAgeYears) : 'unknown'
      if (b === 'sex') return normaliseSex(e.sex)
      return isoWeek(e.firstMs)
    }).join('\0')
  }

  private release (q: StatsQuery, dims: Array<{ key: GroupKey, values: string[] }>, summaries: EncounterSummary[]): StatsResult {
    const k = this.o.k
    const width = (q.hi - q.lo) / q.bins
    const members = new Map<string, number[]>()
    for (const e of summaries) {
      const key = this.cellKey(e, q.by)
      let list = members.get(key)
      if (list === undefined) members.set(key, list = [])
      list.push(Math.min(q.hi, Math.max(q.lo, e.mean)))
    }
    const dp = this.noise === 'laplace'
    const eps = q.epsilon
    const sumSensitivity = Math.max(Math.abs(q.lo), Math.abs(q.hi))
    const scale: Record<string, number> = q.statistic === 'mean'
      ? { count: 2 / eps, sum: 2 * sumSensitivity / eps }
      : q.statistic === 'count' ? { count: 1 / eps } : { bin: 1 / eps }
    const cells: StatsCell[] = []
    let suppressedCells = 0
    for (const combo of product(dims.map(d => d.values))) {
      const values = members.get(combo.join('\0')) ?? []
      const cell: StatsCell = { suppressed: false }
      dims.forEach((d, i) => { cell[d.key] = combo[i]! })
      const n = values.length
      if (q.statistic === 'count') {
        const c = dp ? n + laplace(scale.count!) : n
        if (hidden(c, k, dp)) cell.suppressed = true
        else cell.count = dp ? Math.max(0, Math.round(c)) : n
      } else if (q.statistic === 'mean') {
        const c = dp ? n + laplace(scale.count!) : n
        const sum = values.reduce((a, b) => a + b, 0) + (dp ? laplace(scale.sum!) : 0)
        if (hidden(c, k, dp)) cell.suppressed = true
        else cell.mean = c >= 1 ? round1(Math.min(q.hi, Math.max(q.lo, sum / c))) : null
      } else {
        const hist = new Array<number>(q.bins).fill(0)
        for (const v of values) hist[Math.min(q.bins - 1, Math.floor((v - q.lo) / width))]!++
        const released = dp ? hist.map(c => Math.max(0, Math.round(c + laplace(scale.bin!)))) : hist
        const total = released.reduce((a, b) => a + b, 0)
        if (hidden(total, k, dp)) cell.suppressed = true
        else if (q.statistic === 'histogram') {
          // Without noise a bin of 1..k-1 encounters would single them out within the cell.
          cell.histogram = dp ? released : released.map(c => c > 0 && c < k ? null : c)
        } else {
          cell.quantiles = Object.fromEntries(q.quantiles.map(p => [String(p), quantileOf(released, p, q.lo, width)]))
        }
      }
      if (cell.suppressed) suppressedCells++
      cells.push(cell)
    }
    return {
      sign: q.sign,
      statistic: q.statistic,
      by: q.by,
      k,
      noise: dp ? { mechanism: 'laplace', epsilon: eps, scale } : null,
      range: { lo: q.lo, hi: q.hi, bins: q.bins, width },
      cells,
      suppressedCells
    }
  }
}

/**
 * Suppressed: 1..k-1 encounters (exact), or, noise on, a noisy count that rounds to below k (the
 * count as it would be released; 0 is hidden too, as noise cannot tell it from 1).
 */
function hidden (count: number, k: number, dp: boolean): boolean {
  return dp ? Math.round(count) < k : count > 0 && count < k
}

function round1 (v: number): number { return Math.round(v * 10) / 10 }

/** The p-quantile of a histogram, linear within its bin; null for an empty histogram. */
export function quantileOf (hist: readonly number[], p: number, lo: number, width: number): number | null {
  const total = hist.reduce((a, b) => a + b, 0)
  if (total <= 0) return null
  const target = p * total
  let acc = 0
  for (let i = 0; i < hist.length; i++) {
    const c = hist[i]!
    if (c > 0 && acc + c >= target) return round1(lo + width * (i + (target - acc) / c))
    acc += c
  }
  return round1(lo + width * hist.length)
}

function * product (lists: string[][]): Generator<string[]> {
  if (lists.length === 0) { yield []; return }
  const [head, ...rest] = lists
  for (const h of head!) for (const r of product(rest)) yield [h, ...r]
}
