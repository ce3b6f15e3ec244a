/**
 * The cluster-wide live view. Every dashboard sees every unit of the cluster:
 * - Fleet: what a hub says about its own units (unit updates, NEWS2, departures) is published on
 *   `ambulink:live:fleet`, a unit's updates at most once a second (the latest wins), and every
 *   other process keeps it for its snapshots and passes it on to its pages.
 * - Alerts reach every page through the cluster's alert stream (alert-stream.ts), not here.
 * - ECG, trends and backfill on demand: a page watching a unit held by another process is
 *   served by that process. Its request goes to `ambulink:live:to:{owner}`; the owner attaches a
 *   relay subscriber to its own hub for that page (the ordinary watch: trend and ECG backfill or
 *   resume from the page's cursors, NEWS2 history, alerts, then live ECG) whose messages go back
 *   on `ambulink:live:back:{process}`, tagged with the page's subscriber id. ECG crosses Redis
 *   only while some page watches the unit. The owner's rings and epochs are the page's cursors,
 *   so a page that reconnects to another process resumes where it was (snapshots carry the
 *   cluster's epoch, `ambulink:live:epoch`).
 */
import type { Logger } from 'pino'
import type { LiveHub, LiveSubscription, UnitResume } from '../../streams/index.js'
import { PREFIX, type ClusterLink } from './redis.js'

const FLEET = `${PREFIX}live:fleet`
const EPOCH = `${PREFIX}live:epoch`
const toProcess = (p: string): string => `${PREFIX}live:to:${p}`
const backTo = (p: string): string => `${PREFIX}live:back:${p}`
/** Unit updates of one unit go out at most this often (the dashboard's fleet view is ~1 Hz). */
const FLEET_UPDATE_MS = 1000

type Kind = 'unit' | 'news2' | 'gone'
const KINDS: readonly Kind[] = ['unit', 'news2', 'gone']

interface Request { t: 'watch' | 'unwatch' | 'drop', from: string, sub: number, unit?: string, resume?: UnitResume }

export interface LiveRelayStats { fleetPublished: number, fleetReceived: number, backBytes: number }

/** Reads (or creates) the cluster's snapshot epoch, before the hub is made. */
export async function clusterEpoch (link: ClusterLink): Promise<string> {
  await link.cmd.set(EPOCH, `c${link.processId}`, 'NX')
  return (await link.cmd.get(EPOCH)) ?? `c${link.processId}`
}

export class LiveRelay {
  readonly stats: LiveRelayStats = { fleetPublished: 0, fleetReceived: 0, backBytes: 0 }
  private hub: LiveHub | null = null
  /** Which process announced each remote unit (where watch requests go). */
  private readonly ownerOf = new Map<string, string>()
  /** Remote watches of this process' pages: unit → (subscriber id → owner asked). */
  private readonly watches = new Map<string, Map<number, string>>()
  /** Relay subscribers serving other processes' pages (`${process}:${sub}`), with the units they watch. */
  private readonly serving = new Map<string, { sub: LiveSubscription, units: Set<string> }>()
  /** Latest unit update not yet published, and when each unit's last went out. */
  private readonly pending = new Map<string, string>()
  private readonly sentAt = new Map<string, number>()
  private readonly timer: NodeJS.Timeout
  private closed = false

  constructor (private readonly link: ClusterLink, private readonly log: Logger) {
    this.timer = setInterval(() => { this.flush() }, 250)
    this.timer.unref()
  }

  /** The hooks to give the hub (LiveHubHooks). */
  readonly hooks = {
    onLocalMessage: (kind: Kind, unit: string, data: string): void => {
      if (kind !== 'unit') { this.publishFleet(kind, unit, data); return }
      const last = this.sentAt.get(unit) ?? 0
      if (Date.now() - last >= FLEET_UPDATE_MS && !this.pending.has(unit)) this.sendUnit(unit, data)
      else this.pending.set(unit, data)
    },
    onRemoteWatch: (id: number, unit: string, resume: UnitResume | undefined): void => {
      let w = this.watches.get(unit)
      if (w === undefined) this.watches.set(unit, w = new Map())
      const owner = this.ownerOf.get(unit)
      w.set(id, owner ?? '')
      if (owner !== undefined) this.request(owner, { t: 'watch', from: this.link.processId, sub: id, unit, resume })
    },
    onRemoteUnwatch: (id: number, unit: string | null): void => {
      // unit null: the page's socket closed; each owner serving it drops its relay at once.
      const dropped = new Set<string>()
      for (const [u, w] of unit === null ? [...this.watches] : [[unit, this.watches.get(unit)] as const]) {
        const owner = w?.get(id)
        if (w === undefined || owner === undefined) continue
        w.delete(id)
        if (w.size === 0) this.watches.delete(u)
        if (owner === '') continue
        if (unit !== null) this.request(owner, { t: 'unwatch', from: this.link.processId, sub: id, unit: u })
        else if (!dropped.has(owner)) { dropped.add(owner); this.request(owner, { t: 'drop', from: this.link.processId, sub: id }) }
      }
    }
  }

  async start (hub: LiveHub): Promise<void> {
    this.hub = hub
    const me = this.link.processId
    await this.link.listen(FLEET, m => { this.heardFleet(m) })
    await this.link.listen(toProcess(me), m => { this.heardRequest(m) })
    await this.link.listen(backTo(me), m => { this.heardBack(m) })
  }

  // ---- fleet ---------------------------------------------------------------------------------

