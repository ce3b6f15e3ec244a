/**
 * An extract: InfluxQL against the storage contract, the permit's protection applied row by row,
 * produced in batches for a serializer to stream. Two passes (see k-anonymity.ts):
 *
 * - `plan()`: at level anonymised, which encounters have data in the window (one aggregate
 *   query, `count()` per encounter) and their attributes (last assessment, one query), then the
 *   k-anonymity classes; for positions, a pre-scan of the coarsened cells. At level
 *   pseudonymised only the attributes are looked up.
 * - `rows()`: the raw query, chunked, grouped by encounter, so every chunk carries its
 *   encounter as a series tag and each row costs an array lookup, not a hash.
 *
 * Nothing but the columns named in DATASETS is ever selected or released: the encounter tag
 * is read to group rows and replaced by the permit's pseudonym; the unit tag is never selected.
 */
import { DATASETS, INSTANT_FIELDS, type DatasetName } from './datasets.js'
import { DataspaceError } from './errors.js'
import { ident, type InfluxReader } from './influx-reader.js'
import { CellCounter, classify } from './k-anonymity.js'
import type { DataspaceOptions } from './options.js'
import type { Protector, Sex } from './protect.js'

export interface ExtractRequest {
  dataset: DatasetName
  /** Requested fields (value fields and demographics), already checked against the permit. */
  fields: readonly string[]
  /** [fromMs, toMs) in real time: the permit's window at level anonymised. */
  fromMs: number
  toMs: number
  /**
   * Level anonymised: the researcher's window, in SHIFTED time. It selects whole encounters (those
   * whose shifted span overlaps it), never rows, so the window's edges say nothing about real
   * time (issue #10, item 5). null: every encounter of the permit's window.
   */
  shiftedWindow?: { fromMs: number, toMs: number } | null
  /**
   * Level anonymised: the quasi-identifiers k-anonymity classifies on, at least the requested
   * ones plus every one this permit has already released (item 6).
   */
  qiFields?: readonly string[]
}

export interface ExtractSummary {
  /** null at level pseudonymised (no k-anonymity). */
  k: number | null
  /** Encounters with data in the window (first pass; null when not counted). */
  encounters: number | null
  suppressedEncounters: number
  classes: number
  classesBelowK: number
  /** Rows released. */
  rows: number
  /** Rows withheld because their encounter's class is smaller than k (or appeared after the first pass). */
  suppressedRows: number
  /** Rows withheld because their position cell was crossed by fewer than k encounters. */
  suppressedCellRows: number
  /** Rows without an encounter (recorded before dispatch assigned one): they belong to nobody we can protect as a patient, so they are never released. */
  unassignedRows: number
}

export interface ExtractRecord {
  subject: string
  /** Shifted at level anonymised. */
  timeUs: number
  age: number | string | null
  sex: Sex | null
  /** One per plan.columns; numbers, or closed-vocabulary strings (alert kind/priority). */
  values: Array<number | string | null>
}

export interface ExtractPlan {
  request: ExtractRequest
  /** Released value columns, in output order. */
  columns: string[]
  withAge: boolean
  withSex: boolean
  /** null: release every encounter (level pseudonymised). */
  kept: Set<string> | null
  /** Encounters the first pass looked at (level anonymised); rows of any other are skipped, not counted. */
  selected: Set<string> | null
  demographics: Map<string, { age: number | null, sex: string | null }>
  cells: CellCounter | null
  summary: ExtractSummary
}

function timeRange (fromMs: number, toMs: number): string {
  return `time >= ${Math.floor(fromMs)}ms AND time < ${Math.ceil(toMs)}ms`
}

function num (v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null
}

export class Extractor {
  constructor (
    private readonly reader: InfluxReader,
    private readonly protector: Protector,
    private readonly o: Pick<DataspaceOptions, 'k' | 'maxEncounters' | 'assessmentLookbackMs'>
  ) {}

