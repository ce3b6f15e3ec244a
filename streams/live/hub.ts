/**
 * The live hub: what the clinicians' dashboards see. Fed with every validated frame (the gateway
 * wires `ingest.on('validated')` here) and every alert event; keeps per-unit ring buffers (ECG,
 * numerics trend with positions, latest assessment, NEWS2, last seen, encounter) and fans out to
 * subscribers (dashboard WebSockets).
 *
 * Ingest is never slowed by a dashboard: `push()` only writes the rings and enqueues shared,
 * once-encoded messages on each subscriber's capped queue (live-hub-subscriber.ts); a subscriber
 * whose socket stays blocked is disconnected by the sweep. A connecting page gets a snapshot and
 * the rings (backfill); a reconnecting one sends its cursors and gets only what it missed.
 */
import { randomBytes } from 'node:crypto'
import type { Frame, WireWaveform } from '../../decoders/index.js'
import type { Alert, AlertEvent } from '../alerts/types.js'
import { FrameOrder } from '../alerts/frame-order.js'
import { PastEncounters } from '../alerts/past-encounters.js'
import {
  TREND_SIGNS, ecgChunkBytes, encodeEcgChunk,
  type Assignment, type AssessmentView, type ClientMessage, type Hospital, type News2View, type PositionView,
  type ServerMessage, type TrendSign, type UnitResume, type UnitView
} from './protocol.js'
import { EcgRing, TrendRing } from './rings.js'
import { ALERT, ECG, KEEP, Subscriber, UPDATE, type LiveSink, type MessageClass } from './subscriber.js'

export type { LiveSink } from './subscriber.js'

export interface LiveHubOptions {
  /** Seconds of ECG kept per unit (backfill and resume). */
  ecgSeconds: number
  /** Trend rows kept per unit; with trendStepMs they span trendRows × trendStepMs (30 min). */
  trendRows: number
  /** Shortest interval between trend rows, ms of device time. */
  trendStepMs: number
  /** Outbound queue cap per subscriber, bytes; beyond it old ECG, then old updates are dropped. */
  maxQueueBytes: number
  /** Bytes a subscriber may have in flight on its socket before sending waits. */
  highWaterBytes: number
  /** A subscriber whose socket accepts nothing for this long is disconnected, ms. */
  blockedTimeoutMs: number
  /** A unit not heard from for this long leaves the fleet, ms. */
  unitExpiryMs: number
  /** How often blocked subscribers and expired units are looked for, ms. */
  sweepMs: number
  /** Most ECG samples per lead in one backfill message. */
  backfillChunkSamples: number
  /** The receiving hospital (distance and ETA on the dashboard). */
  hospital: Hospital
  /** Clock, Unix ms (injectable for tests). */
  now: () => number
  /**
   * The epoch snapshots announce (default: this hub's). Processes of one cluster share one, so a
   * page that reconnects to another process keeps its cursors (they name the owner's rings).
   */
  snapshotEpoch?: string
}

export const LIVE_HUB_DEFAULTS: Readonly<Omit<LiveHubOptions, 'hospital' | 'now'>> = Object.freeze({
  ecgSeconds: 10,
  trendRows: 1800,
  trendStepMs: 1000,
  maxQueueBytes: 2 * 1024 * 1024,
  highWaterBytes: 512 * 1024,
  blockedTimeoutMs: 15_000,
  unitExpiryMs: 30 * 60_000,
  sweepMs: 1000,
  backfillChunkSamples: 2500
})

/** What the hub asks of the alert engine (gw.alerts). */
export interface LiveAlertSource {
  openAlerts: () => Alert[]
  alertsFor?: (unit: string) => Alert[]
  news2History?: (unit: string) => Array<{ t: number, total: number | null, partial: boolean }>
}

export interface LiveHubHooks {
  onSubscriberDropped?: (info: { user: string, reason: string, queuedBytes: number, inFlightBytes: number }) => void
  onMessagesDropped?: (kind: 'ecg' | 'update', count: number) => void
  // Cluster (gateway/cluster/live-relay.ts): what this hub says about its own units goes to the
  // other processes; a page here watching a unit held elsewhere is served by that unit's owner.
  /** A unit update, NEWS2 or departure of a local unit (the encoded message). */
  onLocalMessage?: (kind: 'unit' | 'news2' | 'gone', unit: string, data: string) => void
  /** Subscriber `id` watches `unit`, which this hub does not hold. */
  onRemoteWatch?: (id: number, unit: string, resume: UnitResume | undefined) => void
  /** Subscriber `id` stopped watching `unit` (null: every unit, the socket closed). */
  onRemoteUnwatch?: (id: number, unit: string | null) => void
}

