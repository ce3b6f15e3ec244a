/**
 * One alert stream for the cluster. Every event of this process' alert engine goes through one
 * Redis script that (1) drops it unless this process owns the unit (roster.ts: no duplicates
 * when two processes see the same unit around a failover: the one that lost the unit stays
 * silent), (2) numbers it with the unit's sequence (`ambulink:seq:{unit}`, so consumers keep
 * per-unit order and drop repeats), (3) keeps the cluster's open alerts (`ambulink:open:{unit}`,
 * by kind/key slot) and (4) publishes it on `ambulink:alerts`. Every process relays that stream
 * to its dashboards; the publishing process alone spools it (InfluxDB) and publishes it on MQTT.
 *
 * Failover without engine state in Redis (deferred until the engine's AlertStateStore lands): a
 * unit's new owner rebuilds its alert state from the next frames. When it raises a slot the
 * cluster still holds open (raised by the previous owner), the script continues the cluster's
 * alert instead: same id, same raisedAt, the acknowledgement kept; the event goes out as
 * `updated`, never as a second `raised`, and the new owner's engine is told the acknowledgement
 * so it does not escalate. Until then the previous owner's alert stays open in every view.
 *
 * An acknowledgement on any process applies everywhere: it is tried on the local engine, then
 * asked of every process over `ambulink:ack`; an alert whose publisher is gone (its process died
 * and no engine holds it yet) is acknowledged in the cluster book directly.
 *
 * If Redis does not answer within `publishTimeoutMs`, the event is delivered by this process
 * alone (local dashboards, MQTT, spool): a duplicate is preferred to a missed alert.
 *
 * A Redis that comes back empty (restarted without persistence) has lost the units' sequences
 * and the cluster book. Each process finds out when its link is ready again (the instance
 * marker `ambulink:instance` is gone or new): it forgets the sequences it had seen (else every
 * page would drop the new, lower-numbered events as repeats), and when it next claims one of
 * its units (the unit's next frame) it writes its engine's open alerts of that unit back into
 * the book (only slots still empty, only while it owns the unit), so a failover after the
 * restart still takes them over, acknowledgements included.
 */
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import type { Logger } from 'pino'
import type { Alert, AlertEngine, AlertEvent, News2Point, News2Result } from '../../streams/index.js'
import type { AlertEngineLike } from '../dashboard/alerts-adapter.js'
import { PREFIX, within, type ClusterLink } from './redis.js'

const CHANNEL = `${PREFIX}alerts`
const ACK = `${PREFIX}ack`
const ackReply = (p: string): string => `${PREFIX}ack-reply:${p}`

/**
 * ARGV me, channel, unit, slot, type, alert JSON → { seq (0 = not published), cluster id,
 * acknowledged by or '', type published }. The cluster id differs from the engine's when the
 * event continues an alert the cluster already holds open for that slot (raised by another
 * process), or when the engine's alert was closed by another process meanwhile (a new episode).
 */