  async plan (req: ExtractRequest, signal?: AbortSignal): Promise<ExtractPlan> {
    // Defence in depth: the routes refuse it first (scope.ts); a statistical permit never gets rows.
    if (this.protector.level === 'statistical') throw new DataspaceError('AMB_ERR_DATASPACE_LEVEL_FORBIDDEN', 'a permit at level statistical answers aggregate queries only')
    const ds = DATASETS[req.dataset]
    const columns = ds.valueFields.filter(f => req.fields.includes(f))
    if (columns.length === 0) throw new DataspaceError('AMB_ERR_DATASPACE_BAD_REQUEST', `ask for at least one of ${ds.valueFields.join(', ')}`)
    const withAge = req.fields.includes('age')
    const withSex = req.fields.includes('sex')
    const anonymised = this.protector.level === 'anonymised'
    if (anonymised && req.dataset === 'position' && (columns.includes('latitude') !== columns.includes('longitude') || !columns.includes('latitude'))) {
      // Speed and heading alone trace the route as exactly as coordinates (issue #10, item 8):
      // they are released only with the cell, under its rule, and binned.
      throw new DataspaceError('AMB_ERR_DATASPACE_BAD_REQUEST', 'at level anonymised positions are released as cells: ask for latitude and longitude together (speed_mps and heading_deg only with them)')
    }
    const summary: ExtractSummary = {
      k: anonymised ? this.o.k : null,
      encounters: null,
      suppressedEncounters: 0,
      classes: 0,
      classesBelowK: 0,
      rows: 0,
      suppressedRows: 0,
      suppressedCellRows: 0,
      unassignedRows: 0
    }
    const qiFields = new Set(anonymised ? [...(req.qiFields ?? []), ...(withAge ? ['age'] : []), ...(withSex ? ['sex'] : [])] : [])
    const demographics = withAge || withSex || qiFields.size > 0 ? await this.demographics(req, signal) : new Map()
    const plan: ExtractPlan = { request: req, columns, withAge, withSex, kept: null, selected: null, demographics, cells: null, summary }
    if (!anonymised) return plan

    const encounters = await this.encounters(req, columns, signal)
    const qi = new Map<string, string>()
    for (const enc of encounters) {
      const d = demographics.get(enc)
      const key: Array<string | number | null> = []
      if (qiFields.has('age')) key.push(this.protector.age(d?.age ?? null))
      if (qiFields.has('sex')) key.push(this.protector.sex(d?.sex ?? null))
      qi.set(enc, JSON.stringify(key))
    }
    const c = classify(qi, this.o.k)
    plan.kept = c.kept
    plan.selected = encounters
    summary.encounters = encounters.size
    summary.suppressedEncounters = c.suppressed.size
    summary.classes = c.classes
    summary.classesBelowK = c.classesBelowK
    if (req.dataset === 'position' && columns.includes('latitude')) plan.cells = await this.cells(req, c.kept, signal)
    return plan
  }

  /**
   * Level anonymised: the encounters released whole. Each one's first and last instant with a
   * requested value is looked up (one `LIMIT 1` query each way, per series) around the permit's
   * window: an encounter with data outside the window is withheld (a cut at the window's edge
   * would give its shift away), and with a shifted window, only encounters whose shifted span
   * overlaps it are selected. Also the first pass of level aggregated (summary-extract.ts).
   */
  async encounters (req: ExtractRequest, columns: string[], signal?: AbortSignal): Promise<Set<string>> {
    const ds = DATASETS[req.dataset]
    const selectable = columns.filter(f => !ds.tagFields.includes(f))
    if (ds.presenceField !== null) selectable.push(ds.presenceField)
    const lb = this.o.assessmentLookbackMs
    const base = `SELECT ${selectable.map(ident).join(', ')} FROM ${ident(ds.measurement)} WHERE ${timeRange(req.fromMs - lb, req.toMs + lb)} GROUP BY "encounter"`
    const spans = new Map<string, { first: number, last: number }>()
    for (const [order, end] of [['ASC', 'first'], ['DESC', 'last']] as const) {
      for await (const s of this.reader.stream(`${base} ORDER BY time ${order} LIMIT 1`, signal)) {
        const enc = s.tags.encounter ?? ''
        const t = num(s.values[0]?.[0])
        if (enc === '' || t === null) continue
        const span = spans.get(enc) ?? { first: t, last: t }
        span[end] = t
        spans.set(enc, span)
        if (spans.size > this.o.maxEncounters) {
          throw new DataspaceError('AMB_ERR_DATASPACE_TOO_LARGE', `the window holds more than ${this.o.maxEncounters} encounters; ask for a shorter window`)
        }
      }
    }
    const out = new Set<string>()
    const w = req.shiftedWindow ?? null
    for (const [enc, { first, last }] of spans) {
      // epoch=u: µs. Whole encounters inside the permit's window only.
      if (first < req.fromMs * 1000 || last >= req.toMs * 1000) continue
      if (w !== null) {
        const shift = this.protector.shiftUs(enc)
        if (last + shift < w.fromMs * 1000 || first + shift >= w.toMs * 1000) continue
      }
      out.add(enc)
    }
    return out
  }

  /** Each encounter's last assessment around the window: the patient attributes. */
  async demographics (req: ExtractRequest, signal?: AbortSignal): Promise<Map<string, { age: number | null, sex: string | null }>> {
    const lb = this.o.assessmentLookbackMs
    const q = `SELECT last("age_years") AS "age", last("sex") AS "sex" FROM "assessment" WHERE ${timeRange(req.fromMs - lb, req.toMs + lb)} GROUP BY "encounter"`
    const out = new Map<string, { age: number | null, sex: string | null }>()
    for await (const s of this.reader.stream(q, signal)) {
      const enc = s.tags.encounter ?? ''
      if (enc === '') continue
      const ai = s.columns.indexOf('age')
      const si = s.columns.indexOf('sex')
      const row = s.values[0]
      if (row === undefined) continue
      const sex = si >= 0 && typeof row[si] === 'string' ? row[si] as string : null
      out.set(enc, { age: ai >= 0 ? num(row[ai]) : null, sex })
      if (out.size > this.o.maxEncounters) {
        throw new DataspaceError('AMB_ERR_DATASPACE_TOO_LARGE', `the window holds more than ${this.o.maxEncounters} encounters; ask for a shorter window`)
      }
    }
    return out
  }

