/**
 * Alerts, visibly and audibly distinct by priority (IEC 60601-1-8 colours and markers: high =
 * red "!!!", medium = yellow "!!", low = cyan "!"). An unacknowledged high-priority alert puts a
 * banner on top of every view and a flashing red frame around the page until someone acknowledges
 * it — on any dashboard: the acknowledgement comes back as an alert event to all of them.
 */
import type { Alert } from '../../streams/live/protocol.js'
import { acknowledge } from './api.js'
import { Sounder } from './audio.js'
import { h } from './dom.js'
import { ecgButton } from './ecg-snapshot-view.js'
import { ago, clock } from './format.js'
import type { Store } from './store.js'
import type { TeamView } from './team-view.js'

export const MARK: Record<Alert['priority'], string> = { high: '!!!', medium: '!!', low: '!' }
const KIND: Record<Alert['kind'], string> = {
  threshold: 'Vital sign', news2: 'NEWS2', device_alarm: 'Monitor alarm', stemi: 'STEMI', stroke: 'Stroke', signal_loss: 'Signal loss', stream_loss: 'Sensor off'
}

/** Whether an alert still asks for someone's action (the banner and the sound). */
export function needsAck (a: Alert): boolean { return a.acknowledgedAt === null }

/** One alert as a row with its Acknowledge button (keyed by id so updates do not steal clicks). */
export function alertRow (a: Alert, now: number, onError: (msg: string) => void, showUnit = true): HTMLElement {
  const acked = a.acknowledgedAt !== null
  const state = a.clearedAt !== null ? 'cleared' : acked ? 'acknowledged' : 'open'
  const btn = h('button', {
    class: 'ack',
    type: 'button',
    disabled: acked,
    'data-ack': a.id,
    onclick: ev => {
      const b = ev.currentTarget as HTMLButtonElement
      b.disabled = true
      b.textContent = 'Acknowledging…'
      acknowledge(a.id).catch((err: Error) => { b.disabled = false; b.textContent = 'Acknowledge'; onError(`Acknowledge failed: ${err.message}`) })
    }
  }, acked ? `Ack'd by ${a.acknowledgedBy ?? '?'} ${clock(a.acknowledgedAt!)}` : 'Acknowledge')
  return h('div', { class: `alert prio-${a.priority} state-${state}`, 'data-alert-id': a.id, 'data-priority': a.priority, 'data-state': state, 'data-kind': a.kind, 'data-unit': a.unit, role: a.priority === 'high' && !acked ? 'alert' : null },
    h('span', { class: 'mark', 'aria-label': `${a.priority} priority` }, MARK[a.priority]),
    h('span', { class: 'prio' }, a.priority.toUpperCase()),
    showUnit ? h('span', { class: 'unit-id' }, a.unit) : null,
    h('span', { class: 'kind' }, KIND[a.kind] ?? a.kind),
    h('span', { class: 'msg' }, a.message),
    h('span', { class: 'when' }, a.clearedAt !== null ? `cleared ${ago(now - a.clearedAt)}` : `raised ${ago(now - a.raisedAt)}`,
      a.escalations > 0 ? h('b', { class: 'esc' }, ` · escalated ×${a.escalations}`) : null),
    ecgButton(a, onError), // issue 9: the 12-lead snapshot of an ECG STEMI alert
    btn)
}

/**
 * Renders alerts into `list`, keeping the element of every alert that did not change (so a click
 * in progress is not lost to a re-render) and refreshing only the relative times.
 */
export function renderAlerts (list: HTMLElement, alerts: Alert[], now: number, onError: (msg: string) => void, showUnit = true): void {
  const old = new Map<string, HTMLElement>()
  for (const el of Array.from(list.children) as HTMLElement[]) old.set(el.dataset.sig ?? '', el)
  const next: HTMLElement[] = []
  for (const a of alerts) {
    const sig = `${a.id}|${a.updatedAt}|${a.acknowledgedAt ?? ''}|${a.clearedAt ?? ''}|${a.escalations}|${a.priority}|${a.realarms}`
    let el = old.get(sig)
    if (el === undefined) {
      el = alertRow(a, now, onError, showUnit)
      el.dataset.sig = sig
    } else {
      const when = el.querySelector('.when')
      if (when?.firstChild !== null && when?.firstChild !== undefined) {
        when.firstChild.textContent = a.clearedAt !== null ? `cleared ${ago(now - a.clearedAt)}` : `raised ${ago(now - a.raisedAt)}`
      }
    }
    next.push(el)
  }
  const same = next.length === list.children.length && next.every((el, i) => list.children[i] === el)
  if (!same) list.replaceChildren(...next)
}

/** At most this many banners: the patient on screen must never be pushed below the fold. */
export const BANNER_CAP = 3

export interface BannerOptions {
  /** The team view (which alerts are in the clinician's face); absent = every alert. */
  view?: TeamView
  /** Opens the full alert list (the bar's button). */
  openList?: () => void
}