const PUBLISH = `
local P = '${PREFIX}'
local me, chan, unit, slot, typ = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local a = cjson.decode(ARGV[6])
local owner = redis.call('GET', P .. 'owner:' .. unit)
if owner and owner ~= me then return {0, '', '', ''} end
if not owner then redis.call('SET', P .. 'owner:' .. unit, me) end
local book, aliases = P .. 'open:' .. unit, P .. 'alias:' .. unit
local localId = a.id
local clusterId = redis.call('HGET', aliases, localId) or localId
local curJson = redis.call('HGET', book, slot)
local cur = nil
if curJson then cur = cjson.decode(curJson) end
if cur and cur.id ~= clusterId then
  -- The slot is open under another process' id: continue that alert.
  clusterId = cur.id
  redis.call('HSET', aliases, localId, clusterId)
  if typ ~= 'cleared' then typ = 'updated' end
elseif not cur and typ ~= 'raised' then
  -- This engine's alert was closed by another process meanwhile.
  if typ == 'cleared' then
    redis.call('HDEL', aliases, localId)
    return {0, '', '', ''}
  end
  clusterId = localId .. '~' .. redis.call('INCR', P .. 'episodes')
  redis.call('HSET', aliases, localId, clusterId)
  typ = 'raised'
end
a.id = clusterId
if cur and cur.id == clusterId and clusterId ~= localId then
  a.raisedAt = cur.raisedAt
  if a.acknowledgedAt == cjson.null and cur.acknowledgedAt ~= cjson.null then
    a.acknowledgedAt = cur.acknowledgedAt
    a.acknowledgedBy = cur.acknowledgedBy
  end
  if cur.escalations > a.escalations then
    a.escalations = cur.escalations
    a.escalatedAt = cur.escalatedAt
  end
end
local enc = cjson.encode(a)
if a.clearedAt ~= cjson.null then
  redis.call('HDEL', book, slot, slot .. '#p')
  redis.call('HDEL', aliases, localId)
else
  redis.call('HSET', book, slot, enc, slot .. '#p', me)
end
local seq = redis.call('INCR', P .. 'seq:' .. unit)
redis.call('PUBLISH', chan, cjson.encode({ seq = seq, type = typ, alert = a }))
local by = ''
if a.acknowledgedBy ~= cjson.null then by = a.acknowledgedBy end
return {seq, clusterId, by, typ}
`

/** ARGV me, channel, unit, id, by, now → 1 when acknowledged here (publisher gone), 0 otherwise. */
const ACK_ORPHAN = `
local P = '${PREFIX}'
local me, chan, unit, id, by, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local book = P .. 'open:' .. unit
local all = redis.call('HGETALL', book)
for i = 1, #all, 2 do
  if not string.find(all[i], '#', 1, true) then
    local a = cjson.decode(all[i + 1])
    if a.id == id then
      local p = redis.call('HGET', book, all[i] .. '#p')
      if p and redis.call('EXISTS', P .. 'alive:' .. p) == 1 and redis.call('GET', P .. 'owner:' .. unit) == p then return 0 end
      if a.acknowledgedAt == cjson.null then
        a.acknowledgedAt = now
        a.acknowledgedBy = by
        redis.call('HSET', book, all[i], cjson.encode(a))
        local seq = redis.call('INCR', P .. 'seq:' .. unit)
        redis.call('PUBLISH', chan, cjson.encode({ seq = seq, type = 'acknowledged', alert = a }))
      end
      return 1
    end
  end
end
return 0
`

/** ARGV me, channel, unit, now → 1 when another process' signal-loss alert for the unit was cleared. */
const CLEAR_LOSS = `
local P = '${PREFIX}'
local me, chan, unit, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local book = P .. 'open:' .. unit
local p = redis.call('HGET', book, 'signal_loss/#p')
if not p or p == me then return 0 end
local a = cjson.decode(redis.call('HGET', book, 'signal_loss/'))
a.clearedAt = now
a.updatedAt = now
redis.call('HDEL', book, 'signal_loss/', 'signal_loss/#p')
local seq = redis.call('INCR', P .. 'seq:' .. unit)
redis.call('PUBLISH', chan, cjson.encode({ seq = seq, type = 'cleared', alert = a }))
return 1
`

/**
 * ARGV me, unit, then slot, alert JSON pairs → slots written. After Redis lost its data: this
 * process' open alerts of a unit it owns go back into the empty slots of the cluster book.
 */
const RESYNC = `
local P = '${PREFIX}'
local me, unit = ARGV[1], ARGV[2]
local owner = redis.call('GET', P .. 'owner:' .. unit)
if owner and owner ~= me then return 0 end
local book = P .. 'open:' .. unit
local n = 0
for i = 3, #ARGV, 2 do
  if redis.call('HSETNX', book, ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('HSET', book, ARGV[i] .. '#p', me)
    n = n + 1
  end
end
return n
`
const INSTANCE = `${PREFIX}instance`

export interface ClusterAlertsOptions {
  link: ClusterLink
  engine: AlertEngine
  log: Logger
  publishTimeoutMs?: number
  /** How long an acknowledgement waits for the process holding the alert, ms. */
  ackTimeoutMs?: number
  now?: () => number
}