  /** Pre-scan of positions: distinct kept encounters per cell. */
  private async cells (req: ExtractRequest, kept: Set<string>, signal?: AbortSignal): Promise<CellCounter> {
    const counter = new CellCounter(this.o.k, this.o.maxEncounters)
    const q = `SELECT "latitude", "longitude" FROM "position" WHERE ${timeRange(req.fromMs, req.toMs)} GROUP BY "encounter"`
    for await (const s of this.reader.stream(q, signal)) {
      const enc = s.tags.encounter ?? ''
      if (!kept.has(enc)) continue
      for (const row of s.values) {
        const lat = num(row[1])
        const lon = num(row[2])
        if (lat !== null && lon !== null) counter.add(this.protector.cell(lat, lon).key, enc)
      }
    }
    return counter
  }

  /** The protected rows, one batch per InfluxDB chunk. */
  async * rows (plan: ExtractPlan, signal?: AbortSignal): AsyncGenerator<ExtractRecord[]> {
    const req = plan.request
    const ds = DATASETS[req.dataset]
    const select = [...plan.columns]
    if (ds.presenceField !== null) select.push(ds.presenceField)
    const q = `SELECT ${select.map(ident).join(', ')} FROM ${ident(ds.measurement)} WHERE ${timeRange(req.fromMs, req.toMs)} GROUP BY "encounter"`
    const p = this.protector
    const anonymised = p.level === 'anonymised'
    const s = plan.summary
    const latCol = plan.columns.indexOf('latitude')
    const lonCol = plan.columns.indexOf('longitude')
    const coarsen = anonymised && req.dataset === 'position' && latCol >= 0 && plan.cells !== null
    const speedCol = plan.columns.indexOf('speed_mps')
    const headingCol = plan.columns.indexOf('heading_deg')
    const vocabs = plan.columns.map(c => ds.vocabularies[c] ?? null)
    const instants = plan.columns.map(c => INSTANT_FIELDS.has(c))

    for await (const series of this.reader.stream(q, signal)) {
      const enc = series.tags.encounter ?? ''
      const n = series.values.length
      if (enc === '') { s.unassignedRows += n; continue }
      if (plan.selected !== null && !plan.selected.has(enc)) continue
      if (plan.kept !== null && !plan.kept.has(enc)) { s.suppressedRows += n; continue }
      const idx = plan.columns.map(c => series.columns.indexOf(c))
      const subject = p.subject(enc)
      const shift = p.shiftUs(enc)
      const d = plan.demographics.get(enc)
      const age = plan.withAge ? p.age(d?.age ?? null) : null
      const sex = plan.withSex ? p.sex(d?.sex ?? null) : null
      const out: ExtractRecord[] = []
      for (const row of series.values) {
        const t = num(row[0])
        if (t === null) continue
        const values: Array<number | string | null> = new Array(idx.length)
        let hasValue = false
        for (let i = 0; i < idx.length; i++) {
          const v = idx[i]! >= 0 ? row[idx[i]!] : null
          // Words from a closed vocabulary, or numbers: nothing else can carry text out.
          const vs = vocabs[i]!
          let clean = vs !== null ? vocab(v, vs) : num(typeof v === 'boolean' ? Number(v) : v)
          // An instant (last known well) moves with the encounter's shift; 0 is proto3's unset.
          if (instants[i] === true && clean !== null) clean = (clean as number) > 0 ? (clean as number) + shift / 1000 : null
          values[i] = clean
          if (clean !== null) hasValue = true
        }
        if (!hasValue && ds.presenceField === null) continue
        if (coarsen) {
          const lat = values[latCol]
          const lon = values[lonCol]
          // A row without a position has no cell to hide in: withheld.
          if (typeof lat !== 'number' || typeof lon !== 'number') { s.suppressedCellRows++; continue }
          const cell = p.cell(lat, lon)
          if (!plan.cells!.released(cell.key)) { s.suppressedCellRows++; continue }
          values[latCol] = cell.lat
          values[lonCol] = cell.lon
          if (speedCol >= 0 && typeof values[speedCol] === 'number') values[speedCol] = binSpeed(values[speedCol] as number)
          if (headingCol >= 0 && typeof values[headingCol] === 'number') values[headingCol] = binHeading(values[headingCol] as number)
        }
        out.push({ subject, timeUs: t + shift, age, sex, values })
      }
      s.rows += out.length
      if (out.length > 0) yield out
    }
  }
}

/** Speed at level anonymised: the lower edge of its 5 m/s bin (18 km/h). */
export function binSpeed (mps: number): number { return Math.floor(Math.max(0, mps) / 5) * 5 }

/** Heading at level anonymised: the centre of its 45° sector (N, NE, … as 0, 45, …). */
export function binHeading (deg: number): number { return (Math.round((((deg % 360) + 360) % 360) / 45) % 8) * 45 }

function vocab (v: unknown, allowed: ReadonlySet<string>): string | null {
  if (typeof v !== 'string' || v === '') return null
  return allowed.has(v) ? v : 'other'
}

