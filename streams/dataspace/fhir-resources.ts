/**
 * FHIR R4 resources for the datasets other than vitals (those are in formats/fhir.ts), built from
 * protected extract records: the protection was applied before (pseudonym, shifted time, banded
 * age, coarsened cell), so nothing here can see an identifier. Codes and their sources:
 * fhir-codes.ts.
 *
 * - ecg: one `Observation` per run of equally spaced samples of one encounter, coded with LOINC
 *   34534-8 (12 lead EKG panel) and MDC_ECG_ELEC_POTL, one `component` per lead (MDC code) with a
 *   `valueSampledData`: origin 0 µV, `period` the sample interval in ms, `factor` 1 (values are
 *   stored in µV), `dimensions` 1, `data` the values ("E" where a lead has no sample).
 * - alerts: `DetectedIssue` (see alertIssue for why not Flag).
 * - position: an `Observation` with latitude, longitude, speed and heading as components, at the
 *   level's resolution (cell centres and binned speed/heading at level anonymised).
 * - assessment: one `Observation` per finding (LAMS, FAST, suspected STEMI, last known well).
 */
import { randomUUID } from 'node:crypto'
import { VITAL_SIGNS } from '../../decoders/index.js'
import type { ExtractRecord } from './extract.js'
import {
  ECG_PANEL_LOINC, ECG_POTL_MDC, LEAD_MDC, LOINC, MDC, OBSERVATION_CATEGORY, SNOMED_STEMI, SNOMED_STROKE, UCUM, local, type LocalCode
} from './fhir-codes.js'
import { formatUs } from './protect.js'

export type Resource = Record<string, unknown>

const category = (code: string, display: string): unknown[] => [{ coding: [{ system: OBSERVATION_CATEGORY, code, display }] }]
const subjectRef = (subject: string): Resource => ({ reference: `urn:uuid:${subject}`, type: 'Patient' })
const LOINC_BY_FIELD = new Map(VITAL_SIGNS.filter(s => s.loinc !== null).map(s => [s.field, s]))

/** Samples further apart than the run's interval by more than this start a new Observation, µs. */
const INTERVAL_TOLERANCE_US = 1
/** A lone sample's interval when none is known yet: the contract's 12-lead rate of 500 Hz (DESIGN.md). */
const DEFAULT_PERIOD_US = 2000

/**
 * Splits one encounter's ECG records (time order) into runs of equal sample spacing and returns
 * one Observation per run. `lastPeriodUs` carries an encounter's interval across batches.
 */
export function ecgObservations (records: readonly ExtractRecord[], columns: readonly string[], lastPeriodUs: Map<string, number>): Resource[] {
  const out: Resource[] = []
  let start = 0
  while (start < records.length) {
    const first = records[start]!
    let end = start + 1
    let period = end < records.length ? records[end]!.timeUs - first.timeUs : NaN
    if (!(period > 0)) period = NaN
    while (end < records.length && Number.isFinite(period) && Math.abs(records[end]!.timeUs - records[end - 1]!.timeUs - period) <= INTERVAL_TOLERANCE_US) end++
    if (!Number.isFinite(period)) period = lastPeriodUs.get(first.subject) ?? DEFAULT_PERIOD_US
    lastPeriodUs.set(first.subject, period)
    out.push(ecgObservation(records.slice(start, end), columns, period))
    start = end
  }
  return out
}

function ecgObservation (run: readonly ExtractRecord[], columns: readonly string[], periodUs: number): Resource {
  const first = run[0]!
  const last = run[run.length - 1]!
  const component = columns.flatMap((lead, i) => {
    const mdc = LEAD_MDC[lead]
    // A lead the device did not record in this run has no component (not a row of "E").
    if (mdc === undefined || !run.some(r => typeof r.values[i] === 'number')) return []
    const data = run.map(r => { const v = r.values[i]; return typeof v === 'number' ? String(v) : 'E' }).join(' ')
    return [{
      code: { coding: [{ system: MDC, ...mdc }] },
      valueSampledData: {
        origin: { value: 0, unit: 'µV', system: UCUM, code: 'uV' },
        period: periodUs / 1000,
        factor: 1,
        dimensions: 1,
        data
      }
    }]
  })
  return {
    resourceType: 'Observation',
    id: randomUUID(),
    status: 'final',
    category: category('procedure', 'Procedure'),
    code: { coding: [{ system: LOINC, code: ECG_PANEL_LOINC, display: '12 lead EKG panel' }, { system: MDC, ...ECG_POTL_MDC }] },
    subject: subjectRef(first.subject),
    effectivePeriod: { start: formatUs(first.timeUs), end: formatUs(last.timeUs) },
    component
  }
}

const SEVERITY: Readonly<Record<string, string>> = { high: 'high', medium: 'moderate', low: 'low' }
const KIND_CODES = new Set(['threshold', 'news2', 'device_alarm', 'stemi', 'stroke', 'signal_loss'])
const EVENT_CODES = new Set(['raised', 'updated', 'escalated', 'acknowledged', 'cleared'])

