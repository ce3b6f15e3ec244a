/**
 * An extract's output format: a head, one string per batch of records, a tail. Each batch is
 * serialised as one string (one write, one chunk on the wire) so the per-row cost is string
 * building only.
 */
import type { ExtractPlan, ExtractRecord } from '../extract.js'
import type { ProtectionLevel } from '../permit.js'

export type FormatName = 'ndjson' | 'csv' | 'fhir'
export const FORMAT_NAMES: readonly FormatName[] = ['ndjson', 'csv', 'fhir']

export interface Serializer {
  readonly contentType: string
  head (): string
  batch (records: readonly ExtractRecord[]): string
  tail (): string
}

export interface SerializerContext {
  plan: ExtractPlan
  level: ProtectionLevel
  nowMs: number
  /** URL of the local FHIR CodeSystem for findings no standard code states (DATASPACE_FHIR_CODE_SYSTEM). */
  codeSystem?: string
}

/** The age column's name says what it holds: years at pseudonymised, a band otherwise. */
export function ageColumn (level: ProtectionLevel): string {
  return level === 'pseudonymised' ? 'age' : 'age_band'
}