/** Options of a subscription. */
export interface SubscribeOptions {
  /**
   * A relay for another process' page: gets only what it watches (trend, ECG, NEWS2 history,
   * alerts of those units), never the fleet broadcasts, which reach that process on their own.
   */
  relay?: boolean
}

interface UnitState {
  unit: string
  encounter: string
  lastSeenMs: number
  firstSeenMs: number
  lastUpdateSentMs: number
  /** The unit's encounters before this one: whose late frames are left out. */
  pastEncounters: PastEncounters
  /**
   * Which frames are new (by seq within a boot) and each one's time on the unit's timeline, kept
   * across encounters (the alert engine's frame-order.ts): after a device clock set back within
   * a boot, the new frames are drawn, not taken for a backlog.
   */
  order: FrameOrder
  values: Float64Array
  times: Float64Array
  position: PositionView | null
  assessment: AssessmentView | null
  news2: News2View | null
  ecg: EcgRing | null
  trend: TrendRing
}

const SIGNS = TREND_SIGNS.length
/** A unit update goes out at least this often while ECG-only frames arrive (last-seen time). */
const UPDATE_EVERY_MS = 1000
const MAX_WATCH = 32
/** Encounters remembered per unit to tell a late frame of a previous patient (as the alert engine). */

export class LiveHub {
  readonly options: Readonly<LiveHubOptions>
  /** Changes with every hub instance: cursors from another one are not trusted. */
  readonly epoch = randomBytes(6).toString('base64url')
  private readonly units = new Map<string, UnitState>()
  /** The latest acknowledge-and-assign per unit (incoming board), as every dashboard sees it. */
  private readonly assignments = new Map<string, Assignment>()
  private readonly subscribers = new Set<Subscriber>()
  private readonly byId = new Map<number, Subscriber>()
  private readonly relays = new Set<Subscriber>()
  /** Units held by other processes of the cluster, as they last announced them. */
  private readonly remote = new Map<string, UnitView>()
  private alerts: LiveAlertSource | null = null
  private readonly timer: NodeJS.Timeout
  private resets = 0
  private nextSubscriberId = 1
  private closed = false
  private closing: Promise<void> | null = null

  constructor (options: Partial<LiveHubOptions> & Pick<LiveHubOptions, 'hospital'>, private readonly hooks: LiveHubHooks = {}) {
    this.options = Object.freeze({ ...LIVE_HUB_DEFAULTS, now: Date.now, ...options })
    this.timer = setInterval(() => { this.sweep() }, this.options.sweepMs)
    this.timer.unref()
  }

  get subscriberCount (): number { return this.subscribers.size }
  get unitCount (): number { return this.units.size }
  /** True when this hub holds the unit (its frames arrive here). */
  holds (unit: string): boolean { return this.units.has(unit) }

  /** Where snapshots get the open alerts from (the alert engine, once it runs). */
  setAlertSource (source: LiveAlertSource | null): void { this.alerts = source }

  // ---- input -------------------------------------------------------------------------------

