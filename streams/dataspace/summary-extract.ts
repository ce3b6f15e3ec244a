/**
 * An extract at level `aggregated` (issue #10, item 7): one summary per encounter (aggregate.ts),
 * released only in groups of at least k encounters that share EVERY released value.
 *
 * - First pass, as at level anonymised (extract.ts): the encounters lying wholly inside the
 *   permit's window (and, when a window is given, overlapping it in shifted time), and their
 *   attributes.
 * - Summary pass: the raw rows of those encounters, grouped by encounter (InfluxDB sends one
 *   series after the other, so one encounter's rows are held at a time), summarised and dropped.
 * - Classification: an encounter's class is its age band and sex (when asked for now or released
 *   before under the permit), duration and the summary of every field asked for now or released
 *   before. Classes with fewer than k encounters are withheld. So every released row is
 *   identical, but for its random subject, to at least k−1 others, and whoever computes an
 *   encounter's summary from its exact values (another permit's extract, the live stream) lands
 *   on k rows, never on one; a second aggregated extract of the permit likewise cannot tell apart
 *   the rows of a group.
 *
 * Memory: the summaries of the window's encounters (bounded by maxEncounters) plus one
 * encounter's rows. Everything is decided before the first byte, so the headers are exact.
 */
import { randomUUID } from 'node:crypto'
import { SUMMARISABLE_FIELDS, summariseEncounter, summaryColumns, summaryValues, type EncounterSummary } from './aggregate.js'
import { DATASETS } from './datasets.js'
import { DataspaceError } from './errors.js'
import { Extractor, type ExtractPlan, type ExtractRecord, type ExtractRequest } from './extract.js'
import { ident, type InfluxReader } from './influx-reader.js'
import { classify } from './k-anonymity.js'
import type { DataspaceOptions } from './options.js'
import type { Protector } from './protect.js'

const BATCH = 1000

export class SummaryExtractor {
  private readonly base: Extractor
  private readonly released = new WeakMap<ExtractPlan, ExtractRecord[]>()

  constructor (
    private readonly reader: InfluxReader,
    private readonly protector: Protector,
    private readonly o: Pick<DataspaceOptions, 'k' | 'maxEncounters' | 'assessmentLookbackMs'>
  ) {
    if (protector.level !== 'aggregated') throw new RangeError('SummaryExtractor serves level aggregated only')
    this.base = new Extractor(reader, protector, o)
  }

  async plan (req: ExtractRequest, signal?: AbortSignal): Promise<ExtractPlan> {
    const asked = SUMMARISABLE_FIELDS.filter(f => req.fields.includes(f))
    if (asked.length === 0) throw new DataspaceError('AMB_ERR_DATASPACE_BAD_REQUEST', `ask for at least one of ${SUMMARISABLE_FIELDS.join(', ')}`)
    const before = new Set(req.qiFields ?? [])
    const summarised = SUMMARISABLE_FIELDS.filter(f => asked.includes(f) || before.has(f))
    const withAge = req.fields.includes('age')
    const withSex = req.fields.includes('sex')
    const qiAge = withAge || before.has('age')
    const qiSex = withSex || before.has('sex')
    const demographics = qiAge || qiSex ? await this.base.demographics(req, signal) : new Map<string, { age: number | null, sex: string | null }>()
    const selected = await this.base.encounters(req, summarised, signal)

    const summaries = new Map<string, EncounterSummary>()
    for await (const [enc, rows] of this.byEncounter(req, summarised, selected, signal)) {
      const s = summariseEncounter(rows, summarised)
      if (s !== null) summaries.set(enc, s)
    }
    const p = this.protector
    const keys = new Map<string, string>()
    for (const [enc, s] of summaries) {
      const d = demographics.get(enc)
      keys.set(enc, JSON.stringify([qiAge ? p.age(d?.age ?? null) : null, qiSex ? p.sex(d?.sex ?? null) : null, ...summaryValues(s, summarised)]))
    }
    const c = classify(keys, this.o.k)
    const records: ExtractRecord[] = []
    for (const enc of c.kept) {
      const s = summaries.get(enc)!
      const d = demographics.get(enc)
      records.push({
        // Fresh per extract (aggregate.ts): never the same for one encounter twice.
        subject: randomUUID(),
        timeUs: 0,
        age: withAge ? p.age(d?.age ?? null) : null,
        sex: withSex ? p.sex(d?.sex ?? null) : null,
        values: summaryValues(s, asked)
      })
    }
    // Identical rows together, in an order that follows neither time nor the encounters.
    const order = (r: ExtractRecord): string => JSON.stringify([r.age, r.sex, ...r.values])
    records.sort((a, b) => order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0)
    const plan: ExtractPlan = {
      request: req,
      columns: summaryColumns(asked),
      withAge,
      withSex,
      kept: c.kept,
      selected,
      demographics,
      cells: null,
      summary: {
        k: this.o.k,
        encounters: summaries.size,
        suppressedEncounters: c.suppressed.size,
        classes: c.classes,
        classesBelowK: c.classesBelowK,
        rows: 0,
        suppressedRows: c.suppressed.size,
        suppressedCellRows: 0,
        unassignedRows: 0
      }
    }
    this.released.set(plan, records)
    return plan
  }

  /** The released summaries, in batches. */
  async * rows (plan: ExtractPlan, signal?: AbortSignal): AsyncGenerator<ExtractRecord[]> {
    const records = this.released.get(plan) ?? []
    for (let i = 0; i < records.length; i += BATCH) {
      signal?.throwIfAborted()
      const batch = records.slice(i, i + BATCH)
      plan.summary.rows += batch.length
      yield batch
    }
  }

  /** Each selected encounter's rows, one encounter at a time (series arrive one after the other). */
  private async * byEncounter (req: ExtractRequest, fields: readonly string[], selected: ReadonlySet<string>, signal?: AbortSignal): AsyncGenerator<[string, Array<{ timeUs: number, values: Array<number | null> }>]> {
    const ds = DATASETS[req.dataset]
    const q = `SELECT ${fields.map(ident).join(', ')} FROM ${ident(ds.measurement)} WHERE time >= ${Math.floor(req.fromMs)}ms AND time < ${Math.ceil(req.toMs)}ms GROUP BY "encounter"`
    let current: string | null = null
    let rows: Array<{ timeUs: number, values: Array<number | null> }> = []
    const done = new Set<string>()
    for await (const series of this.reader.stream(q, signal)) {
      const enc = series.tags.encounter ?? ''
      if (!selected.has(enc)) continue
      if (enc !== current) {
        if (current !== null) { done.add(current); yield [current, rows] }
        // A series split by chunking continues in the next chunk; one seen again after another
        // encounter would mean a partial summary: refuse rather than release it.
        if (done.has(enc)) throw new DataspaceError('AMB_ERR_DATASPACE_QUERY_FAILED', 'InfluxDB interleaved the series of one encounter')
        current = enc
        rows = []
      }
      const idx = fields.map(f => series.columns.indexOf(f))
      for (const row of series.values) {
        const t = row[0]
        if (typeof t !== 'number') continue
        rows.push({ timeUs: t, values: idx.map(i => { const v = i >= 0 ? row[i] : null; return typeof v === 'number' && Number.isFinite(v) ? v : null }) })
      }
    }
    if (current !== null) yield [current, rows]
  }
}
