/**
 * Signal loss per unit, and per stream. On the gateway clock.
 *
 * - Unit: one `signal_loss` alert for a link in trouble — silent for signalLossMs (high), or
 *   degraded: linkDegradedGaps gaps longer than linkGapMs within linkWindowMs (medium, rising to
 *   high on a full silence). Its message counts the gaps and names the longest. A frame does not
 *   clear it: only linkSteadyMs without a gap does, so a link delivering one frame every 11 s
 *   raises once and never flaps (a hold-off in the manner of IEC 60601-1-8 technical alarms,
 *   which must not announce and withdraw themselves repeatedly).
 * - Stream (`stream_loss`): one stream stops while the unit's others continue — ECG (lead off)
 *   while frames arrive, or a continuous numeric (probe off) while other numerics arrive. Keyed
 *   'ecg' or by the numeric's field; cleared when that stream is back.
 */
import type { AlertBook } from './book.js'
import { slotOf } from './book.js'
import { degradedLinkMessage, signalLossMessage, streamLossMessage } from './messages.js'
import type { UnitState } from './unit-state.js'

export const LOSS = 'signal_loss/'
const ECG = slotOf('stream_loss', 'ecg')

/** Numerics a monitor streams continuously (the others are spot measurements or entries). */
const CONTINUOUS = ['heart_rate', 'pulse_rate', 'spo2', 'respiratory_rate', 'etco2'] as const
const STREAM_SLOTS: Readonly<Record<string, string>> = Object.fromEntries(CONTINUOUS.map(f => [f, slotOf('stream_loss', f)]))

export interface LinkOptions {
  signalLossMs: number
  linkGapMs: number
  linkDegradedGaps: number
  linkWindowMs: number
  linkSteadyMs: number
  streamLossMs: number
}

export class LinkWatch {
  constructor (private readonly o: LinkOptions, private readonly book: AlertBook) {}

  /** Every frame: gaps, steadiness, ECG presence. */
  frameArrived (u: UnitState, nowGw: number, hasEcg: boolean): void {
    const gap = nowGw - u.lastSeenGw
    u.lastSeenGw = nowGw
    if (gap > this.o.linkGapMs) {
      u.gaps.push({ atGw: nowGw, ms: gap })
      u.steadySinceGw = nowGw
      this.degraded(u, nowGw)
    }
    if (hasEcg) {
      u.lastEcgGw = nowGw
      const e = u.open.get(ECG)
      if (e !== undefined) this.book.clear(u, ECG, e, nowGw, nowGw)
    }
  }

  /** A numeric arrived: its stream-loss alert (if any) clears. */
  streamBack (u: UnitState, field: string, t: number, nowGw: number): void {
    const slot = STREAM_SLOTS[field]
    if (slot === undefined) return
    const e = u.open.get(slot)
    if (e !== undefined) this.book.clear(u, slot, e, t, nowGw)
  }

  private degraded (u: UnitState, nowGw: number): void {
    const g = u.gaps
    let drop = 0
    while (drop < g.length && g[drop]!.atGw < nowGw - this.o.linkWindowMs) drop++
    if (drop > 0) g.splice(0, drop)
    if (u.encounter === '') return
    let longest = 0
    for (const x of g) if (x.ms > longest) longest = x.ms
    const msg = degradedLinkMessage(g.length, longest, this.o.linkWindowMs, this.o.linkSteadyMs)
    const open = u.open.get(LOSS)
    if (open !== undefined) {
      this.book.update(open, open.alert.priority, msg, g.length, nowGw, nowGw)
    } else if (g.length >= this.o.linkDegradedGaps) {
      this.book.raise(u, 'signal_loss', '', LOSS, 'medium', msg, g.length, nowGw, nowGw)
    }
  }

  /** The unit reconnected ('online'): frames should follow within signalLossMs. Not yet steady. */
  online (u: UnitState, nowGw: number): void {
    u.lastSeenGw = nowGw
  }

  /** The unit's will: offline at once. */
  offline (u: UnitState, message: string, nowGw: number): void {
    const open = u.open.get(LOSS)
    u.steadySinceGw = Infinity
    if (open === undefined) this.book.raise(u, 'signal_loss', '', LOSS, 'high', message, null, nowGw, nowGw)
    else this.book.update(open, 'high', message, open.alert.value, nowGw, nowGw, true)
  }

  /** Each tick, for a unit with an encounter: silence, steadiness, stream loss. */
  check (u: UnitState, nowGw: number): void {
    const silent = nowGw - u.lastSeenGw
    const open = u.open.get(LOSS)
    if (silent >= this.o.signalLossMs) {
      // A silence is a gap in progress: the link is not steady.
      u.steadySinceGw = Infinity
      const msg = signalLossMessage(silent, this.o.signalLossMs)
      if (open === undefined) this.book.raise(u, 'signal_loss', '', LOSS, 'high', msg, Math.round(silent / 1000), nowGw, nowGw)
      else if (open.alert.priority !== 'high') this.book.update(open, 'high', msg, Math.round(silent / 1000), nowGw, nowGw, true)
      return
    }
    if (u.steadySinceGw === Infinity) u.steadySinceGw = u.lastSeenGw
    if (open !== undefined && nowGw - u.steadySinceGw >= this.o.linkSteadyMs) {
      u.gaps.length = 0
      this.book.clear(u, LOSS, open, nowGw, nowGw)
    }
    this.streams(u, nowGw)
  }

  private streams (u: UnitState, nowGw: number): void {
    const limit = this.o.streamLossMs
    // Lead off is ECG missing while the unit's other frames go on arriving, for streamLossMs. A
    // unit gone silent altogether is a link loss (signal_loss, after signalLossMs), not a lead
    // off: without this check a silence longer than streamLossMs raised "ECG lost ... while other
    // data continue (lead off?)" whenever SIGNAL_LOSS_MS was set above it.
    if (u.lastEcgGw > -Infinity && nowGw - u.lastEcgGw >= limit && u.lastSeenGw - u.lastEcgGw >= limit && !u.open.has(ECG)) {
      this.book.raise(u, 'stream_loss', 'ecg', ECG, 'medium', streamLossMessage('ecg', nowGw - u.lastEcgGw, null), null, nowGw, nowGw)
    }
    for (const field of CONTINUOUS) {
      const r = u.readings[field]
      if (r === undefined) continue
      const behind = u.latestNumericT - r.atMs
      const slot = STREAM_SLOTS[field]!
      if (behind >= limit && !u.open.has(slot)) {
        this.book.raise(u, 'stream_loss', field, slot, 'medium', streamLossMessage(field, behind, r.value), r.value, r.atMs, nowGw)
      }
    }
  }
}
