/**
 * Dataspace tunables with their defaults and units. gateway/config.ts reads this table for the
 * options it exposes as environment variables; keep one copy.
 */
export interface DataspaceOptions {
  /** k of k-anonymity on extracts at level anonymised: the fewest encounters an equivalence class may hold. */
  k: number
  /** Rows per chunk asked of InfluxDB (`chunk_size`): bounds what one extract holds in memory. */
  chunkRows: number
  /** Most distinct encounters (and position cells) an extract's first pass may track. */
  maxEncounters: number
  /** A live-stream client is cut off once this many bytes wait in its send buffer. */
  liveMaxBufferBytes: number
  /** Largest time shift at level anonymised, in days either way. */
  maxShiftDays: number
  /** Width of an age band at level anonymised, in years; ages from `topAgeYears` share one band. */
  ageBandYears: number
  topAgeYears: number
  /** Grid step for coarsened positions, in degrees of latitude (0.01° ≈ 1.1 km). */
  cellDegrees: number
  /** How far around an extract's window the encounter's assessment (age, sex) is looked for, in ms. */
  assessmentLookbackMs: number
  /** How long the catalogue's record counts and coverage are cached, in ms. */
  catalogCacheMs: number
  /** InfluxDB query timeout until the response starts, in ms. */
  queryTimeoutMs: number
}

export const DATASPACE_DEFAULTS: Readonly<DataspaceOptions> = Object.freeze({
  k: 5,
  chunkRows: 5000,
  maxEncounters: 100_000,
  liveMaxBufferBytes: 1024 * 1024,
  maxShiftDays: 182,
  ageBandYears: 10,
  topAgeYears: 90,
  cellDegrees: 0.01,
  assessmentLookbackMs: 24 * 3_600_000,
  catalogCacheMs: 60_000,
  queryTimeoutMs: 30_000
})
