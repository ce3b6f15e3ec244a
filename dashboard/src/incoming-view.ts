/**
 * Incoming patients (the board emergency departments keep, EMTrack-style): one row per ambulance
 * heading here — patient category (STEMI, stroke, or the NEWS2 band), ETA, time since first
 * medical contact (the monitor's first frame) or since last known well for a stroke, status (en
 * route, arrived, handed over) and the acknowledge-and-assign every dashboard sees ("cath lab
 * activated", "stroke team on standby"), recorded on the server with who and when.
 *
 * At 100 ambulances: one row element per unit, kept across renders, whose cells are rewritten only
 * when their text changes; rows are a fixed height with `content-visibility: auto`, so the
 * browser lays out and paints only those on screen.
 */
import { ASSIGNMENT_LABELS, type Alert, type AssignmentAction, type News2Band } from '../../streams/live/protocol.js'
import { assign } from './api.js'
import { h } from './dom.js'
import { STALE_AFTER_MS } from './fleet-view.js'
import { ago, clock, distanceM, etaSeconds, hm, minutes } from './format.js'
import type { Store, UnitModel } from './store.js'
import type { TeamView } from './team-view.js'

/** Within this distance of the hospital a unit counts as arrived (the fleet card says the same). */
export const ARRIVED_M = 150
const BAND_RANK: Record<News2Band, number> = { high: 4, medium: 3, 'low-medium': 2, low: 1, none: 0 }
const PRIO: Record<Alert['priority'], number> = { high: 3, medium: 2, low: 1 }
/** By ETA, the next arrivals come first; those at the door and handed over after them. */
const STATUS_RANK: Record<IncomingRow['status'], number> = { 'en route': 0, arrived: 1, 'handed over': 2 }

export type Category = 'stemi' | 'stroke' | News2Band

export interface IncomingRow {
  unit: string
  category: Category
  /** Seconds, Infinity when no position. */
  etaS: number
  status: 'en route' | 'arrived' | 'handed over'
  urgency: number
  lost: boolean
  inView: boolean
}

/** One row's facts (pure, so the ordering can be reasoned about apart from the DOM). */
export function incomingRow (store: Store, m: UnitModel, alerts: Alert[], now: number, inView: boolean): IncomingRow {
  const v = m.view
  const a = v.assessment
  const kinds = alerts.map(x => x.kind as string)
  const stemi = a?.stemiSuspected === true || kinds.some(k => k.includes('stemi'))
  const stroke = (a !== null && (a.fastPositive || a.lamsScore >= 4)) || kinds.some(k => k.includes('stroke'))
  const band = v.news2?.band ?? 'none'
  const category: Category = stemi ? 'stemi' : stroke ? 'stroke' : band
  let etaS = Infinity
  let arrived = false
  if (v.position !== null) {
    const d = distanceM(v.position.latitude, v.position.longitude, store.hospital.latitude, store.hospital.longitude)
    arrived = d < ARRIVED_M
    etaS = arrived ? 0 : etaSeconds(d, v.position.speedMps)
  }
  const assignment = store.assignmentOf(v.unit)
  const status = assignment?.action === 'handed_over' ? 'handed over' : arrived ? 'arrived' : 'en route'
  const top = alerts.filter(x => x.acknowledgedAt === null).reduce((r, x) => Math.max(r, PRIO[x.priority]), 0)
  // Time-critical pathways first, then NEWS2 band, then the loudest unacknowledged alert.
  const urgency = (stemi || stroke ? 50 : BAND_RANK[band] * 10) + top - (status === 'handed over' ? 100 : 0)
  return { unit: v.unit, category, etaS, status, urgency, lost: now - v.lastSeenMs > STALE_AFTER_MS, inView }
}

const CATEGORY_LABEL: Record<Category, string> = {
  stemi: 'STEMI', stroke: 'Stroke', high: 'NEWS2 high', medium: 'NEWS2 medium', 'low-medium': 'NEWS2 low-med', low: 'NEWS2 low', none: 'NEWS2 —'
}

/** The actions offered on a row: the pathway's own first. */
function actionsFor (c: Category): AssignmentAction[] {
  if (c === 'stemi') return ['cath_lab_activated', 'acknowledged', 'handed_over']
  if (c === 'stroke') return ['stroke_team_standby', 'acknowledged', 'handed_over']
  if (c === 'high') return ['resus_ready', 'acknowledged', 'handed_over']
  return ['acknowledged', 'handed_over']
}

function setText (el: Element, text: string): void { if (el.textContent !== text) el.textContent = text }

interface RowEls { tr: HTMLElement, cells: HTMLElement[], actions: HTMLElement, actionsSig: string }

export class IncomingView {
  readonly el: HTMLElement
  private readonly body: HTMLElement
  private readonly summary: HTMLElement
  private sortBy: 'urgency' | 'eta' = 'urgency'
  private readonly rows = new Map<string, RowEls>()

