/**
 * The page's copy of the live state: units (latest view, trend, ECG ring), alerts, NEWS2 history.
 * Fed by live-client.ts; views read it and subscribe to change notifications. ECG samples go
 * straight from the socket's ArrayBuffer into preallocated per-lead rings (no per-sample objects):
 * the drawing loop reads them at its own pace.
 */
import type { Alert, AlertEvent } from '../../streams/live/protocol.js'
import {
  NO_SAMPLE, TREND_SIGNS, type Assignment, type EcgChunk, type UnitContext, type Hospital, type News2View, type ServerMessage, type TrendRow,
  type UnitResume, type UnitView
} from '../../streams/live/protocol.js'

const ECG_SECONDS = 10
const TREND_ROWS = 1800

export class EcgBuffer {
  readonly capacity: number
  readonly leads: Int16Array[]
  /** Absolute index of the next sample (same numbering as the hub's ring). */
  next = -1
  leadMask = 0

  constructor (readonly epoch: string, readonly rateHz: number) {
    this.capacity = Math.ceil(rateHz * ECG_SECONDS)
    this.leads = Array.from({ length: 12 }, () => new Int16Array(this.capacity).fill(NO_SAMPLE))
  }

  get oldest (): number { return Math.max(0, this.next - this.capacity) }

  read (lead: number, index: number): number { return this.leads[lead]![index % this.capacity]! }

  write (c: EcgChunk): void {
    if (this.next < 0) this.next = c.startIndex
    // A jump forward (samples dropped for a slow page, or a gap) reads as no signal.
    if (c.startIndex > this.next) {
      const gap = Math.min(c.startIndex - this.next, this.capacity)
      for (const l of this.leads) for (let i = 0; i < gap; i++) l[(c.startIndex - gap + i) % this.capacity] = NO_SAMPLE
      this.next = c.startIndex
    }
    const skip = this.next - c.startIndex // already have these (backfill overlapping live)
    if (skip >= c.n) return
    this.leadMask |= c.leadMask
    let off = 0
    for (let lead = 0; lead < 12; lead++) {
      if ((c.leadMask & (1 << lead)) === 0) continue
      const ring = this.leads[lead]!
      for (let i = skip; i < c.n; i++) ring[(c.startIndex + i) % this.capacity] = c.samples.getInt16(off + i * 2, true)
      off += c.n * 2
    }
    this.next = c.startIndex + c.n
  }
}

/** A unit's trend rows, contiguous from `base` (absolute row index). */
export class Trend {
  base = 0
  /** True once the hub's backfill arrived: only then is `next` a cursor worth resuming from
   * (rows collected from live updates alone lack the history before them). */
  backfilled = false
  t: number[] = []
  cols: Array<Array<number | null>> = TREND_SIGNS.map(() => [])
  positions: Array<TrendRow['position']> = []

  constructor (readonly epoch: string) {}

  get next (): number { return this.base + this.t.length }

  /** Sets row `index`; false when it would leave a hole (the caller asks for a resync). */
  set (index: number, t: number, values: Array<number | null>, position: TrendRow['position']): boolean {
    if (this.t.length === 0) this.base = index
    if (index < this.base) return true
    if (index > this.next) return false
    const k = index - this.base
    this.t[k] = t
    for (let c = 0; c < this.cols.length; c++) this.cols[c]![k] = values[c] ?? null
    this.positions[k] = position
    if (this.t.length > TREND_ROWS + 60) this.trim(this.t.length - TREND_ROWS)
    return true
  }

  private trim (n: number): void {
    this.base += n
    this.t.splice(0, n)
    for (const c of this.cols) c.splice(0, n)
    this.positions.splice(0, n)
  }
}

export interface UnitModel {
  view: UnitView
  trend: Trend | null
  ecg: EcgBuffer | null
  news2History: Array<{ t: number, total: number | null, partial: boolean }>
}