interface Published { seq: number, type: AlertEvent['type'], alert: Alert }

const slotOf = (a: Alert): string => `${a.kind}/${a.key}`

/**
 * The cluster's alerts as the dashboard sees them (AlertEngineLike): open alerts of every
 * process, events once and in order per unit, acknowledgements routed to the holder. NEWS2 comes
 * from the local engine (the live view carries remote units' NEWS2).
 */
export class ClusterAlerts extends EventEmitter<{ alert: [AlertEvent], published: [AlertEvent] }> implements AlertEngineLike {
  private readonly open = new Map<string, Alert>()
  private readonly recent: Alert[] = []
  private readonly lastSeq = new Map<string, number>()
  /** Cluster id → the local engine's id, for alerts this process continued after a failover. */
  private readonly localIdOf = new Map<string, string>()
  private readonly pendingAcks = new Map<string, (ok: boolean) => void>()
  private chain: Promise<void> = Promise.resolve()
  private closed = false
  private readonly now: () => number
  /** The Redis instance marker as this process last saw it (a new one: Redis lost its data). */
  private instance: string | null = null
  /** After Redis lost its data: units whose open alerts this process has not yet written back. */
  private resyncDue: Set<string> | null = null
  private readonly onReady = (): void => { void this.checkInstance() }
  /** Whether this process owns the unit (roster.ts; set once the roster runs). */
  ownsUnit: (unit: string) => boolean = () => false

  private constructor (private readonly o: ClusterAlertsOptions) {
    super()
    this.now = o.now ?? Date.now
  }

  static async open (o: ClusterAlertsOptions): Promise<ClusterAlerts> {
    const c = new ClusterAlerts(o)
    await o.link.listen(CHANNEL, m => { c.heard(m) })
    await o.link.listen(ACK, m => { c.ackAsked(m) })
    await o.link.listen(ackReply(o.link.processId), m => { c.ackAnswered(m) })
    await c.loadBook()
    await c.checkInstance()
    o.link.cmd.on('ready', c.onReady)
    o.engine.on('alert', c.onLocal)
    return c
  }