  /**
   * One validated frame. Synchronous, allocation-light, never waits on a subscriber. Late data (a
   * resend, a store-and-forward backlog: older than what the unit showed) never goes back in
   * time: the ECG ring takes only its continuation (rings.ts), a sign's value, the position and
   * the assessment only what is not older than the one shown, and a late frame of another
   * encounter (the previous patient's) is left out altogether (docs/dashboard.md).
   */
  push (f: Frame): void {
    if (this.closed) return
    const now = this.options.now()
    const u = this.unitFor(f, now)
    if (u === null) return
    // Every device time below is the frame's time on the unit's timeline (the capture time, plus
    // the shift frame-order.ts adds after the device clock was set back), so a clock step
    // neither hides the new frames nor sends the trend back in time.
    const at = u.order.t
    if (u.firstSeenMs === 0) u.firstSeenMs = now
    u.lastSeenMs = now
    let changed = false
    for (const n of f.numerics) {
      const col = n.sign - 1
      if (col < 0 || col >= SIGNS) continue
      const t = at + n.offsetMs
      // An older value would overwrite a newer one in the trend's current row: left out.
      if (t < u.times[col]!) continue
      u.values[col] = n.value
      u.times[col] = t
      u.trend.setValue(t, col, n.value)
      changed = true
    }
    const p = f.position
    if (p !== null) {
      const t = at + p.offsetMs
      if (u.position === null || t >= u.position.t) {
        u.position = { latitude: p.latitude, longitude: p.longitude, speedMps: p.speedMps, headingDeg: p.headingDeg, t }
        u.trend.setPosition(t, p.latitude, p.longitude, p.speedMps, p.headingDeg)
        changed = true
      }
    }
    if (f.assessment !== null && (u.assessment === null || at >= u.assessment.t)) {
      u.assessment = { ...f.assessment, t: at }
      changed = true
    }
    if (f.waveforms.length > 0) this.pushEcg(u, f, at)
    // Nobody to tell (no page, no cluster relay): no JSON; a page that connects gets a snapshot.
    const heard = this.subscribers.size > 0 || this.hooks.onLocalMessage !== undefined
    if (heard && (changed || now - u.lastUpdateSentMs >= UPDATE_EVERY_MS)) {
      u.lastUpdateSentMs = now
      const data = JSON.stringify({ type: 'unit', unit: this.view(u) } satisfies ServerMessage)
      this.broadcast(data, UPDATE)
      this.hooks.onLocalMessage?.('unit', u.unit, data)
    }
  }

  /** An alert engine event: reaches every open dashboard, never dropped, ahead of queued ECG (subscriber.ts). */
  pushAlert (event: AlertEvent): void {
    if (this.closed) return
    this.broadcast(JSON.stringify({ type: 'alert', event } satisfies ServerMessage), ALERT)
  }

  /**
   * An acknowledge-and-assign on the incoming board (already recorded durably by the caller):
   * replaces the unit's previous one and reaches every open dashboard, never dropped.
   */
  pushAssignment (a: Assignment): void {
    if (this.closed) return
    this.assignments.set(a.unit, a)
    this.broadcast(JSON.stringify({ type: 'assignment', assignment: a } satisfies ServerMessage), KEEP)
  }

  /** The unit's current encounter ('' before dispatch assigns one); null when the unit is not on the board (here or, in a cluster, on another process). */
  encounterOf (unit: string): string | null { return this.units.get(unit)?.encounter ?? this.remote.get(unit)?.encounter ?? null }

  /** Assignments as the hub holds them (the latest per unit). */
  assignmentList (): Assignment[] { return [...this.assignments.values()] }

  /** The unit's current NEWS2, as the alert engine scored it. */
  setNews2 (unit: string, news2: News2View): void {
    const u = this.units.get(unit)
    if (u === undefined || this.closed) return
    u.news2 = news2
    const data = JSON.stringify({ type: 'news2', unit, news2 } satisfies ServerMessage)
    this.broadcast(data, UPDATE)
    this.hooks.onLocalMessage?.('news2', unit, data)
  }

  /** The unit's state for this frame, its order placed; null for a late frame of another encounter (left out). */
  private unitFor (f: Frame, now: number): UnitState | null {
    let u = this.units.get(f.unitId)
    const order = u?.order ?? new FrameOrder()
    order.place(f, now)
    // A new encounter is a new patient: their trend must not continue the previous one's.
    // ('' → id is the same patient being assigned an encounter by dispatch.) A frame of another
    // encounter older than the newest shown is the previous patient's, late: it resets nothing.
    // An empty id is no new patient either (contract v1.1: an empty encounter_id never ends an
    // encounter, as in the alert engine): the patient on screen stays, with their encounter.
    // Only an encounter the unit had is told late so: an id it never had is the next patient, even
    // when their frame is late by its clock (a restart with the clock behind, not yet told from a
    // backlog). A device clock set back within a boot does not make a frame late (seq orders it).
    let past: PastEncounters | null = null
    if (u !== undefined && f.encounterId !== u.encounter && u.encounter !== '' && f.encounterId !== '') {
      if (order.late && u.pastEncounters.has(f.encounterId)) return null
      past = u.pastEncounters
      past.add(u.encounter)
      u = undefined
    }
    if (u === undefined) {
      const o = this.options
      u = {
        unit: f.unitId,
        encounter: f.encounterId,
        lastSeenMs: 0,
        firstSeenMs: 0,
        lastUpdateSentMs: 0,
        pastEncounters: past ?? new PastEncounters(),
        order,
        values: new Float64Array(SIGNS).fill(Number.NaN),
        times: new Float64Array(SIGNS).fill(Number.NEGATIVE_INFINITY),
        position: null,
        assessment: null,
        news2: null,
        ecg: null,
        trend: new TrendRing(o.trendRows, o.trendStepMs, this.newEpoch())
      }
      this.units.set(f.unitId, u)
      // Held here now: its remote announcement is stale, and pages here watching it are served locally.
      if (this.remote.delete(f.unitId)) for (const s of this.subscribers) if (s.watching.has(f.unitId)) this.hooks.onRemoteUnwatch?.(s.id, f.unitId)
    }
    if (f.encounterId !== '') u.encounter = f.encounterId
    return u
  }