/** Most urgent first, newest first within a priority. */
export function byUrgency (a: Alert, b: Alert): number {
  return RANK[b.priority] - RANK[a.priority] || b.raisedAt - a.raisedAt
}
const RANK: Record<Alert['priority'], number> = { high: 3, medium: 2, low: 1 }

export class AlertBanner {
  readonly el: HTMLElement
  readonly sounder = new Sounder()
  private readonly rows: HTMLElement
  private readonly bar: HTMLElement
  private readonly audioBtn: HTMLButtonElement
  private seen = new Set<string>()
  /** The unit whose page is open: its alerts come first. */
  private focus: string | null = null

  constructor (private readonly store: Store, private readonly onError: (msg: string) => void, private readonly opts: BannerOptions = {}) {
    this.rows = h('div', { class: 'banner-rows' })
    this.bar = h('div', { class: 'alert-bar' })
    this.audioBtn = h('button', { class: 'audio-off', type: 'button', onclick: () => { this.sounder.enable() } }, '🔇 Alarm sound is off — click to enable')
    this.sounder.onStateChange = running => { this.audioBtn.hidden = running }
    this.el = h('section', { class: 'banner', 'aria-live': 'assertive' }, this.audioBtn, this.rows, this.bar)
    // Any click on the page is a gesture that may unlock audio.
    document.addEventListener('pointerdown', () => { if (!this.sounder.running) this.sounder.enable() }, { capture: true })
    setInterval(() => { this.sounder.tick(performance.now()); this.render() }, 1000)
  }

  /** The unit page that is open (null on the boards). */
  setFocus (unit: string | null): void { this.focus = unit }

  render (): void {
    const now = Date.now() + this.store.skewMs
    const active = this.store.activeAlerts()
    const view = this.opts.view
    const ctx = view === undefined ? null : this.store.contexts()
    const inView = (a: Alert): boolean => view === undefined || ctx === null || view.alertIn(a, ctx)
    const unacked = active.filter(needsAck)
    // In the clinician's face: unacknowledged, medium or high, in their team view; the open
    // unit's own alerts first (whatever the view), then by urgency, newest first.
    const mine = unacked.filter(a => a.priority !== 'low' && (inView(a) || a.unit === this.focus))
    const focus = this.focus
    mine.sort((a, b) => Number(b.unit === focus) - Number(a.unit === focus) || byUrgency(a, b))
    const shown = mine.slice(0, BANNER_CAP)
    renderAlerts(this.rows, shown, now, this.onError)
    const shownIds = new Set(shown.map(a => a.id))
    const moreMine = unacked.filter(a => !shownIds.has(a.id) && (inView(a) || a.unit === focus))
    const outside = unacked.filter(a => !shownIds.has(a.id) && !inView(a) && a.unit !== focus)
    this.renderBar(moreMine, outside, active.length)
    const high = mine.some(a => a.priority === 'high')
    document.body.classList.toggle('alarm-high', high)
    document.body.classList.toggle('alarm-medium', !high && mine.length > 0)
    this.sounder.wanted = high ? 'high' : mine.length > 0 ? 'medium' : null
    this.audioBtn.hidden = this.sounder.running
    // A newly raised alert in the view sounds at once, and so does one whose acknowledgement was
    // withdrawn (a worsening, or the silence ran out: `realarms` grew); high/medium then repeat
    // from tick().
    for (const a of unacked) {
      const key = `${a.id}|${a.realarms}`
      if (this.seen.has(key)) continue
      this.seen.add(key)
      if (inView(a) || a.unit === focus) this.sounder.play(a.priority)
    }
  }

  /** "+N more in your view (k high) · M outside your view (j high) · All alerts (T)". */
  private renderBar (more: Alert[], outside: Alert[], total: number): void {
    const high = (l: Alert[]): number => l.reduce((n, a) => n + (a.priority === 'high' ? 1 : 0), 0)
    const sig = `${more.length}|${high(more)}|${outside.length}|${high(outside)}|${total}`
    if (this.bar.dataset.sig === sig) return
    this.bar.dataset.sig = sig
    const open = (): void => { this.opts.openList?.() }
    const hm = high(more)
    const ho = high(outside)
    this.bar.replaceChildren(
      h('button', { type: 'button', class: `bar-more${hm > 0 ? ' has-high' : ''}`, 'data-count': more.length, onclick: open },
        more.length === 0 ? 'No other unacknowledged alert in your view' : `+${more.length} more unacknowledged${hm > 0 ? ` (${hm} high)` : ''}`),
      h('button', { type: 'button', class: `bar-outside${ho > 0 ? ' has-high' : ''}`, 'data-count': outside.length, 'data-high': ho, onclick: open },
        `${outside.length} outside your view${ho > 0 ? ` (${ho} high)` : ''}`),
      h('button', { type: 'button', class: 'bar-all', onclick: open }, `All alerts (${total}) ▸`))
  }
}
