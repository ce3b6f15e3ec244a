/**
 * The core of the planned `aggregated` protection level (issue #10, item 7): one summary per
 * encounter instead of rows. NOT yet a grantable level: no permit, route, CLI or serializer uses
 * this module yet (see the issue's closing note); it holds the summarising rules so that wiring
 * them in is mechanical.
 *
 * Per encounter and granted value field: the number of samples, and the minimum, median and
 * maximum, each binned down to the field's width (BIN_WIDTHS); the duration binned down to 10
 * minutes; the week (Monday, UTC) of the SHIFTED first sample and no other time; and a subject
 * that is a fresh random UUID per extract, so no pseudonym is stable across extracts.
 *
 * What this does not give: the summary of one encounter is the same in every extract that holds
 * it, so the binned values themselves can still match two extracts' rows when few encounters
 * share them. k-anonymity over the released attributes (age band, sex) is the caller's job
 * (k-anonymity.ts), as for level anonymised.
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
  /** Monday (UTC, YYYY-MM-DD) of the week of the shifted first sample. */
  week: string
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

/** Monday of the UTC week holding `ms`, as YYYY-MM-DD. */
export function weekOf (ms: number): string {
  const d = new Date(ms)
  const day = (d.getUTCDay() + 6) % 7
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day)).toISOString().slice(0, 10)
}

/**
 * Summarises one encounter's rows (`timeUs` real, `values` one per `fields`) under `shiftUs`.
 * Fields without a bin width are refused: summarising them would release exact values.
 */
export function summariseEncounter (
  rows: ReadonlyArray<{ timeUs: number, values: ReadonlyArray<number | string | null> }>,
  fields: readonly string[],
  shiftUs: number
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
    week: weekOf(Math.floor((first + shiftUs) / 1000)),
    durationMin: binDown((last - first) / 1000, DURATION_BIN_MS) / 60_000,
    fields: out
  }
}