  private newEpoch (): string { return `${this.epoch}.${++this.resets}` }

  private pushEcg (u: UnitState, f: Frame, at: number): void {
    const first = f.waveforms[0]!
    const rate = first.sampleRateHz
    if (u.ecg === null || u.ecg.rateHz !== rate) u.ecg = new EcgRing(rate, this.options.ecgSeconds, this.newEpoch())
    // Leads at another rate than the first cannot share the ring: they are left out of the live view.
    const waves = sameRate(f.waveforms, rate) ? f.waveforms : f.waveforms.filter(w => w.sampleRateHz === rate)
    const ring = u.ecg
    const from = ring.append(waves, at + first.offsetMs)
    // Nobody watching (the usual case): nothing to send, nothing to look up.
    if (from < 0 || this.byId.size === 0) return
    let any = false
    for (const s of this.byId.values()) if (s.watching.has(u.unit)) { any = true; break }
    if (!any) return
    for (const chunk of this.ecgChunks(u.unit, ring, from, ring.next, 65535)) {
      for (const s of this.byId.values()) if (s.watching.has(u.unit)) s.enqueue(chunk, ECG)
    }
  }

  /** Encodes ring[from, to) (clamped to what the ring holds) as chunks of at most `max` samples. */
  private * ecgChunks (unit: string, ring: EcgRing, from: number, to: number, max: number): Generator<Uint8Array> {
    for (let start = Math.max(from, ring.oldest); start < to; start += max) {
      const n = Math.min(max, to - start)
      const buf = new Uint8Array(ecgChunkBytes(unit, ring.epoch, ring.leadMask, n))
      yield encodeEcgChunk(buf, unit, ring.epoch, ring.rateHz, ring.leadMask, start, ring.timeOf(start), n, (lead, i) => ring.read(lead, start + i))
    }
  }

  // ---- subscribers ---------------------------------------------------------------------------

  /**
   * Attaches a dashboard socket. The caller forwards the client's messages to `handle` and calls
   * `unsubscribe` when the socket closes.
   */
  subscribe (sink: LiveSink, user: { name: string, role: string }, opts: SubscribeOptions = {}): LiveSubscription {
    const s = new Subscriber(this.nextSubscriberId++, user.name, sink, this.options, this.options.now, (cls, n) => {
      this.hooks.onMessagesDropped?.(cls === ECG ? 'ecg' : 'update', n)
    })
    if (opts.relay === true) this.relays.add(s)
    else this.subscribers.add(s)
    this.byId.set(s.id, s)
    const gone = (): void => {
      this.subscribers.delete(s)
      this.relays.delete(s)
      if (this.byId.delete(s.id) && opts.relay !== true) this.hooks.onRemoteUnwatch?.(s.id, null)
    }
    return {
      id: s.id,
      handle: msg => { this.handle(s, msg, user) },
      unsubscribe: () => { gone(); s.closed = true },
      close: (code, reason) => { gone(); s.close(code, reason) },
      get queuedBytes () { return s.queuedBytes },
      get dropped () { return { ecg: s.dropped[ECG]!, update: s.dropped[UPDATE]! } }
    }
  }

