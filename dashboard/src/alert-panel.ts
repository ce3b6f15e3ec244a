/**
 * The full alert list, opened from the alert bar: every open alert (and the cleared high ones
 * nobody acknowledged), in or out of the clinician's team view, with sorting (urgency, newest,
 * unit) and filtering (scope, priority, kind, unit, acknowledged). Nothing the banners leave out
 * is more than one click away.
 */
import type { Alert } from '../../streams/live/protocol.js'
import { byUrgency, renderAlerts } from './alerts-view.js'
import { h } from './dom.js'
import type { Store } from './store.js'
import type { TeamView } from './team-view.js'

type Sort = 'urgency' | 'newest' | 'unit'

export class AlertPanel {
  readonly el: HTMLElement
  private readonly list: HTMLElement
  private readonly count: HTMLElement
  private readonly scope: HTMLSelectElement
  private readonly prio: HTMLSelectElement
  private readonly kind: HTMLSelectElement
  private readonly unit: HTMLInputElement
  private readonly sort: HTMLSelectElement
  private readonly acked: HTMLInputElement
  open = false

  constructor (private readonly store: Store, private readonly view: TeamView, private readonly onError: (msg: string) => void, private readonly changed: () => void) {
    const rerender = (): void => { this.changed() }
    this.scope = h('select', { name: 'scope', onchange: rerender }, h('option', { value: 'all' }, 'All alerts'), h('option', { value: 'view' }, 'My view only'), h('option', { value: 'outside' }, 'Outside my view'))
    this.prio = h('select', { name: 'priority', onchange: rerender }, h('option', { value: 'low' }, 'any priority'), h('option', { value: 'medium' }, 'medium and high'), h('option', { value: 'high' }, 'high only'))
    this.kind = h('select', { name: 'kind', onchange: rerender }, h('option', { value: '' }, 'any kind'))
    this.unit = h('input', { name: 'unit', type: 'search', placeholder: 'unit…', oninput: rerender })
    this.sort = h('select', { name: 'sort', onchange: rerender }, h('option', { value: 'urgency' }, 'most urgent'), h('option', { value: 'newest' }, 'newest'), h('option', { value: 'unit' }, 'unit'))
    this.acked = h('input', { type: 'checkbox', name: 'acked', checked: true, onchange: rerender })
    this.list = h('div', { class: 'alert-list' })
    this.count = h('span', { class: 'muted' })
    this.el = h('aside', { class: 'alert-panel', hidden: true, 'aria-label': 'all alerts' },
      h('header', {}, h('h2', {}, 'Alerts '), this.count, h('button', { type: 'button', class: 'close', onclick: () => { this.toggle(false) } }, 'Close ✕')),
      h('div', { class: 'filters' }, this.scope, this.prio, this.kind, this.unit, h('label', {}, 'Sort ', this.sort), h('label', {}, this.acked, ' acknowledged')),
      this.list)
  }

  toggle (open = !this.open): void {
    this.open = open
    this.el.hidden = !open
    this.changed()
  }

  render (): void {
    if (!this.open) return
    const now = Date.now() + this.store.skewMs
    const ctx = this.store.contexts()
    const all = this.store.activeAlerts()
    // The kind filter offers every kind present, known to this page or not.
    const kinds = [...new Set(all.map(a => a.kind as string))].sort()
    const have = Array.from(this.kind.options).map(o => o.value).slice(1)
    if (kinds.join() !== have.join()) {
      const cur = this.kind.value
      this.kind.replaceChildren(h('option', { value: '' }, 'any kind'), ...kinds.map(k => h('option', { value: k }, k)))
      this.kind.value = kinds.includes(cur) ? cur : ''
    }
    const rank = { low: 1, medium: 2, high: 3 }
    const min = rank[this.prio.value as Alert['priority']]
    const q = this.unit.value.trim().toLowerCase()
    const out = all.filter(a => {
      const inView = this.view.alertIn(a, ctx)
      if (this.scope.value === 'view' && !inView) return false
      if (this.scope.value === 'outside' && inView) return false
      if (rank[a.priority] < min) return false
      if (this.kind.value !== '' && a.kind !== this.kind.value) return false
      if (q !== '' && !a.unit.toLowerCase().includes(q)) return false
      if (!this.acked.checked && a.acknowledgedAt !== null) return false
      return true
    })
    const sort = this.sort.value as Sort
    out.sort(sort === 'newest' ? (a, b) => b.raisedAt - a.raisedAt : sort === 'unit' ? (a, b) => a.unit.localeCompare(b.unit) || byUrgency(a, b) : byUrgency)
    this.count.textContent = `${out.length} of ${all.length}`
    renderAlerts(this.list, out, now, this.onError)
  }
}
