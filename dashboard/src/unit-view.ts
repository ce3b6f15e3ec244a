/**
 * Unit view: live ECG (lead II or 12 leads), the numerics, the crew's assessment, the unit's
 * alerts with Acknowledge, and 30-minute trends. Opening it subscribes to the unit's waveforms;
 * leaving it unsubscribes, so a page only ever receives the ECG it draws.
 */
import { setSpo2Scale } from './api.js'
import { assessmentPanel } from './assessment.js'
import { renderAlerts } from './alerts-view.js'
import { h, replace } from './dom.js'
import { EcgView, type EcgLayout } from './ecg-view.js'
import { lastSeen, travel } from './fleet-view.js'
import { news2Badge, numericTiles } from './numerics.js'
import type { Store } from './store.js'
import { TrendView } from './trend-view.js'

export class UnitView {
  readonly el: HTMLElement
  private readonly ecg: EcgView
  private readonly trends = new TrendView()
  private readonly head: HTMLElement
  private readonly tiles: HTMLElement
  private readonly assess: HTMLElement
  private readonly alerts: HTMLElement
  private layout: EcgLayout = 'II'
  private readonly layoutBtn: HTMLButtonElement
  private lastTrendDraw = 0
  /** Set once the layout was chosen (by the user, or for a suspected STEMI). */
  private layoutChosen = false
  private readonly scaleBtn: HTMLButtonElement
  private scale: 1 | 2 = 1

  constructor (private readonly store: Store, readonly unit: string, back: () => void, private readonly onError: (m: string) => void) {
    this.ecg = new EcgView(() => this.store.units.get(unit)?.ecg ?? null, this.layout)
    this.layoutBtn = h('button', { type: 'button', class: 'layout', onclick: () => { this.toggle() } }, '12-lead view')
    // RCP 2017: SpO2 scale 2 only for a prescribed 88–92 % target, a clinician's decision (audited).
    this.scaleBtn = h('button', {
      type: 'button',
      class: 'spo2-scale',
      title: 'NEWS2 SpO2 scale 2: only for a prescribed 88–92 % target (hypercapnic respiratory failure)',
      onclick: () => {
        const next = this.scale === 1 ? 2 : 1
        if (!window.confirm(`Score SpO2 on NEWS2 scale ${next} for this encounter? Your name and the time are recorded.`)) return
        setSpo2Scale(unit, next).then(() => {
          this.scale = next
          this.scaleBtn.textContent = next === 2 ? 'SpO2 scale 2 (set) · back to 1' : 'Use SpO2 scale 2'
        }).catch((err: Error) => { this.onError(`SpO2 scale not set: ${err.message}`) })
      }
    }, 'Use SpO2 scale 2')
    this.head = h('div', { class: 'unit-head-info' })
    this.tiles = h('div', {})
    this.assess = h('div', {})
    this.alerts = h('div', { class: 'alert-list' })
    this.el = h('main', { class: 'unit-view', 'data-unit': unit },
      h('div', { class: 'unit-head' },
        h('button', { type: 'button', class: 'back', onclick: back }, '← Fleet'),
        h('h1', {}, unit),
        this.head,
        this.scaleBtn,
        this.layoutBtn),
      h('div', { class: 'unit-body' },
        h('div', { class: 'left' }, this.ecg.el, this.tiles, h('h3', {}, 'Trends · last 30 min'), this.trends.el),
        h('div', { class: 'right' }, h('h3', {}, 'Alerts'), this.alerts, this.assess)))
  }

  start (): void { this.ecg.start() }
  stop (): void { this.ecg.stop() }

  private toggle (): void {
    this.layoutChosen = true
    this.layout = this.layout === 'II' ? '12' : 'II'
    this.layoutBtn.textContent = this.layout === 'II' ? '12-lead view' : 'Lead II view'
    this.ecg.setLayout(this.layout)
  }

  render (): void {
    const m = this.store.units.get(this.unit)
    const now = Date.now() + this.store.skewMs
    if (m === undefined) {
      replace(this.head, h('span', { class: 'seen lost' }, 'This unit is not streaming.'))
      return
    }
    replace(this.head, news2Badge(m.view.news2), travel(this.store, m), lastSeen(m, now),
      h('span', { class: 'enc' }, m.view.encounter))
    // A suspected STEMI is read on all 12 leads (territory, reciprocal changes): open on them.
    if (!this.layoutChosen && m.view.assessment?.stemiSuspected === true && this.layout === 'II') this.toggle()
    replace(this.tiles, numericTiles(m.view, now))
    replace(this.assess, assessmentPanel(m.view.assessment, now))
    const alerts = this.store.activeAlerts(this.unit)
    if (alerts.length === 0) replace(this.alerts, h('p', { class: 'muted' }, 'No open alerts.'))
    else {
      if (this.alerts.querySelector('.muted') !== null) this.alerts.replaceChildren()
      renderAlerts(this.alerts, alerts, now, this.onError, false)
    }
    // Trends move at 1 Hz at most: redrawing them faster would only cost.
    if (performance.now() - this.lastTrendDraw > 900) {
      this.lastTrendDraw = performance.now()
      this.trends.render(m, now)
    }
  }
}
