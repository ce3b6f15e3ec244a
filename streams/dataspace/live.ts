/**
 * The live stream: frames from ingest and alert events, protected per subscriber's permit and
 * sent over its WebSocket as JSON messages.
 *
 * Ingest must never wait for a researcher: the frame listener runs synchronously, does a bounded
 * amount of work per subscriber and never awaits. A subscriber whose send buffer already holds
 * more than `maxBufferedBytes` is cut off (the socket is destroyed: a close frame would only
 * queue behind the data it cannot read) instead of being buffered for without bound.
 *
 * No demographics are sent live and no k-anonymity applies: the population of a live window is
 * too small and changes too fast to form classes. Subjects and times are protected as in
 * extracts (with the live channel's own keys at level anonymised; see protect.ts).
 */
import type { Frame } from '../../decoders/index.js'
import { VITAL_SIGN_BY_NUMBER } from '../../decoders/index.js'
import type { AlertEvent } from '../alerts/types.js'
import { ALERT_EVENTS, ALERT_KINDS, ALERT_PRIORITIES, DATASETS } from './datasets.js'
import { formatUs, type Protector } from './protect.js'

export type LiveDataset = 'vitals' | 'alerts'

export interface FrameSource {
  on (event: 'frame', listener: (frame: Frame, transport: string) => void): unknown
  off (event: 'frame', listener: (frame: Frame, transport: string) => void): unknown
}

export interface AlertSource {
  on (event: 'alert', listener: (event: AlertEvent) => void): unknown
  off (event: 'alert', listener: (event: AlertEvent) => void): unknown
}

/** The part of a ws WebSocket the hub uses. */
export interface LiveSocket {
  readonly bufferedAmount: number
  send (data: string): void
  close (code: number, reason: string): void
  terminate (): void
}

export type EndReason = 'client closed' | 'slow consumer' | 'permit revoked' | 'permit expired' | 'shutting down'

export interface LiveSubscriber {
  dataset: LiveDataset
  permitId: string
  researcher: string
  /** Released fields (permit ∩ request). */
  fields: ReadonlySet<string>
  /** The permit's window, Unix ms: data captured outside it is not sent, even live. */
  fromMs: number
  toMs: number
  protector: Protector
  socket: LiveSocket
  /** Called once when the subscription ends, whatever the reason. */
  onEnd: (reason: EndReason, messages: number) => void
}

interface Sub extends LiveSubscriber {
  messages: number
  ended: boolean
}

export interface LiveHubOptions {
  maxBufferedBytes: number
  /** A subscriber was cut off for reading too slowly. */
  onCutoff?: (s: LiveSubscriber) => void
}

/** 4401: our "unauthorized" close code (4000-4999 are the application's, RFC 6455 §7.4.2). */
export const CLOSE_UNAUTHORIZED = 4401
export const CLOSE_GOING_AWAY = 1001

export class LiveHub {
  private readonly subs = new Set<Sub>()
  private vitalsCount = 0
  private alertsCount = 0
  private readonly sources: Array<() => void> = []
  private readonly vitalFields = new Set(DATASETS.vitals.valueFields)

  constructor (private readonly o: LiveHubOptions) {}

  attachFrames (source: FrameSource): void {
    const listener = (frame: Frame): void => { if (this.vitalsCount > 0) this.onFrame(frame) }
    source.on('frame', listener)
    this.sources.push(() => { source.off('frame', listener) })
  }

  attachAlerts (source: AlertSource): void {
    const listener = (e: AlertEvent): void => { if (this.alertsCount > 0) this.onAlert(e) }
    source.on('alert', listener)
    this.sources.push(() => { source.off('alert', listener) })
  }

  get size (): number { return this.subs.size }

  subscribe (s: LiveSubscriber): { end: (reason: EndReason) => void } {
    const sub: Sub = { ...s, messages: 0, ended: false }
    this.subs.add(sub)
    if (sub.dataset === 'vitals') this.vitalsCount++
    else this.alertsCount++
    return { end: reason => { this.end(sub, reason) } }
  }

  /** Ends (and closes) every subscription `match` selects. */
  endWhere (match: (s: LiveSubscriber) => boolean, reason: EndReason): number {
    let n = 0
    for (const s of [...this.subs]) {
      if (!match(s)) continue
      n++
      this.end(s, reason)
    }
    return n
  }

