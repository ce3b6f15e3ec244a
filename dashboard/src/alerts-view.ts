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

export const MARK: Record<Alert['priority'], string> = { high: '!!!', medium: '!!', low: '!' }
const KIND: Record<Alert['kind'], string> = {
  threshold: 'Vital sign', news2: 'NEWS2', device_alarm: 'Monitor alarm', stemi: 'STEMI', stroke: 'Stroke', signal_loss: 'Signal loss'
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
  return h('div', { class: `alert prio-${a.priority} state-${state}`, 'data-alert-id': a.id, 'data-priority': a.priority, 'data-state': state, role: a.priority === 'high' && !acked ? 'alert' : null },
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
    const sig = `${a.id}|${a.updatedAt}|${a.acknowledgedAt ?? ''}|${a.clearedAt ?? ''}|${a.escalations}|${a.priority}`
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

export class AlertBanner {
  readonly el: HTMLElement
  readonly sounder = new Sounder()
  private readonly rows: HTMLElement
  private readonly audioBtn: HTMLButtonElement
  private seen = new Set<string>()

  constructor (private readonly store: Store, private readonly onError: (msg: string) => void) {
    this.rows = h('div', { class: 'banner-rows' })
    this.audioBtn = h('button', { class: 'audio-off', type: 'button', onclick: () => { this.sounder.enable() } }, '🔇 Alarm sound is off — click to enable')
    this.sounder.onStateChange = running => { this.audioBtn.hidden = running }
    this.el = h('section', { class: 'banner', 'aria-live': 'assertive' }, this.audioBtn, this.rows)
    // Any click on the page is a gesture that may unlock audio.
    document.addEventListener('pointerdown', () => { if (!this.sounder.running) this.sounder.enable() }, { capture: true })
    setInterval(() => { this.sounder.tick(performance.now()); this.render() }, 1000)
  }

  render (): void {
    const now = Date.now() + this.store.skewMs
    const pending = this.store.activeAlerts().filter(a => needsAck(a) && a.priority !== 'low')
    renderAlerts(this.rows, pending, now, this.onError)
    const high = pending.some(a => a.priority === 'high')
    document.body.classList.toggle('alarm-high', high)
    document.body.classList.toggle('alarm-medium', !high && pending.length > 0)
    this.sounder.wanted = high ? 'high' : pending.length > 0 ? 'medium' : null
    this.audioBtn.hidden = this.sounder.running
    // A newly raised alert sounds at once; high/medium then repeat from tick().
    for (const a of this.store.activeAlerts()) {
      if (this.seen.has(a.id) || !needsAck(a)) continue
      this.seen.add(a.id)
      this.sounder.play(a.priority)
    }
  }
}
