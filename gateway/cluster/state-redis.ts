/**
 * Alert state that follows the unit (issue #15): each unit's engine snapshot (encounter, latest
 * readings with their sample times, NEWS2 level, SpO2 scale, age, ECG seen) is kept in Redis
 * under `ambulink:state:{unit}` as well as in the process' local journal, so a unit's new owner
 * (failover after a process death, or the unit reconnecting to another process) takes it over
 * before its first frame there (alert-wiring.ts: {@link takeOverUnit}). The unit's open alerts,
 * with acknowledgements and escalations, already live in the cluster book
 * (`ambulink:open:{unit}`, alert-stream.ts) and are taken over with it.
 *
 * Writes never block ingest or alerts: `save` only records the snapshot as pending (the newest
 * per unit wins: coalesced, so the pending set is bounded by the number of units); one writer
 * drains it in pipelined batches, each bounded by `writeTimeoutMs`. With Redis down the local
 * journal still works (a single process restarts as before); pending snapshots are kept (newest
 * per unit) and written once Redis answers. No write is issued while the link is down (ioredis
 * would queue it, one batch a second for the whole outage): the pending set is the only buffer,
 * and the writer starts again when the link is ready.
 */
import type { Logger } from 'pino'
import { JournalStateStore, type Alert, type AlertStateStore, type UnitSnapshot } from '../../streams/index.js'
import { PREFIX, within, type ClusterLink } from './redis.js'

export const stateKey = (unit: string): string => `${PREFIX}state:${unit}`
const openKey = (unit: string): string => `${PREFIX}open:${unit}`
/** A unit's snapshot expires after a day without a write (an abandoned unit leaves nothing behind). */
const STATE_TTL_MS = 24 * 3_600_000

export interface RedisStateStoreOptions {
  link: ClusterLink
  /** The local journal (DATA_DIR/alerts). */
  local: JournalStateStore
  log: Logger
  /** Bound on one batch write and on a take-over read, ms. */
  writeTimeoutMs?: number
  /** Most snapshots per pipelined batch. */
  batch?: number
}

export class RedisStateStore implements AlertStateStore {
  /** Unit → newest unsaved snapshot (null: remove). */
  private readonly pending = new Map<string, UnitSnapshot | null>()
  private draining: Promise<void> | null = null
  private closed = false
  private failing = false
  /** Batches written, and the last batch's time, for the loadtest/tests. */
  written = 0

  private readonly onReady = (): void => { this.kick() }

  constructor (private readonly o: RedisStateStoreOptions) {
    o.link.cmd.on('ready', this.onReady)
  }

  /** At start: the local journal's units (those this process held before its restart). */
  async loadAll (): Promise<UnitSnapshot[]> { return await this.o.local.loadAll() }

  save (s: UnitSnapshot): void {
    this.o.local.save(s)
    this.pending.set(s.unit, s)
    this.kick()
  }

  remove (unit: string): void {
    this.o.local.remove(unit)
    this.pending.set(unit, null)
    this.kick()
  }

  private kick (): void {
    if (this.closed || this.draining !== null) return
    this.draining = this.drain().finally(() => {
      this.draining = null
      // More arrived while the last batch was in flight (not after a failure: the next save retries).
      if (this.pending.size > 0 && !this.failing) this.kick()
    })
  }

  private async drain (): Promise<void> {
    // Let the current burst of saves coalesce first.
    await new Promise(resolve => setImmediate(resolve))
    if (this.o.link.cmd.status !== 'ready') {
      if (!this.failing) this.o.log.warn({ units: this.pending.size }, 'unit state not written to Redis: the link is down (kept locally; written when it is back)')
      this.failing = true
      return
    }
    const take: Array<[string, UnitSnapshot | null]> = []
    for (const entry of this.pending) {
      take.push(entry)
      if (take.length >= (this.o.batch ?? 200)) break
    }
    for (const [unit] of take) this.pending.delete(unit)
    const m = this.o.link.cmd.multi()
    for (const [unit, s] of take) {
      if (s === null) m.del(stateKey(unit))
      else m.set(stateKey(unit), JSON.stringify(s), 'PX', STATE_TTL_MS)
    }
    const ok = await within(this.o.writeTimeoutMs ?? 1000, m.exec().then(() => true, () => false))
    if (ok === true) {
      this.written++
      if (this.failing) this.o.log.info('unit state reaches Redis again')
      this.failing = false
      return
    }
    // Put back what was not written, unless a newer snapshot arrived meanwhile.
    for (const [unit, s] of take) if (!this.pending.has(unit)) this.pending.set(unit, s)
    if (!this.failing) this.o.log.warn({ units: take.length }, 'unit state not written to Redis (kept locally; retried at the next save)')
    this.failing = true
  }

  /** Resolves once the snapshots saved so far were written (or a write failed). */
  async flushed (): Promise<void> {
    while (this.draining !== null) await this.draining
  }

  /**
   * What another process left of a unit: its snapshot and the cluster's open alerts for it.
   * Bounded by writeTimeoutMs; null when Redis did not answer (the unit then starts afresh here).
   */
  async takeOver (unit: string): Promise<{ snapshot: UnitSnapshot | null, open: Alert[] } | null> {
    const cmd = this.o.link.cmd
    const r = await within(this.o.writeTimeoutMs ?? 1000, Promise.all([cmd.get(stateKey(unit)), cmd.hgetall(openKey(unit))]))
    if (r === undefined) return null
    const [text, book] = r
    let snapshot: UnitSnapshot | null = null
    try { if (text !== null) snapshot = JSON.parse(text) as UnitSnapshot } catch { snapshot = null }
    const open: Alert[] = []
    for (const [f, v] of Object.entries(book)) {
      if (f.includes('#')) continue
      try { open.push(JSON.parse(v) as Alert) } catch { /* a torn entry: the next frames rebuild it */ }
    }
    return { snapshot, open }
  }

  async close (): Promise<void> {
    // The engine's last saves go out if Redis answers within the bound; the local journal has them anyway.
    await within((this.o.writeTimeoutMs ?? 1000) * 2, this.flushed())
    this.closed = true
    this.o.link.cmd.off('ready', this.onReady)
    await this.o.local.close()
  }
}