type Listener = (what: 'units' | 'alerts' | 'unit' | 'assignments', unit?: string) => void

export class Store {
  epoch = ''
  user = { name: '', role: '' }
  hospital: Hospital = { name: '', latitude: 0, longitude: 0 }
  /** Server clock minus ours, ms (last-seen times are the gateway's). */
  skewMs = 0
  readonly units = new Map<string, UnitModel>()
  readonly alerts = new Map<string, Alert>()
  /** The latest acknowledge-and-assign per unit (incoming board). */
  readonly assignments = new Map<string, Assignment>()
  private readonly listeners = new Set<Listener>()
  /** Called when a trend has a hole the hub should fill (unit, first missing index). */
  onResync: (unit: string, from: number) => void = () => {}

  subscribe (fn: Listener): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  private emit (what: 'units' | 'alerts' | 'unit' | 'assignments', unit?: string): void { for (const l of this.listeners) l(what, unit) }

  /** Cursors for the hello message after a reconnect. */
  resume (): Record<string, UnitResume> {
    const out: Record<string, UnitResume> = {}
    for (const [unit, m] of this.units) {
      const r: UnitResume = {}
      if (m.trend !== null && m.trend.backfilled && m.trend.t.length > 0) { r.trendEpoch = m.trend.epoch; r.trendNext = m.trend.next }
      if (m.ecg !== null && m.ecg.next >= 0) { r.ecgEpoch = m.ecg.epoch; r.ecgNext = m.ecg.next }
      out[unit] = r
    }
    return out
  }

  handle (msg: ServerMessage): void {
    switch (msg.type) {
      case 'snapshot': {
        if (msg.epoch !== this.epoch) this.units.clear() // another gateway instance: cursors mean nothing
        this.epoch = msg.epoch
        this.user = msg.user
        this.hospital = msg.hospital
        this.skewMs = msg.now - Date.now()
        const present = new Set(msg.units.map(u => u.unit))
        for (const unit of [...this.units.keys()]) if (!present.has(unit)) this.units.delete(unit)
        for (const v of msg.units) this.setView(v)
        this.alerts.clear()
        for (const a of msg.alerts) this.alerts.set(a.id, a)
        this.assignments.clear()
        for (const a of msg.assignments ?? []) this.assignments.set(a.unit, a)
        this.emit('units')
        this.emit('alerts')
        this.emit('assignments')
        return
      }
      case 'assignment': this.assignments.set(msg.assignment.unit, msg.assignment); this.emit('assignments', msg.assignment.unit); return
      case 'unit': this.setView(msg.unit); this.emit('unit', msg.unit.unit); return
      case 'trend': this.setTrend(msg); return
      case 'alert': this.setAlert(msg.event); return
      case 'alerts': for (const a of msg.alerts) this.alerts.set(a.id, a); this.emit('alerts'); return
      case 'news2': this.setNews2(msg.unit, msg.news2); return
      case 'news2history': {
        const m = this.units.get(msg.unit)
        if (m !== undefined) { m.news2History = msg.points; this.emit('unit', msg.unit) }
        return
      }
      case 'gone': this.units.delete(msg.unit); this.emit('units'); return
      case 'bye': return
    }
  }

  ecgChunk (c: EcgChunk): void {
    const m = this.units.get(c.unit)
    if (m === undefined) return
    if (m.ecg === null || m.ecg.epoch !== c.epoch || m.ecg.rateHz !== c.rateHz) m.ecg = new EcgBuffer(c.epoch, c.rateHz)
    m.ecg.write(c)
  }

  private setView (v: UnitView): void {
    let m = this.units.get(v.unit)
    if (m === undefined) {
      m = { view: v, trend: null, ecg: null, news2History: [] }
      this.units.set(v.unit, m)
      this.emit('units')
    }
    if (v.news2 === null && m.view.news2 !== null && m.view.encounter === v.encounter) v.news2 = m.view.news2
    m.view = v
    if (m.trend !== null && m.trend.epoch !== v.trendEpoch) m.trend = null
    if (v.row !== null) {
      m.trend ??= new Trend(v.trendEpoch)
      if (!m.trend.set(v.row.index, v.row.t, v.row.values, v.row.position)) this.onResync(v.unit, m.trend.next)
    }
  }