  /** Reads the instance marker (creating it when absent); a changed one means Redis lost its data. */
  private async checkInstance (): Promise<void> {
    const cmd = this.o.link.cmd
    try {
      await within(this.o.publishTimeoutMs ?? 2000, cmd.set(INSTANCE, `${this.o.link.processId}.${this.now()}`, 'NX'))
      const now = await within(this.o.publishTimeoutMs ?? 2000, cmd.get(INSTANCE))
      if (now === undefined || now === null || now === this.instance) return
      const lost = this.instance !== null
      this.instance = now
      if (!lost) return
      this.o.log.warn('Redis came back without its data: alert sequences restart, open alerts are written back to the cluster book as their units are claimed')
      this.lastSeq.clear()
      this.resyncDue = new Set(this.o.engine.openAlerts().map(a => a.unit))
      // Units still owned here (their owner key came back with this process' first event) now;
      // the others at their claim, on their next frame here (unitArrived).
      for (const unit of this.resyncDue) {
        if (!this.ownsUnit(unit)) continue
        this.chain = this.chain.then(() => this.resync(unit)).catch((err: Error) => { this.o.log.warn({ err: err.message, unit }, 'could not write open alerts back') })
      }
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'could not read the Redis instance marker')
    }
  }

  /** After Redis lost its data, the unit's open alerts in this engine back into the book (once, at its claim). */
  private async resync (unit: string): Promise<void> {
    if (this.resyncDue?.delete(unit) !== true) return
    const clusterIdOf = new Map<string, string>()
    for (const [cid, lid] of this.localIdOf) clusterIdOf.set(lid, cid)
    const args: string[] = []
    for (const a of this.o.engine.alertsFor(unit)) {
      if (a.clearedAt !== null) continue
      args.push(slotOf(a), JSON.stringify({ ...a, id: clusterIdOf.get(a.id) ?? a.id }))
    }
    if (args.length === 0) return
    const n = await within(this.o.publishTimeoutMs ?? 2000, this.o.link.cmd.eval(RESYNC, 0, this.o.link.processId, unit, ...args))
    this.o.log.info({ unit, written: n ?? null }, 'open alerts written back to the cluster book')
  }

  private async loadBook (): Promise<void> {
    const cmd = this.o.link.cmd
    let cursor = '0'
    do {
      const [next, keys] = await cmd.scan(cursor, 'MATCH', `${PREFIX}open:*`, 'COUNT', 500)
      cursor = next
      for (const k of keys) {
        const all = await cmd.hgetall(k)
        for (const [f, v] of Object.entries(all)) if (!f.includes('#')) { const a = JSON.parse(v) as Alert; this.open.set(a.id, a) }
      }
    } while (cursor !== '0')
  }

  private readonly onLocal = (ev: AlertEvent): void => {
    // One at a time, in the engine's order: the unit's sequence follows it.
    this.chain = this.chain.then(() => this.publish(ev))
  }

  private async publish (ev: AlertEvent): Promise<void> {
    if (this.closed) return
    const a = ev.alert
    const ms = this.o.publishTimeoutMs ?? 2000
    let timer: NodeJS.Timeout | undefined
    try {
      const r = await Promise.race([
        this.o.link.cmd.eval(PUBLISH, 0, this.o.link.processId, CHANNEL, a.unit, slotOf(a), ev.type, JSON.stringify(a)) as Promise<[number, string, string, AlertEvent['type']]>,
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) })
      ])
      const [seq, clusterId, ackedBy, type] = r
      // 0: another process owns the unit now (it speaks for it), or this engine clears an alert
      // the cluster closed already.
      if (seq === 0) return
      if (clusterId !== a.id) {
        this.localIdOf.set(clusterId, a.id)
        // The cluster's alert was acknowledged before the failover: so is this engine's.
        if (ackedBy !== '' && a.acknowledgedBy === null && ev.type !== 'cleared') this.o.engine.acknowledge(a.id, ackedBy)
      }
      if (ev.type === 'cleared') this.localIdOf.delete(clusterId)
      // Only an alert continued under another process' id takes that alert's history; the
      // engine's own (or taken-over, same id) alert is the truth: a re-alarm ends its acknowledgement.
      const seen = type === 'raised' || clusterId === a.id ? undefined : this.open.get(clusterId)
      this.emit('published', { type, alert: { ...a, id: clusterId, raisedAt: seen?.raisedAt ?? a.raisedAt, acknowledgedAt: a.acknowledgedAt ?? seen?.acknowledgedAt ?? null, acknowledgedBy: a.acknowledgedBy ?? seen?.acknowledgedBy ?? null } })
    } catch (err) {
      this.o.log.error({ err: (err as Error).message, unit: a.unit, id: a.id, event: ev.type }, 'alert not published through Redis: delivered by this process alone')
      this.emit('published', ev)
      this.deliver({ seq: NaN, type: ev.type, alert: a })
    } finally {
      clearTimeout(timer)
    }
  }

  private heard (msg: Buffer): void {
    let p: Published
    try { p = JSON.parse(msg.toString()) as Published } catch { return }
    if (typeof p.seq !== 'number' || typeof p.alert?.unit !== 'string') return
    const last = this.lastSeq.get(p.alert.unit) ?? 0
    // Sequence 1 after others: the unit's sequence started again (Redis lost its data).
    if (p.seq <= last && p.seq !== 1) return
    this.lastSeq.set(p.alert.unit, p.seq)
    this.deliver(p)
  }

  private deliver (p: Published): void {
    const a = p.alert
    if (a.clearedAt === null) {
      this.open.set(a.id, a)
    } else {
      this.open.delete(a.id)
      this.recent.push(a)
      if (this.recent.length > 1000) this.recent.shift()
    }
    this.emit('alert', { type: p.type, alert: a })
  }

  /**
   * The unit's frames reach this process now (it just claimed it): a signal-loss alert another
   * process raised for it (it watched the unit after its first process died) ends here, since
   * that process will never hear from the unit again.
   */
  unitArrived (unit: string): void {
    this.chain = this.chain.then(async () => {
      if (this.closed) return
      // Bounded: alert events queue behind this.
      await within(this.o.publishTimeoutMs ?? 2000, this.o.link.cmd.eval(CLEAR_LOSS, 0, this.o.link.processId, CHANNEL, unit, String(this.now())))
      await this.resync(unit)
    }).catch((err: Error) => { this.o.log.warn({ err: err.message, unit }, 'could not clear another process\' signal loss') })
  }

  // ---- acknowledgement ------------------------------------------------------------------------

  private ackLocal (id: string, by: string): Alert | null {
    const localId = this.localIdOf.get(id) ?? id
    if (this.o.engine.get(localId) === null) return null
    const r = this.o.engine.acknowledge(localId, by)
    return r === null ? null : { ...r, id }
  }

  private ackAsked (msg: Buffer): void {
    let m: { id?: unknown, by?: unknown, from?: unknown, rid?: unknown }
    try { m = JSON.parse(msg.toString()) as typeof m } catch { return }
    if (typeof m.id !== 'string' || typeof m.by !== 'string' || typeof m.from !== 'string' || typeof m.rid !== 'string') return
    if (m.from === this.o.link.processId) return
    if (this.ackLocal(m.id, m.by) === null) return
    void this.o.link.publish(ackReply(m.from), JSON.stringify({ rid: m.rid }))
  }

  private ackAnswered (msg: Buffer): void {
    let m: { rid?: unknown }
    try { m = JSON.parse(msg.toString()) as typeof m } catch { return }
    if (typeof m.rid === 'string') this.pendingAcks.get(m.rid)?.(true)
  }

  async acknowledge (id: string, by: string): Promise<Alert | null> {
    const local = this.ackLocal(id, by)
    if (local !== null) return local
    const rid = randomBytes(9).toString('base64url')
    const answered = new Promise<boolean>(resolve => {
      const timer = setTimeout(() => { resolve(false) }, this.o.ackTimeoutMs ?? 1500)
      this.pendingAcks.set(rid, ok => { clearTimeout(timer); resolve(ok) })
    })
    await this.o.link.publish(ACK, JSON.stringify({ id, by, from: this.o.link.processId, rid }))
    const ok = await answered
    this.pendingAcks.delete(rid)
    const known = this.open.get(id) ?? this.recent.find(a => a.id === id) ?? null
    if (ok) return known === null ? { id } as Alert : { ...known, acknowledgedBy: known.acknowledgedBy ?? by }
    if (known === null) return null
    const done = await this.o.link.cmd.eval(ACK_ORPHAN, 0, this.o.link.processId, CHANNEL, known.unit, id, by, String(this.now())) as number
    return done === 1 ? { ...known, acknowledgedBy: known.acknowledgedBy ?? by } : null
  }

  // ---- AlertEngineLike ------------------------------------------------------------------------

  openAlerts (): Alert[] { return [...this.open.values()].sort((p, q) => p.raisedAt - q.raisedAt) }

  alertsFor (unit: string): Alert[] {
    const out = [...this.open.values()].filter(a => a.unit === unit)
    for (const a of this.recent) if (a.unit === unit && !this.open.has(a.id)) out.push(a)
    return out.sort((p, q) => q.raisedAt - p.raisedAt)
  }

  news2For (unit: string): News2Result | null { return this.o.engine.news2For(unit) }
  news2History (unit: string): News2Point[] { return this.o.engine.news2History(unit) }

  /** Resolves once the events handed over so far went through Redis (or fell back). */
  async flushed (): Promise<void> { await this.chain }

  async close (): Promise<void> {
    if (this.closed) return
    this.o.engine.off('alert', this.onLocal)
    this.o.link.cmd.off('ready', this.onReady)
    // Each publication gives up after publishTimeoutMs; an arrival's clean-up is not waited for.
    await within((this.o.publishTimeoutMs ?? 2000) + 1000, this.chain)
    this.closed = true
    for (const ch of [CHANNEL, ACK, ackReply(this.o.link.processId)]) await this.o.link.unlisten(ch).catch(() => {})
  }
}
