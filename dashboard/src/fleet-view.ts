/**
 * Fleet view: one card per active unit — NEWS2, numerics coloured by score, open alerts, crew
 * assessment badges, distance and ETA to the hospital, last-seen time — next to the schematic
 * map. Cards are ordered by what needs attention first: unacknowledged alert priority, then NEWS2.
 */
import type { Alert } from '../../streams/live/protocol.js'
import type { News2Band } from '../../streams/live/protocol.js'
import { MARK } from './alerts-view.js'
import { assessmentBadges } from './assessment.js'
import { h, replace } from './dom.js'
import { ago, distanceM, etaSeconds, km, minutes } from './format.js'
import { renderMap } from './map-view.js'
import { news2Badge, numericTiles } from './numerics.js'
import type { Store, UnitModel } from './store.js'
import type { TeamView } from './team-view.js'

/** A unit silent for this long is shown as "no signal". */
export const STALE_AFTER_MS = 10_000
const RANK: Record<Alert['priority'], number> = { high: 3, medium: 2, low: 1 }
const BAND_RANK: Record<News2Band, number> = { high: 4, medium: 3, 'low-medium': 2, low: 1, none: 0 }

export function travel (store: Store, m: UnitModel): HTMLElement | null {
  const p = m.view.position
  if (p === null) return null
  const d = distanceM(p.latitude, p.longitude, store.hospital.latitude, store.hospital.longitude)
  const arrived = d < 150
  return h('div', { class: 'travel' },
    h('span', { class: 'dist' }, arrived ? 'at the hospital' : `${km(d)} to go`),
    arrived ? null : h('span', { class: 'eta' }, `ETA ${minutes(etaSeconds(d, p.speedMps))}`),
    h('span', { class: 'speed' }, `${Math.round(p.speedMps * 3.6)} km/h`))
}

export function lastSeen (m: UnitModel, now: number): HTMLElement {
  const age = now - m.view.lastSeenMs
  return age > STALE_AFTER_MS
    ? h('span', { class: 'seen lost' }, `NO SIGNAL · ${ago(age)}`)
    : h('span', { class: 'seen' }, `seen ${ago(age)}`)
}

type FleetSort = 'urgency' | 'news2' | 'eta' | 'seen' | 'unit'
/** Above this many cards shown, cards go compact (fewer tiles, no chips row). */
export const COMPACT_ABOVE = 12

export class FleetView {
  readonly el: HTMLElement
  private readonly cards: HTMLElement
  private readonly map: HTMLElement
  private readonly search: HTMLInputElement
  private readonly sort: HTMLSelectElement
  private readonly count: HTMLElement
  /** One element per unit, kept across renders: only its contents change, so a click that
   * straddles an update (mousedown before, mouseup after) still lands on the card. */
  private readonly cardEls = new Map<string, HTMLElement>()
  /** Signature of what each card shows: a card is rebuilt only when it changes. */
  private readonly cardSig = new Map<string, string>()
  private lastMapDraw = 0
  private mapUnits = -1

  constructor (private readonly store: Store, private readonly open: (unit: string) => void, private readonly view?: TeamView) {
    this.cards = h('div', { class: 'cards' })
    this.map = h('div', { class: 'map-panel' })
    this.search = h('input', { type: 'search', class: 'fleet-search', placeholder: 'Search unit…', 'aria-label': 'search by unit', oninput: () => { this.render() } })
    this.sort = h('select', { class: 'fleet-sort', 'aria-label': 'sort units', onchange: () => { this.render() } },
      h('option', { value: 'urgency' }, 'Needs attention'), h('option', { value: 'news2' }, 'NEWS2'), h('option', { value: 'eta' }, 'ETA'),
      h('option', { value: 'seen' }, 'Last seen'), h('option', { value: 'unit' }, 'Unit'))
    this.count = h('span', { class: 'muted fleet-count' })
    this.el = h('main', { class: 'fleet' },
      h('div', { class: 'fleet-main' }, h('div', { class: 'fleet-tools' }, this.search, h('label', {}, 'Sort ', this.sort), this.count), this.cards),
      this.map)
  }