  private end (s: Sub, reason: EndReason): void {
    if (s.ended) return
    s.ended = true
    this.subs.delete(s)
    if (s.dataset === 'vitals') this.vitalsCount--
    else this.alertsCount--
    try {
      if (reason === 'slow consumer') s.socket.terminate()
      else if (reason === 'permit revoked' || reason === 'permit expired') s.socket.close(CLOSE_UNAUTHORIZED, reason)
      else if (reason === 'shutting down') s.socket.close(CLOSE_GOING_AWAY, reason)
    } catch { /* already gone */ }
    s.onEnd(reason, s.messages)
  }

  private deliver (s: Sub, message: string): void {
    if (s.socket.bufferedAmount + message.length > this.o.maxBufferedBytes) {
      this.o.onCutoff?.(s)
      this.end(s, 'slow consumer')
      return
    }
    s.socket.send(message)
    s.messages++
  }

  private onFrame (f: Frame): void {
    // Before dispatch assigns an encounter the frame belongs to no patient we can pseudonymise.
    if (f.encounterId === '' || f.numerics.length === 0) return
    for (const s of this.subs) {
      if (s.dataset !== 'vitals') continue
      const msg = this.vitalsMessage(s, f)
      if (msg !== null) this.deliver(s, msg)
    }
  }

  private vitalsMessage (s: Sub, f: Frame): string | null {
    const shiftUs = s.protector.shiftUs(f.encounterId)
    // One record per instant, as in storage (line-protocol.ts).
    const byOffset = new Map<number, string>()
    for (const n of f.numerics) {
      const at = f.capturedAtMs + n.offsetMs
      if (at < s.fromMs || at >= s.toMs) continue
      const info = VITAL_SIGN_BY_NUMBER[n.sign]
      if (info === undefined || !s.fields.has(info.field) || !this.vitalFields.has(info.field)) continue
      const prev = byOffset.get(n.offsetMs)
      byOffset.set(n.offsetMs, `${prev ?? ''},"${info.field}":${n.value}`)
    }
    if (byOffset.size === 0) return null
    let records = ''
    for (const [offset, fields] of byOffset) {
      if (records !== '') records += ','
      records += `{"time":"${formatUs((f.capturedAtMs + offset) * 1000 + shiftUs)}"${fields}}`
    }
    return `{"type":"vitals","subject":"${s.protector.subject(f.encounterId)}","records":[${records}]}`
  }

  private onAlert (e: AlertEvent): void {
    const a = e.alert
    if (a.encounter === '') return
    for (const s of this.subs) {
      if (s.dataset !== 'alerts' || a.raisedAt < s.fromMs || a.raisedAt >= s.toMs) continue
      const p = s.protector
      const shiftUs = p.shiftUs(a.encounter)
      // Only what the permit grants on `alerts` (issue #10, item 9): the event's (shifted) time,
      // the subject and the alert's pseudonym, then granted fields. Never the message, unit,
      // encounter, alert id, acknowledging clinician, acknowledgement or escalation state.
      const out: Record<string, unknown> = {
        type: 'alert',
        time: formatUs(a.updatedAt * 1000 + shiftUs),
        alert: p.ref('alert', a.id),
        subject: p.subject(a.encounter)
      }
      if (s.fields.has('event')) out.event = ALERT_EVENTS.has(e.type) ? e.type : 'other'
      if (s.fields.has('kind')) out.kind = ALERT_KINDS.has(a.kind) ? a.kind : 'other'
      if (s.fields.has('key') && a.kind === 'threshold' && this.vitalFields.has(a.key)) out.key = a.key
      if (s.fields.has('priority')) out.priority = ALERT_PRIORITIES.has(a.priority) ? a.priority : 'other'
      if (s.fields.has('value') && typeof a.value === 'number' && Number.isFinite(a.value)) out.value = a.value
      this.deliver(s, JSON.stringify(out))
    }
  }

  /** Detaches from the sources and ends every subscription. Safe to call twice. */
  close (): void {
    for (const off of this.sources.splice(0)) off()
    this.endWhere(() => true, 'shutting down')
  }
}
