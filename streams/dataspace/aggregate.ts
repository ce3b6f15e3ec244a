/**
 * The summarising rules of the `aggregated` protection level (issue #10, item 7): one summary per
 * encounter instead of rows (summary-extract.ts applies them to an extract).
 *
 * Per encounter and granted value field: the number of samples, and the minimum, median and
 * maximum, each binned down to the field's width (BIN_WIDTHS); the duration binned down to 10
 * minutes; no time at all; and a subject that is a fresh random UUID per extract, so no
 * pseudonym is stable across extracts.
 *
 * Not released, on review: the week of the shifted first sample (as first drafted). The shift is
 * fixed per (permit, encounter), so that week was the same in every extract of one permit and
 * spread over ~52 values: a near-unique key joining two aggregated extracts of the permit whatever
 * their random subjects, while telling a researcher nothing (a shift of up to ±182 days makes the
 * season noise).
 *
 * A summary is a function of the exact values, so anyone holding an encounter's exact values
 * (another permit's extract at level anonymised, the live stream) can compute it. That is why
 * the extract releases a summary only when at least k encounters share every released value
 * (summary-extract.ts): a link from exact values then lands on k identical rows, never on one.
 */
import { randomUUID } from 'node:crypto'

/**
 * Bin widths at level aggregated, in each field's stored unit. These are privacy generalisation
 * widths chosen in issue #10 (HR to 5 bpm, SpO2 to 2 %, blood pressure to 10 mmHg), not clinical
 * thresholds; fields not named here are not summarised.
 */
export const BIN_WIDTHS: Readonly<Record<string, number>> = {
  heart_rate: 5,
  pulse_rate: 5,
  spo2: 2,
  nibp_systolic: 10,
  nibp_diastolic: 10,
  nibp_mean: 10
}

/** Durations are released in whole 10-minute steps (issue #10). */
export const DURATION_BIN_MS = 10 * 60_000
/** Sample counts are released in steps of 10, so a count is not a fingerprint by itself. */
export const COUNT_BIN = 10

export interface FieldSummary { count: number, min: number, median: number, max: number }

export interface EncounterSummary {
  /** Random per extract: never equal across two extracts of the same encounter. */
  subject: string
  /** Duration from first to last sample, binned down to DURATION_BIN_MS, minutes. */
  durationMin: number
  /** One per requested field; null when the encounter has no value for it. */
  fields: Record<string, FieldSummary | null>
}

/** `v` rounded down to a multiple of `width` (no float noise for widths like 0.5). */
export function binDown (v: number, width: number): number {
  return Math.round(Math.floor(v / width) * width * 1e6) / 1e6
}

function median (sorted: number[]): number {
  const m = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2
}

/**
 * Summarises one encounter's rows (`timeUs`, `values` one per `fields`). Fields without a bin
 * width are refused: summarising them would release exact values.
 */
export function summariseEncounter (
  rows: ReadonlyArray<{ timeUs: number, values: ReadonlyArray<number | string | null> }>,
  fields: readonly string[]
): EncounterSummary | null {
  for (const f of fields) if (BIN_WIDTHS[f] === undefined) throw new RangeError(`no bin width for ${f}`)
  if (rows.length === 0) return null
  let first = Infinity
  let last = -Infinity
  const columns: number[][] = fields.map(() => [])
  for (const r of rows) {
    if (r.timeUs < first) first = r.timeUs
    if (r.timeUs > last) last = r.timeUs
    for (let i = 0; i < fields.length; i++) {
      const v = r.values[i]
      if (typeof v === 'number' && Number.isFinite(v)) columns[i]!.push(v)
    }
  }
  const out: Record<string, FieldSummary | null> = {}
  fields.forEach((f, i) => {
    const col = columns[i]!.sort((a, b) => a - b)
    const w = BIN_WIDTHS[f]!
    out[f] = col.length === 0
      ? null
      : { count: binDown(col.length, COUNT_BIN), min: binDown(col[0]!, w), median: binDown(median(col), w), max: binDown(col[col.length - 1]!, w) }
  })
  return {
    subject: randomUUID(),
    durationMin: binDown((last - first) / 1000, DURATION_BIN_MS) / 60_000,
    fields: out
  }
}

/** The value fields a permit at level aggregated can release (as summaries). */
export const SUMMARISABLE_FIELDS: readonly string[] = Object.freeze(Object.keys(BIN_WIDTHS))

/** The datasets level aggregated serves: per-encounter summaries of vital signs only. */
export const AGGREGATED_DATASETS: readonly string[] = Object.freeze(['vitals'])

/** Output columns of a summary, after `subject`, `age_band`, `sex`: duration then four per field. */
export function summaryColumns (fields: readonly string[]): string[] {
  return ['duration_min', ...fields.flatMap(f => [`${f}_count`, `${f}_min`, `${f}_median`, `${f}_max`])]
}

/** A summary's values in summaryColumns(fields) order (null where the encounter has no value). */
export function summaryValues (s: EncounterSummary, fields: readonly string[]): Array<number | null> {
  const out: Array<number | null> = [s.durationMin]
  for (const f of fields) {
    const v = s.fields[f] ?? null
    if (v === null) out.push(null, null, null, null)
    else out.push(v.count, v.min, v.median, v.max)
  }
  return out
}

/**
 * What a grant at level aggregated may name: `vitals` only, and of its fields the summarisable
 * ones and the demographics (age band, sex). Returns the problem, or null when the grant fits;
 * `fields` undefined means "the level's default", which is filled in by `aggregatedDefaultFields`.
 */
export function aggregatedGrantProblem (datasets: readonly string[], fields: Readonly<Record<string, readonly string[] | undefined>> | undefined): string | null {
  const other = datasets.filter(d => !AGGREGATED_DATASETS.includes(d))
  if (other.length > 0) return `level aggregated summarises ${AGGREGATED_DATASETS.join(', ')} only, not ${other.join(', ')}`
  for (const d of datasets) {
    const bad = (fields?.[d] ?? []).filter(f => !SUMMARISABLE_FIELDS.includes(f) && f !== 'age' && f !== 'sex')
    if (bad.length > 0) return `level aggregated has no summary of ${bad.join(', ')}; it summarises ${SUMMARISABLE_FIELDS.join(', ')} (and age, sex)`
  }
  return null
}

/** The fields a grant at level aggregated gets by default. */
export function aggregatedDefaultFields (): string[] { return [...SUMMARISABLE_FIELDS, 'age', 'sex'] }
