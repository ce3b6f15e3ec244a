/**
 * Which process holds which unit, and what happens to a dead process' units.
 *
 * - Ownership: `ambulink:owner:{unit}` names the process that last received the unit's frames
 *   (claimed on its first frame there). Only the owner publishes the unit's alert events
 *   (alert-stream.ts) and its live view (live-relay.ts).
 * - Roster and heartbeats: every `heartbeatMs` a process refreshes `ambulink:alive:{process}`
 *   (expiring after `deadAfterMs`) and writes its units with their last-seen time (gateway clock)
 *   into `ambulink:roster:{process}`.
 * - Death: on each heartbeat a process looks for members of `ambulink:processes` whose alive key
 *   expired; one atomic script moves a dead process' still-owned units to the caller and returns
 *   them, so exactly one survivor takes each unit, and calls `onUnitsClaimed` (the alert engine's
 *   `watchUnit(unit, lastSeenMs)`: signal loss if the unit never comes back).
 *
 * Death-detection time: a process is declared dead `deadAfterMs` after its last heartbeat, and
 * found by the next heartbeat of a survivor: at most deadAfterMs + heartbeatMs (6 s + 2 s by
 * default). A unit of a dead process that never reconnects raises signal loss at
 * max(last seen + SIGNAL_LOSS_MS, detection); its last-seen time is the one written at the dead
 * process' last heartbeat, up to heartbeatMs before its real last frame.
 */
import type { Logger } from 'pino'
import { PREFIX, within, type ClusterLink } from './redis.js'

export const ROSTER_DEFAULTS = Object.freeze({ heartbeatMs: 2000, deadAfterMs: 6000 })

const PROCESSES = `${PREFIX}processes`
const alive = (p: string): string => `${PREFIX}alive:${p}`
const roster = (p: string): string => `${PREFIX}roster:${p}`
export const ownerKey = (unit: string): string => `${PREFIX}owner:${unit}`
const CLAIMED = `${PREFIX}claimed`

/** KEYS none; ARGV me, dead. Moves the dead process' units it still owns to me; returns [unit, lastSeen, ...]. */
const CLAIM = `
local P = '${PREFIX}'
local me, dead = ARGV[1], ARGV[2]
if redis.call('EXISTS', P .. 'alive:' .. dead) == 1 then return {} end
if redis.call('SREM', P .. 'processes', dead) == 0 then return {} end
local units = redis.call('HGETALL', P .. 'roster:' .. dead)
local out = {}
for i = 1, #units, 2 do
  local ok = P .. 'owner:' .. units[i]
  if redis.call('GET', ok) == dead then
    redis.call('SET', ok, me)
    redis.call('HSET', P .. 'roster:' .. me, units[i], units[i + 1])
    out[#out + 1] = units[i]
    out[#out + 1] = units[i + 1]
  end
end
redis.call('DEL', P .. 'roster:' .. dead)
return out
`

export interface RosterOptions {
  heartbeatMs?: number
  deadAfterMs?: number
  now?: () => number
  log: Logger
  /** Last-seen time (gateway ms) of a unit this process holds; undefined once forgotten. */
  lastSeen: (unit: string) => number | undefined
  /** Units of a dead process now held by this one (watch them for signal loss). */
  onUnitsClaimed: (units: Array<{ unit: string, lastSeenMs: number }>, deadProcess: string) => void
  /** This process claimed a unit at its first frame here. */
  onClaimed?: (unit: string) => void
  /** A process was found dead (its live-view requests must be dropped). */
  onProcessDead?: (process: string) => void
}

export class Roster {
  readonly heartbeatMs: number
  readonly deadAfterMs: number
  /** Units this process owns (claimed at their first frame here, or from a dead process). */
  private readonly owned = new Set<string>()
  private readonly claiming = new Map<string, Promise<void>>()
  private timer: NodeJS.Timeout | null = null
  private beating: Promise<void> | null = null
  private closed = false
  private readonly now: () => number