  private handle (s: Subscriber, msg: ClientMessage, user: { name: string, role: string }): void {
    switch (msg.type) {
      case 'hello': {
        s.enqueue(JSON.stringify(this.snapshot(user)), KEEP)
        for (const [unit, r] of Object.entries(msg.resume)) {
          const u = this.units.get(unit)
          if (u !== undefined && !msg.watch.includes(unit) && r.trendEpoch === u.trend.epoch && r.trendNext !== undefined) {
            this.sendTrend(s, u, r.trendNext - 1)
          }
        }
        for (const unit of msg.watch) this.watch(s, unit, msg.resume[unit])
        return
      }
      case 'watch': this.watch(s, msg.unit, msg.resume); return
      case 'unwatch':
        if (s.watching.delete(msg.unit) && !this.units.has(msg.unit)) this.hooks.onRemoteUnwatch?.(s.id, msg.unit)
        return
      case 'resync': {
        const u = this.units.get(msg.unit)
        if (u !== undefined) this.sendTrend(s, u, msg.trendFrom)
      }
    }
  }

  private watch (s: Subscriber, unit: string, resume: UnitResume | undefined): void {
    // A page shows one unit at a time; a few more covers tabs being switched.
    if (!s.watching.has(unit) && s.watching.size >= MAX_WATCH) return
    s.watching.add(unit)
    const u = this.units.get(unit)
    if (u === undefined) {
      if (!this.relays.has(s)) this.hooks.onRemoteWatch?.(s.id, unit, resume)
      return
    }
    // From the client's last row, not after it: that row may have filled in since.
    const trendFrom = resume?.trendEpoch === u.trend.epoch && resume.trendNext !== undefined ? resume.trendNext - 1 : 0
    this.sendTrend(s, u, trendFrom)
    const history = this.alerts?.news2History?.(unit)
    if (history !== undefined) s.enqueue(JSON.stringify({ type: 'news2history', unit, points: history } satisfies ServerMessage), KEEP)
    const alerts = this.alerts?.alertsFor?.(unit)
    if (alerts !== undefined) s.enqueue(JSON.stringify({ type: 'alerts', unit, alerts } satisfies ServerMessage), KEEP)
    const ring = u.ecg
    if (ring !== null) {
      const from = resume?.ecgEpoch === ring.epoch && resume.ecgNext !== undefined ? resume.ecgNext : 0
      for (const chunk of this.ecgChunks(unit, ring, from, ring.next, this.options.backfillChunkSamples)) s.enqueue(chunk, ECG)
    }
  }

  private sendTrend (s: Subscriber, u: UnitState, fromIndex: number): void {
    const ring = u.trend
    const from = Math.max(fromIndex, ring.oldest)
    if (from >= ring.next) return
    const t: number[] = []
    const cols: Array<Array<number | null>> = TREND_SIGNS.map(() => [])
    const positions: Array<ReturnType<TrendRing['positionAt']>> = []
    for (let i = from; i < ring.next; i++) {
      t.push(ring.timeAt(i))
      for (let c = 0; c < SIGNS; c++) cols[c]!.push(ring.valueAt(i, c))
      positions.push(ring.positionAt(i))
    }
    s.enqueue(JSON.stringify({ type: 'trend', unit: u.unit, epoch: ring.epoch, from, t, cols, positions } satisfies ServerMessage), KEEP)
  }

  snapshot (user: { name: string, role: string }): ServerMessage {
    return {
      type: 'snapshot',
      epoch: this.options.snapshotEpoch ?? this.epoch,
      now: this.options.now(),
      user,
      hospital: this.options.hospital,
      units: [...this.units.values()].map(u => this.view(u)).concat([...this.remote.values()].filter(v => !this.units.has(v.unit))),
      alerts: this.alerts?.openAlerts() ?? [],
      assignments: this.assignmentList()
    }
  }

  private view (u: UnitState): UnitView {
    const numerics: UnitView['numerics'] = {}
    for (let c = 0; c < SIGNS; c++) {
      if (!Number.isNaN(u.values[c]!)) numerics[TREND_SIGNS[c] as TrendSign] = { value: u.values[c]!, t: u.times[c]! }
    }
    const ring = u.ecg
    return {
      unit: u.unit,
      encounter: u.encounter,
      lastSeenMs: u.lastSeenMs,
      numerics,
      position: u.position,
      assessment: u.assessment,
      news2: u.news2,
      ecg: ring === null ? null : { epoch: ring.epoch, next: ring.next, rateHz: ring.rateHz, leadMask: ring.leadMask },
      trendEpoch: u.trend.epoch,
      trendNext: u.trend.next,
      row: u.trend.next > 0 ? u.trend.row(u.trend.next - 1) : null,
      firstSeenMs: u.firstSeenMs
    }
  }

