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

export class FleetView {
  readonly el: HTMLElement
  private readonly cards: HTMLElement
  private readonly map: HTMLElement
  /** One element per unit, kept across renders: only its contents change, so a click that
   * straddles an update (mousedown before, mouseup after) still lands on the card. */
  private readonly cardEls = new Map<string, HTMLElement>()

  constructor (private readonly store: Store, private readonly open: (unit: string) => void) {
    this.cards = h('div', { class: 'cards' })
    this.map = h('div', { class: 'map-panel' })
    this.el = h('main', { class: 'fleet' }, this.cards, this.map)
  }

  render (): void {
    const now = Date.now() + this.store.skewMs
    const units = [...this.store.units.values()]
    const alertsOf = new Map<string, Alert[]>()
    for (const a of this.store.activeAlerts()) {
      const list = alertsOf.get(a.unit) ?? []
      list.push(a)
      alertsOf.set(a.unit, list)
    }
    // Order by tiers that change rarely and mean something (an unacknowledged alert's priority,
    // then the NEWS2 band), not by the total: cards must not jump under a clinician's finger.
    const urgency = (m: UnitModel): number => {
      const top = (alertsOf.get(m.view.unit) ?? []).filter(a => a.acknowledgedAt === null).reduce((r, a) => Math.max(r, RANK[a.priority]), 0)
      return top * 10 + BAND_RANK[m.view.news2?.band ?? 'none']
    }
    units.sort((a, b) => urgency(b) - urgency(a) || a.view.unit.localeCompare(b.view.unit))
    for (const unit of [...this.cardEls.keys()]) if (!this.store.units.has(unit)) this.cardEls.delete(unit)
    if (units.length === 0) {
      replace(this.cards, h('p', { class: 'empty' }, 'No ambulance is streaming right now.'))
    } else {
      const els = units.map(m => this.card(m, alertsOf.get(m.view.unit) ?? [], now))
      if (els.length !== this.cards.children.length || els.some((el, i) => this.cards.children[i] !== el)) this.cards.replaceChildren(...els)
    }
    const size = Math.max(260, Math.min(this.map.clientWidth || 420, 520))
    replace(this.map,
      h('h2', {}, `Units → ${this.store.hospital.name}`),
      renderMap(this.store, size, this.open))
  }

  private card (m: UnitModel, alerts: Alert[], now: number): HTMLElement {
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
    el.className = `card${stale ? ' stale' : ''}${top !== null ? ` alarm-${top}` : ''}`
    replace(el,
      h('header', {},
      h('div', { class: 'ident' }, h('span', { class: 'unit-name' }, v.unit), h('span', { class: 'enc' }, v.encounter === '' ? 'no encounter' : v.encounter)),
      news2Badge(v.news2)),
    assessmentBadges(v.assessment, now),
    numericTiles(v, now, true),
    alerts.length === 0
      ? h('div', { class: 'chips none' }, 'No open alerts')
      : h('div', { class: 'chips' }, alerts.slice(0, 3).map(a =>
        h('span', { class: `chip prio-${a.priority}${a.acknowledgedAt !== null ? ' acked' : ''}`, 'data-alert-id': a.id }, `${MARK[a.priority]} ${a.message}`)),
      alerts.length > 3 ? h('span', { class: 'chip more' }, `+${alerts.length - 3}`) : null),
      h('footer', {}, travel(this.store, m), lastSeen(m, now)))
    return el
  }
}