/**
 * An alert event as a `DetectedIssue`, not a `Flag`: a Flag is a standing warning shown to anyone
 * who opens the record (R4 Flag scope: "prospective warnings"), with no detection instant, no
 * severity and no evidence. The alert engine's events are findings an automated system made at
 * an instant, with a priority and the measurement behind them: DetectedIssue has
 * `identifiedDateTime`, `severity` and `evidence`, which is what FHIR's decision-support
 * resources use. The event (raised, escalated, cleared …) is a `meta.tag`; the triggering
 * value a contained Observation referenced from `evidence`. No message or device alarm code is
 * ever in the record to begin with (datasets.ts).
 */
export function alertIssue (r: ExtractRecord, columns: readonly string[], codeSystem: string): Resource {
  const get = (f: string): string | number | null => { const i = columns.indexOf(f); return i < 0 ? null : r.values[i] ?? null }
  const kind = get('kind')
  const event = get('event')
  const key = get('key')
  const priority = get('priority')
  const value = get('value')
  const coding: unknown[] = []
  if (typeof kind === 'string') coding.push(local(codeSystem, `alert-${KIND_CODES.has(kind) ? kind : 'other'}` as LocalCode))
  if (kind === 'stemi') coding.push(SNOMED_STEMI)
  if (kind === 'stroke') coding.push(SNOMED_STROKE)
  const issue: Resource = {
    resourceType: 'DetectedIssue',
    id: randomUUID(),
    ...(typeof event === 'string' ? { meta: { tag: [local(codeSystem, `event-${EVENT_CODES.has(event) ? event : 'other'}` as LocalCode)] } } : {}),
    status: 'final',
    ...(coding.length > 0 ? { code: { coding } } : {}),
    ...(typeof priority === 'string' && SEVERITY[priority] !== undefined ? { severity: SEVERITY[priority] } : {}),
    patient: subjectRef(r.subject),
    identifiedDateTime: formatUs(r.timeUs)
  }
  if (typeof value === 'number') {
    const sign = typeof key === 'string' ? LOINC_BY_FIELD.get(key) : undefined
    issue.contained = [{
      resourceType: 'Observation',
      id: 'value',
      status: 'final',
      code: { coding: [sign !== undefined ? { system: LOINC, code: sign.loinc } : local(codeSystem, 'alert-value')] },
      subject: subjectRef(r.subject),
      effectiveDateTime: formatUs(r.timeUs),
      valueQuantity: sign !== undefined ? { value, unit: sign.unit, system: UCUM, code: sign.ucum } : { value }
    }]
    issue.evidence = [{ detail: [{ reference: '#value' }] }]
  }
  return issue
}

const POSITION_PARTS: ReadonlyArray<{ field: string, code: LocalCode, unit: string, ucum: string }> = [
  { field: 'latitude', code: 'latitude', unit: 'degree', ucum: 'deg' },
  { field: 'longitude', code: 'longitude', unit: 'degree', ucum: 'deg' },
  { field: 'speed_mps', code: 'speed', unit: 'm/s', ucum: 'm/s' },
  { field: 'heading_deg', code: 'heading', unit: 'degree', ucum: 'deg' }
]

/** A position as an Observation (no LOINC term states an ambulance's position: local codes). */
export function positionObservation (r: ExtractRecord, columns: readonly string[], codeSystem: string): Resource | null {
  const component = POSITION_PARTS.flatMap(p => {
    const i = columns.indexOf(p.field)
    const v = i < 0 ? null : r.values[i]
    return typeof v === 'number' ? [{ code: { coding: [local(codeSystem, p.code)] }, valueQuantity: { value: v, unit: p.unit, system: UCUM, code: p.ucum } }] : []
  })
  if (component.length === 0) return null
  return {
    resourceType: 'Observation',
    id: randomUUID(),
    status: 'final',
    code: { coding: [local(codeSystem, 'position')] },
    subject: subjectRef(r.subject),
    effectiveDateTime: formatUs(r.timeUs),
    component
  }
}

/**
 * The paramedic's assessment, one Observation per finding: suspected STEMI (SNOMED CT 401303003
 * as the code, valueBoolean), LAMS total (integer 0-5, AHA/ASA 2019 stroke guidelines' pre-hospital
 * large-vessel-occlusion scale), FAST positive (valueBoolean), last known well (valueDateTime,
 * shifted like every time at level anonymised: the extract has already shifted it).
 */
export function assessmentObservations (r: ExtractRecord, columns: readonly string[], codeSystem: string): Resource[] {
  const out: Resource[] = []
  const base = (coding: unknown[], value: Resource): Resource => ({
    resourceType: 'Observation',
    id: randomUUID(),
    status: 'final',
    category: category('exam', 'Exam'),
    code: { coding },
    subject: subjectRef(r.subject),
    effectiveDateTime: formatUs(r.timeUs),
    ...value
  })
  columns.forEach((f, i) => {
    const v = r.values[i]
    if (v === null || v === undefined) return
    if (f === 'stemi_suspected' && typeof v === 'number') out.push(base([SNOMED_STEMI, local(codeSystem, 'stemi-suspected')], { valueBoolean: v !== 0 }))
    if (f === 'fast_positive' && typeof v === 'number') out.push(base([local(codeSystem, 'fast')], { valueBoolean: v !== 0 }))
    if (f === 'lams_score' && typeof v === 'number') out.push(base([local(codeSystem, 'lams')], { valueInteger: Math.round(v) }))
    if (f === 'last_known_well_ms' && typeof v === 'number' && v > 0) out.push(base([local(codeSystem, 'last-known-well')], { valueDateTime: formatUs(v * 1000) }))
  })
  return out
}