  private broadcast (data: string, cls: MessageClass): void {
    for (const s of this.subscribers) s.enqueue(data, cls)
  }

  // ---- cluster: units held by other processes -------------------------------------------------

  /**
   * A message another process' hub produced about one of its units (`unit`, `news2`, `gone`):
   * kept for snapshots and passed on to this hub's pages as is.
   */
  remoteMessage (kind: 'unit' | 'news2' | 'gone', unit: string, data: string): void {
    if (this.closed || this.units.has(unit)) return
    if (kind === 'unit') {
      const m = JSON.parse(data) as { unit: UnitView }
      this.remote.set(unit, m.unit)
      this.broadcast(data, UPDATE)
    } else if (kind === 'news2') {
      const v = this.remote.get(unit)
      if (v === undefined) return
      v.news2 = (JSON.parse(data) as { news2: News2View }).news2
      this.broadcast(data, UPDATE)
    } else if (this.remote.delete(unit)) {
      this.broadcast(data, KEEP)
    }
  }

  /** A message for one subscriber, from the process holding the unit it watches. */
  deliver (id: number, data: string | Uint8Array): void {
    const s = this.byId.get(id)
    if (s === undefined || this.relays.has(s)) return
    s.enqueue(data, typeof data === 'string' ? KEEP : ECG)
  }

  /** Remote units not announced for unitExpiryMs leave the fleet (their process is gone). */
  private expireRemote (now: number): void {
    for (const [unit, v] of this.remote) {
      if (now - v.lastSeenMs <= this.options.unitExpiryMs) continue
      this.remote.delete(unit)
      this.broadcast(JSON.stringify({ type: 'gone', unit } satisfies ServerMessage), KEEP)
    }
  }

  // ---- housekeeping --------------------------------------------------------------------------

  private sweep (): void {
    const now = this.options.now()
    for (const s of [...this.subscribers, ...this.relays]) {
      if (!s.blocked(now)) continue
      this.subscribers.delete(s)
      this.relays.delete(s)
      this.byId.delete(s.id)
      this.hooks.onSubscriberDropped?.({ user: s.user, reason: 'blocked', queuedBytes: s.queuedBytes, inFlightBytes: s.inFlightBytes })
      s.terminate()
    }
    this.expireRemote(now)
    for (const u of [...this.units.values()]) {
      if (now - u.lastSeenMs <= this.options.unitExpiryMs) continue
      this.units.delete(u.unit)
      this.assignments.delete(u.unit)
      const data = JSON.stringify({ type: 'gone', unit: u.unit } satisfies ServerMessage)
      this.broadcast(data, KEEP)
      this.hooks.onLocalMessage?.('gone', u.unit, data)
    }
  }

  /**
   * Stops the sweep and closes every subscriber (1001: going away). Async like every component's
   * close(); safe to call twice, and a second call while the first runs waits for the first.
   */
  close (): Promise<void> {
    this.closing ??= this.closeOnce()
    return this.closing
  }

  private async closeOnce (): Promise<void> {
    this.closed = true
    clearInterval(this.timer)
    for (const s of [...this.subscribers, ...this.relays]) s.close(1001, 'gateway shutting down')
    this.subscribers.clear()
    this.relays.clear()
    this.byId.clear()
  }
}

/** Whether every waveform is at `rate` Hz (a loop: `every` with a closure ran per frame). */
function sameRate (waves: readonly WireWaveform[], rate: number): boolean {
  for (let i = 0; i < waves.length; i++) if (waves[i]!.sampleRateHz !== rate) return false
  return true
}

export interface LiveSubscription {
  /** The subscriber's id in this hub (what the cluster relay names it by). */
  readonly id: number
  handle: (msg: ClientMessage) => void
  unsubscribe: () => void
  close: (code: number, reason: string) => void
  readonly queuedBytes: number
  readonly dropped: { ecg: number, update: number }
}

export { TREND_SIGNS, type Assignment, type News2View, type Hospital, type ServerMessage, type ClientMessage } from './protocol.js'