  render (): void {
    const now = Date.now() + this.store.skewMs
    const q = this.search.value.trim().toLowerCase()
    const all = [...this.store.units.values()]
    const units = q === '' ? all : all.filter(m => m.view.unit.toLowerCase().includes(q))
    const alertsOf = new Map<string, Alert[]>()
    for (const a of this.store.activeAlerts()) {
      const list = alertsOf.get(a.unit)
      if (list === undefined) alertsOf.set(a.unit, [a]); else list.push(a)
    }
    const ctx = this.view === undefined ? null : this.store.contexts()
    const mine = (m: UnitModel): number => ctx === null || this.view === undefined ? 1 : Number(this.view.unitIn(m.view.unit, ctx))
    // "Needs attention" orders by tiers that change rarely and mean something (lost signal, an
    // unacknowledged alert's priority, the NEWS2 band), not by the total: cards must not jump
    // under a clinician's finger. The team's own patients come first.
    const urgency = (m: UnitModel): number => {
      const top = (alertsOf.get(m.view.unit) ?? []).filter(a => a.acknowledgedAt === null).reduce((r, a) => Math.max(r, RANK[a.priority]), 0)
      return (now - m.view.lastSeenMs > STALE_AFTER_MS ? 100 : 0) + top * 10 + BAND_RANK[m.view.news2?.band ?? 'none']
    }
    const eta = (m: UnitModel): number => {
      const p = m.view.position
      return p === null ? Infinity : etaSeconds(distanceM(p.latitude, p.longitude, this.store.hospital.latitude, this.store.hospital.longitude), p.speedMps)
    }
    const by = this.sort.value as FleetSort
    const key: (m: UnitModel) => number =
      by === 'news2' ? m => -(m.view.news2?.total ?? -1)
        : by === 'eta' ? eta
          : by === 'seen' ? m => m.view.lastSeenMs // oldest (longest silent) first
            : by === 'unit' ? () => 0
              : m => -urgency(m)
    const keys = new Map(units.map(m => [m, key(m)]))
    units.sort((a, b) => mine(b) - mine(a) || keys.get(a)! - keys.get(b)! || a.view.unit.localeCompare(b.view.unit))
    for (const unit of [...this.cardEls.keys()]) if (!this.store.units.has(unit)) { this.cardEls.delete(unit); this.cardSig.delete(unit) }
    const compact = units.length > COMPACT_ABOVE
    this.cards.classList.toggle('compact', compact)
    this.count.textContent = q === '' ? `${all.length} units` : `${units.length} of ${all.length} units`
    if (units.length === 0) {
      replace(this.cards, h('p', { class: 'empty' }, all.length === 0 ? 'No ambulance is streaming right now.' : 'No unit matches.'))
    } else {
      const els = units.map(m => this.card(m, alertsOf.get(m.view.unit) ?? [], now, compact))
      if (els.length !== this.cards.children.length || els.some((el, i) => this.cards.children[i] !== el)) this.cards.replaceChildren(...els)
    }
    // The map moves at walking pace on screen: once a second is plenty (and cheap at 300 units).
    // A unit that appears or leaves is drawn at once.
    if (performance.now() - this.lastMapDraw > 950 || this.store.units.size !== this.mapUnits) {
      this.lastMapDraw = performance.now()
      this.mapUnits = this.store.units.size
      const size = Math.max(260, Math.min(this.map.clientWidth || 420, 520))
      replace(this.map,
        h('h2', {}, `Units → ${this.store.hospital.name}`),
        renderMap(this.store, size, this.open))
    }
  }

  private card (m: UnitModel, alerts: Alert[], now: number, compact: boolean): HTMLElement {
    const v = m.view
    const stale = now - v.lastSeenMs > STALE_AFTER_MS
    const unacked = alerts.filter(a => a.acknowledgedAt === null)
    const top = unacked.reduce<Alert['priority'] | null>((r, a) => r === null || RANK[a.priority] > RANK[r] ? a.priority : r, null)
    let el = this.cardEls.get(v.unit)
    if (el === undefined) {
      el = h('article', {
        'data-unit': v.unit,
        tabindex: 0,
        role: 'button',
        'aria-label': `open unit ${v.unit}`,
        onclick: () => { this.open(v.unit) },
        onkeydown: ev => { if ((ev as KeyboardEvent).key === 'Enter') this.open(v.unit) }
      })
      this.cardEls.set(v.unit, el)
    }
    // Rebuild only when something shown changed (values, alerts, age in whole seconds).
    const sig = `${compact ? 1 : 0}|${v.row?.index ?? ''}|${v.news2?.total ?? ''}${v.news2?.band ?? ''}|${v.assessment?.t ?? ''}|${v.position?.t ?? ''}|${Math.floor((now - v.lastSeenMs) / 1000)}|${alerts.map(a => `${a.id}${a.updatedAt}${a.acknowledgedAt ?? ''}`).join()}`
    if (this.cardSig.get(v.unit) === sig) return el
    this.cardSig.set(v.unit, sig)
    el.className = `card${stale ? ' stale' : ''}${top !== null ? ` alarm-${top}` : ''}`
    replace(el,
      h('header', {},
        h('div', { class: 'ident' }, h('span', { class: 'unit-name' }, v.unit), h('span', { class: 'enc' }, v.encounter === '' ? 'no encounter' : v.encounter)),
        stale ? h('span', { class: 'lost-badge' }, 'NO SIGNAL') : null,
        news2Badge(v.news2)),
      assessmentBadges(v.assessment, now),
      numericTiles(v, now, true, compact),
      alerts.length === 0
        ? (compact ? null : h('div', { class: 'chips none' }, 'No open alerts'))
        : h('div', { class: 'chips' }, alerts.slice(0, compact ? 1 : 3).map(a =>
          h('span', { class: `chip prio-${a.priority}${a.acknowledgedAt !== null ? ' acked' : ''}`, 'data-alert-id': a.id }, `${MARK[a.priority]} ${a.message}`)),
        alerts.length > (compact ? 1 : 3) ? h('span', { class: 'chip more' }, `+${alerts.length - (compact ? 1 : 3)}`) : null),
      h('footer', {}, travel(this.store, m), lastSeen(m, now)))
    return el
  }
}