  constructor (private readonly link: ClusterLink, private readonly o: RosterOptions) {
    this.heartbeatMs = o.heartbeatMs ?? ROSTER_DEFAULTS.heartbeatMs
    this.deadAfterMs = o.deadAfterMs ?? ROSTER_DEFAULTS.deadAfterMs
    this.now = o.now ?? Date.now
  }

  get processId (): string { return this.link.processId }

  async start (): Promise<void> {
    // A unit claimed elsewhere is no longer ours at once (not only at the next heartbeat).
    await this.link.listen(CLAIMED, m => {
      const [unit, by] = m.toString().split('\n')
      if (unit !== undefined && by !== this.processId) this.owned.delete(unit)
    })
    await this.beat()
    this.timer = setInterval(() => { this.beating ??= this.beat().finally(() => { this.beating = null }) }, this.heartbeatMs)
    this.timer.unref()
  }

  owns (unit: string): boolean { return this.owned.has(unit) }

  /** Called for every frame: claims the unit the first time it reaches this process. Cheap after that. */
  seen (unit: string): void {
    if (this.owned.has(unit) || this.closed || this.claiming.has(unit)) return
    const p = this.link.cmd.multi()
      .set(ownerKey(unit), this.processId)
      .hset(roster(this.processId), unit, String(this.now()))
      .publish(CLAIMED, `${unit}\n${this.processId}`)
      .exec()
      .then(() => { this.owned.add(unit); this.o.onClaimed?.(unit) }, (err: Error) => { this.o.log.warn({ err: err.message, unit }, 'could not claim a unit') })
      .finally(() => { this.claiming.delete(unit) })
    this.claiming.set(unit, p)
  }

  /** Resolves once the claims in progress are written (tests, and before the first alert). */
  async settled (): Promise<void> { await Promise.all(this.claiming.values()) }

  /** Takes units adopted from a dead process as owned. */
  adopt (unit: string): void { this.owned.add(unit) }

  private async beat (): Promise<void> {
    if (this.closed) return
    const me = this.processId
    const cmd = this.link.cmd
    try {
      const units = [...this.owned]
      // Units another process claimed since (the device moved): no longer ours.
      const owners = units.length > 0 ? await cmd.mget(units.map(ownerKey)) : []
      const m = cmd.multi().set(alive(me), String(this.now()), 'PX', this.deadAfterMs).sadd(PROCESSES, me)
      const fields: string[] = []
      for (let i = 0; i < units.length; i++) {
        const unit = units[i]!
        if (owners[i] !== me) { this.owned.delete(unit); m.hdel(roster(me), unit); continue }
        const t = this.o.lastSeen(unit)
        if (t === undefined) { this.owned.delete(unit); m.hdel(roster(me), unit); continue }
        fields.push(unit, String(t))
      }
      if (fields.length > 0) m.hset(roster(me), ...fields)
      await m.exec()
      for (const p of await cmd.smembers(PROCESSES)) {
        if (p === me || (await cmd.exists(alive(p))) === 1) continue
        const out = await cmd.eval(CLAIM, 0, me, p) as string[]
        if (out.length === 0 && (await cmd.sismember(PROCESSES, p)) === 1) continue
        this.o.log.warn({ process: p, units: out.length / 2 }, 'gateway process found dead: its units are watched here')
        this.o.onProcessDead?.(p)
        const claimed: Array<{ unit: string, lastSeenMs: number }> = []
        for (let i = 0; i < out.length; i += 2) {
          this.owned.add(out[i]!)
          claimed.push({ unit: out[i]!, lastSeenMs: Number(out[i + 1]) })
        }
        if (claimed.length > 0) this.o.onUnitsClaimed(claimed, p)
      }
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'cluster heartbeat failed')
    }
  }

  /** Stops the heartbeat and leaves the cluster cleanly (its units go to whoever receives them next). */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== null) clearInterval(this.timer)
    // A heartbeat waits for Redis during an outage: shutdown does not.
    if (this.beating !== null) await within(1000, this.beating)
    await this.link.unlisten(CLAIMED).catch(() => {})
  }
}
