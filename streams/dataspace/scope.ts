/**
 * Reading a request against its permit: which dataset, fields and window it asks for, and
 * whether the permit covers them (EHDS Art. 66(1): only what the permit allows). Unknown names
 * and unparsable values are 400s; anything outside the permit is a 403 that says what.
 */
import { AGGREGATED_DATASETS, SUMMARISABLE_FIELDS } from './aggregate.js'
import { DATASET_NAMES, DATASETS, grantableFields, isDatasetName, type DatasetName } from './datasets.js'
import { DataspaceError } from './errors.js'
import { FORMAT_NAMES, type FormatName } from './formats/index.js'
import type { Permit } from './permit.js'

export interface ScopeQuery {
  dataset?: string
  fields?: string
  from?: string
  to?: string
  format?: string
}

export interface Scope {
  dataset: DatasetName
  fields: string[]
  fromMs: number
  toMs: number
  format: FormatName
  /**
   * Level anonymised, extracts: from/to were given and are SHIFTED time; they select whole
   * encounters by their shifted span (see extract.ts), and the permit's window applies in real time.
   */
  shifted: boolean
}

function badRequest (message: string): DataspaceError {
  return new DataspaceError('AMB_ERR_DATASPACE_BAD_REQUEST', message)
}

/** ISO 8601 / RFC 3339, or Unix ms. */
export function parseTime (raw: string, name: string): number {
  const ms = /^\d+$/.test(raw) ? Number(raw) : Date.parse(raw)
  if (!Number.isFinite(ms)) throw badRequest(`${name} is not a time (ISO 8601 or Unix ms): ${JSON.stringify(raw.slice(0, 40))}`)
  return ms
}

/**
 * Resolves a request within a permit. Missing `fields`/`from`/`to` default to everything the
 * permit grants; `live` restricts datasets to those served on the stream.
 */
export function resolveScope (q: ScopeQuery, permit: Permit, opts: { live?: boolean, maxShiftMs?: number } = {}): Scope {
  if (permit.level === 'statistical') throw new DataspaceError('AMB_ERR_DATASPACE_LEVEL_FORBIDDEN', `permit ${permit.id} is at level statistical: it answers aggregate queries (/dataspace/statistics) only, never rows or the live stream`)
  const name = q.dataset
  if (name === undefined || name === '') throw badRequest(`dataset is required: one of ${DATASET_NAMES.join(', ')}`)
  if (!isDatasetName(name)) throw badRequest(`unknown dataset ${JSON.stringify(name.slice(0, 40))}; datasets are ${DATASET_NAMES.join(', ')}`)
  const ds = DATASETS[name]
  if (opts.live === true && !ds.live) throw badRequest(`dataset ${name} has no live stream; streamed datasets are ${DATASET_NAMES.filter(d => DATASETS[d].live).join(', ')}`)
  const format = (q.format ?? 'ndjson') as FormatName
  if (!FORMAT_NAMES.includes(format)) throw new DataspaceError('AMB_ERR_DATASPACE_FORMAT', `unknown format ${JSON.stringify(String(q.format).slice(0, 20))}; formats are ${FORMAT_NAMES.join(', ')}`)
  const requested = q.fields === undefined || q.fields === '' ? null : [...new Set(q.fields.split(',').map(f => f.trim()).filter(f => f !== ''))]
  if (requested !== null) {
    const known = grantableFields(name)
    const unknown = requested.filter(f => !known.includes(f))
    if (unknown.length > 0) throw badRequest(`dataset ${name} has no field ${unknown.join(', ')}; fields are ${known.join(', ')}`)
  }
  const given = (q.from !== undefined && q.from !== '') || (q.to !== undefined && q.to !== '')
  const shifted = permit.level !== 'pseudonymised' && opts.live !== true && given
  // In shifted time an open end reaches as far as any shift can carry the permit's window.
  const slack = shifted ? opts.maxShiftMs ?? 0 : 0
  const fromMs = q.from === undefined || q.from === '' ? permit.fromMs - slack : parseTime(q.from, 'from')
  const toMs = q.to === undefined || q.to === '' ? permit.toMs + slack : parseTime(q.to, 'to')
  if (fromMs >= toMs) throw badRequest('from must be before to')

  if (!permit.datasets.includes(name)) {
    throw new DataspaceError('AMB_ERR_DATASPACE_DATASET_FORBIDDEN', `permit ${permit.id} does not cover dataset ${name} (it covers ${permit.datasets.join(', ')})`)
  }
  const granted = permit.fields[name] ?? []
  if (permit.level === 'aggregated') checkAggregated(name, format, requested, opts.live === true)
  // At level aggregated the default is what the level can summarise (an access body's permit
  // may grant more; those fields are then simply not served).
  const fields = requested ?? (permit.level === 'aggregated' ? granted.filter(f => SUMMARISABLE_FIELDS.includes(f) || f === 'age' || f === 'sex') : granted)
  const outside = fields.filter(f => !granted.includes(f))
  if (outside.length > 0) {
    throw new DataspaceError('AMB_ERR_DATASPACE_FIELD_FORBIDDEN', `permit ${permit.id} does not grant ${outside.join(', ')} on ${name} (it grants ${granted.join(', ')})`)
  }
  if (opts.live !== true && !shifted && (fromMs < permit.fromMs || toMs > permit.toMs)) {
    throw new DataspaceError('AMB_ERR_DATASPACE_WINDOW_FORBIDDEN', `the window ${new Date(fromMs).toISOString()}..${new Date(toMs).toISOString()} reaches outside the permit's ${new Date(permit.fromMs).toISOString()}..${new Date(permit.toMs).toISOString()}`)
  }
  if (format === 'fhir' && !ds.fhir) {
    throw new DataspaceError('AMB_ERR_DATASPACE_FORMAT', `format fhir maps vital signs only; use ndjson or csv for ${name}`)
  }
  return { dataset: name, fields, fromMs, toMs, format, shifted }
}

/** Level aggregated (issue #10, item 7): summaries of vitals as ndjson or csv, nothing else. */
function checkAggregated (dataset: DatasetName, format: FormatName, requested: string[] | null, live: boolean): void {
  const no = (why: string): DataspaceError => new DataspaceError('AMB_ERR_DATASPACE_LEVEL_UNSUPPORTED', `level aggregated: ${why}`)
  // Live data arrive in real time with their exact values: nothing of that can be summarised.
  if (live) throw no('no live stream (it would release exact values at their real time); use extracts')
  if (!AGGREGATED_DATASETS.includes(dataset)) throw no(`${dataset} is not summarised; only ${AGGREGATED_DATASETS.join(', ')}`)
  if (format === 'fhir') throw no('no FHIR: a summary is not an Observation of a measurement; use ndjson or csv')
  const bad = (requested ?? []).filter(f => !SUMMARISABLE_FIELDS.includes(f) && f !== 'age' && f !== 'sex')
  if (bad.length > 0) throw no(`no summary of ${bad.join(', ')}; summarised fields are ${SUMMARISABLE_FIELDS.join(', ')}`)
}