  constructor (private readonly store: Store, private readonly view: TeamView, private readonly open: (unit: string) => void, private readonly onError: (m: string) => void) {
    const sortBtn = (key: 'urgency' | 'eta', label: string): HTMLElement => h('button', {
      type: 'button', class: `sort${key === this.sortBy ? ' on' : ''}`, 'data-sort': key,
      onclick: ev => {
        this.sortBy = key
        for (const b of Array.from(this.el.querySelectorAll('button.sort'))) b.classList.toggle('on', b === ev.currentTarget)
        this.render()
      }
    }, label)
    this.summary = h('span', { class: 'muted' })
    this.body = h('div', { class: 'incoming-rows', role: 'rowgroup' })
    this.el = h('main', { class: 'incoming' },
      h('div', { class: 'incoming-head' }, h('h2', {}, 'Incoming patients'), this.summary, h('span', { class: 'spacer' }), 'Sort: ', sortBtn('urgency', 'Urgency'), sortBtn('eta', 'ETA')),
      h('div', { class: 'incoming-table', role: 'table', 'aria-label': 'incoming patients' },
        h('div', { class: 'irow ihead', role: 'row' }, ['Unit', 'Category', 'ETA', 'Since', 'NEWS2', 'Status', 'Assigned', 'Actions'].map(t => h('span', { role: 'columnheader' }, t))),
        this.body))
  }

  render (): void {
    const now = Date.now() + this.store.skewMs
    const ctx = this.store.contexts()
    const alertsOf = new Map<string, Alert[]>()
    for (const a of this.store.activeAlerts()) {
      const l = alertsOf.get(a.unit)
      if (l === undefined) alertsOf.set(a.unit, [a]); else l.push(a)
    }
    const facts: IncomingRow[] = []
    for (const m of this.store.units.values()) facts.push(incomingRow(this.store, m, alertsOf.get(m.view.unit) ?? [], now, this.view.unitIn(m.view.unit, ctx)))
    // The team's own patients first (all of them in the ED view), then the chosen order.
    facts.sort((a, b) => Number(b.inView) - Number(a.inView) ||
      (this.sortBy === 'eta' ? STATUS_RANK[a.status] - STATUS_RANK[b.status] || a.etaS - b.etaS || b.urgency - a.urgency : b.urgency - a.urgency || a.etaS - b.etaS) || a.unit.localeCompare(b.unit))
    const enRoute = facts.filter(f => f.status === 'en route').length
    setText(this.summary, `${facts.length} units · ${enRoute} en route`)
    for (const unit of [...this.rows.keys()]) if (!this.store.units.has(unit)) this.rows.delete(unit)
    const els = facts.map(f => this.row(f, this.store.units.get(f.unit)!, now))
    const kids = this.body.children
    if (els.length !== kids.length || els.some((el, i) => kids[i] !== el)) this.body.replaceChildren(...els)
  }

  private row (f: IncomingRow, m: UnitModel, now: number): HTMLElement {
    let r = this.rows.get(f.unit)
    if (r === undefined) {
      const cells = Array.from({ length: 7 }, () => h('span', { role: 'cell' }))
      cells[0]!.classList.add('iunit')
      cells[0]!.addEventListener('click', () => { this.open(f.unit) })
      const actions = h('span', { role: 'cell', class: 'iactions' })
      r = { tr: h('div', { class: 'irow', role: 'row', 'data-unit': f.unit }, cells, actions), cells, actions, actionsSig: '' }
      this.rows.set(f.unit, r)
    }
    const v = m.view
    const a = v.assessment
    const asg = this.store.assignmentOf(f.unit)
    r.tr.className = `irow cat-${f.category}${f.lost ? ' lost' : ''}${f.status === 'handed over' ? ' done' : ''}${f.inView ? '' : ' other-team'}`
    r.tr.dataset.category = f.category
    r.tr.dataset.status = f.status
    const [unit, cat, eta, since, news2, status, assigned] = r.cells as [HTMLElement, HTMLElement, HTMLElement, HTMLElement, HTMLElement, HTMLElement, HTMLElement]
    setText(unit, f.lost ? `${f.unit} ⚠ NO SIGNAL ${ago(now - v.lastSeenMs)}` : f.unit)
    setText(cat, CATEGORY_LABEL[f.category])
    cat.className = `icat cat-${f.category}`
    setText(eta, f.status === 'arrived' || f.status === 'handed over' ? '—' : f.etaS === Infinity ? 'no position' : minutes(f.etaS))
    const lkw = f.category === 'stroke' && a !== null && a.lastKnownWellMs > 0
    setText(since, lkw ? `LKW ${hm(now - a.lastKnownWellMs)}` : v.firstSeenMs > 0 ? `FMC ${hm(now - v.firstSeenMs)}` : '—')
    setText(news2, v.news2 === null ? '—' : `${v.news2.total}${v.news2.partial ? '+' : ''}`)
    setText(status, f.status)
    status.className = `istatus st-${f.status.replace(' ', '-')}`
    setText(assigned, asg === null ? '' : `${ASSIGNMENT_LABELS[asg.action]} · ${asg.by} ${clock(asg.at)}`)
    assigned.className = asg === null ? 'iassigned' : `iassigned act-${asg.action}`
    const offered = actionsFor(f.category)
    const sig = `${offered.join()}|${asg?.action ?? ''}`
    if (sig !== r.actionsSig) {
      r.actionsSig = sig
      r.actions.replaceChildren(...offered.map(action => h('button', {
        type: 'button',
        class: `assign${asg?.action === action ? ' done' : ''}`,
        'data-action': action,
        disabled: asg?.action === action,
        onclick: ev => {
          const b = ev.currentTarget as HTMLButtonElement
          b.disabled = true
          assign(f.unit, action).catch((err: Error) => { b.disabled = false; this.onError(`Assign failed: ${err.message}`) })
        }
      }, ASSIGNMENT_LABELS[action])))
    }
    return r.tr
  }
}