  private setTrend (msg: Extract<ServerMessage, { type: 'trend' }>): void {
    const m = this.units.get(msg.unit)
    if (m === undefined) return
    if (m.trend === null || m.trend.epoch !== msg.epoch || msg.from < m.trend.base) {
      // A fuller history than ours: take it, then re-apply the rows we had after it.
      const old = m.trend !== null && m.trend.epoch === msg.epoch ? m.trend : null
      m.trend = new Trend(msg.epoch)
      this.applyRows(m.trend, msg)
      if (old !== null) for (let k = 0; k < old.t.length; k++) m.trend.set(old.base + k, old.t[k]!, old.cols.map(c => c[k] ?? null), old.positions[k] ?? null)
    } else {
      this.applyRows(m.trend, msg)
    }
    m.trend.backfilled = true
    this.emit('unit', msg.unit)
  }

  private applyRows (trend: Trend, msg: Extract<ServerMessage, { type: 'trend' }>): void {
    for (let k = 0; k < msg.t.length; k++) {
      trend.set(msg.from + k, msg.t[k]!, msg.cols.map(c => c[k] ?? null), msg.positions[k] ?? null)
    }
  }

  private setAlert (e: AlertEvent): void {
    this.alerts.set(e.alert.id, e.alert)
    // Cleared and acknowledged: nothing left to act on.
    if (e.alert.clearedAt !== null && e.alert.acknowledgedAt !== null) this.alerts.delete(e.alert.id)
    this.emit('alerts')
  }

  private setNews2 (unit: string, n: News2View): void {
    const m = this.units.get(unit)
    if (m === undefined) return
    m.view.news2 = n
    const last = m.news2History[m.news2History.length - 1]
    if (last === undefined || n.at > last.t) m.news2History.push({ t: n.at, total: n.total, partial: n.partial })
    this.emit('unit', unit)
  }

  /** The current encounter's assignment, if any (one made for the previous patient does not count). */
  assignmentOf (unit: string): Assignment | null {
    const a = this.assignments.get(unit)
    const m = this.units.get(unit)
    return a === undefined || m === undefined || a.encounter !== m.view.encounter ? null : a
  }

  /**
   * What team views need to know about every unit: cardiac or stroke patient, from the crew's
   * assessment or an open STEMI / stroke alert. One pass over units and alerts (call once per render).
   */
  contexts (): Map<string, UnitContext> {
    const out = new Map<string, UnitContext>()
    for (const [unit, m] of this.units) {
      const a = m.view.assessment
      out.set(unit, { cardiac: a?.stemiSuspected === true, stroke: a !== null && (a.fastPositive || a.lamsScore >= 4) })
    }
    for (const al of this.alerts.values()) {
      if (al.clearedAt !== null) continue
      const kind: string = al.kind
      const c = out.get(al.unit) ?? { cardiac: false, stroke: false }
      if (kind.includes('stemi')) c.cardiac = true
      if (kind.includes('stroke')) c.stroke = true
      out.set(al.unit, c)
    }
    return out
  }

  /** Open alerts, plus cleared high ones nobody acknowledged (they latch until someone does). */
  activeAlerts (unit?: string): Alert[] {
    const out: Alert[] = []
    for (const a of this.alerts.values()) {
      if (unit !== undefined && a.unit !== unit) continue
      if (a.clearedAt !== null && (a.acknowledgedAt !== null || a.priority !== 'high')) continue
      out.push(a)
    }
    const rank = { high: 0, medium: 1, low: 2 }
    return out.sort((a, b) => rank[a.priority] - rank[b.priority] || b.raisedAt - a.raisedAt)
  }
}