  private sendUnit (unit: string, data: string): void {
    this.sentAt.set(unit, Date.now())
    this.publishFleet('unit', unit, data)
  }

  private flush (): void {
    const now = Date.now()
    for (const [unit, data] of this.pending) {
      if (now - (this.sentAt.get(unit) ?? 0) < FLEET_UPDATE_MS) continue
      this.pending.delete(unit)
      this.sendUnit(unit, data)
    }
  }

  private publishFleet (kind: Kind, unit: string, data: string): void {
    if (this.closed) return
    if (kind === 'gone') { this.pending.delete(unit); this.sentAt.delete(unit) }
    this.stats.fleetPublished++
    void this.link.publish(FLEET, `${this.link.processId}\n${kind}\n${unit}\n${data}`)
  }

  private heardFleet (m: Buffer): void {
    const text = m.toString()
    const a = text.indexOf('\n')
    const b = text.indexOf('\n', a + 1)
    const c = text.indexOf('\n', b + 1)
    if (a < 0 || b < 0 || c < 0) return
    const from = text.slice(0, a)
    if (from === this.link.processId) return
    const kind = text.slice(a + 1, b) as Kind
    const unit = text.slice(b + 1, c)
    if (!KINDS.includes(kind)) return
    this.stats.fleetReceived++
    const hub = this.hub
    if (hub === null || hub.holds(unit)) return
    if (kind === 'gone') { if (this.ownerOf.get(unit) === from) this.ownerOf.delete(unit) } else this.moved(unit, from)
    hub.remoteMessage(kind, unit, text.slice(c + 1))
  }

  /** A unit announced by `owner`: pages here watching it are (re)attached to that process. */
  private moved (unit: string, owner: string): void {
    if (this.ownerOf.get(unit) === owner) return
    this.ownerOf.set(unit, owner)
    const w = this.watches.get(unit)
    if (w === undefined) return
    for (const [id, asked] of w) {
      if (asked === owner) continue
      if (asked !== '') this.request(asked, { t: 'unwatch', from: this.link.processId, sub: id, unit })
      w.set(id, owner)
      this.request(owner, { t: 'watch', from: this.link.processId, sub: id, unit })
    }
  }

  // ---- serving other processes' pages --------------------------------------------------------

  private request (owner: string, r: Request): void {
    void this.link.publish(toProcess(owner), JSON.stringify(r))
  }

  private heardRequest (m: Buffer): void {
    let r: Request
    try { r = JSON.parse(m.toString()) as Request } catch { return }
    const hub = this.hub
    if (hub === null || typeof r.from !== 'string' || !Number.isSafeInteger(r.sub)) return
    const key = `${r.from}:${r.sub}`
    let s = this.serving.get(key)
    if (r.t === 'watch' && typeof r.unit === 'string') {
      if (s === undefined) {
        s = { sub: this.serve(hub, r.from, r.sub), units: new Set() }
        this.serving.set(key, s)
      }
      s.units.add(r.unit)
      s.sub.handle({ type: 'watch', unit: r.unit, resume: r.resume })
    } else if (r.t === 'unwatch' && typeof r.unit === 'string' && s !== undefined) {
      s.sub.handle({ type: 'unwatch', unit: r.unit })
      s.units.delete(r.unit)
      if (s.units.size === 0) { s.sub.unsubscribe(); this.serving.delete(key) }
    } else if (r.t === 'drop' && s !== undefined) {
      s.sub.unsubscribe()
      this.serving.delete(key)
    }
  }

  /** A relay subscriber whose messages go back to process `to`, for its subscriber `id`. */
  private serve (hub: LiveHub, to: string, id: number): LiveSubscription {
    const channel = backTo(to)
    const head = (binary: boolean): Buffer => {
      const h = Buffer.allocUnsafe(5)
      h.writeUInt8(binary ? 1 : 0, 0)
      h.writeUInt32LE(id, 1)
      return h
    }
    return hub.subscribe({
      send: (data, cb) => {
        const body = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
        const msg = Buffer.concat([head(typeof data !== 'string'), body])
        this.stats.backBytes += msg.length
        // The callback when Redis took it: the relay's queue and high-water mark bound what waits.
        this.link.cmd.publish(channel, msg).then(n => {
          // Nobody listens there any more (the process went away): stop serving it.
          if (n === 0) this.dropProcess(to)
          cb()
        }, (err: Error) => { cb(err) })
      },
      close: () => {},
      terminate: () => {}
    }, { name: `relay:${to}`, role: 'relay' }, { relay: true })
  }

  /** Drops every relay serving `process` (it died or stopped listening). */
  dropProcess (process: string): void {
    for (const [key, s] of this.serving) {
      if (!key.startsWith(`${process}:`)) continue
      s.sub.unsubscribe()
      this.serving.delete(key)
    }
    for (const [unit, owner] of this.ownerOf) if (owner === process) this.ownerOf.delete(unit)
  }

  private heardBack (m: Buffer): void {
    if (m.length < 5 || this.hub === null) return
    const binary = m.readUInt8(0) === 1
    const id = m.readUInt32LE(1)
    const body = m.subarray(5)
    this.hub.deliver(id, binary ? new Uint8Array(body.buffer, body.byteOffset, body.byteLength) : body.toString())
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    for (const s of this.serving.values()) s.sub.unsubscribe()
    this.serving.clear()
    const me = this.link.processId
    for (const ch of [FLEET, toProcess(me), backTo(me)]) await this.link.unlisten(ch).catch(() => {})
  }
}
