/**
 * Acknowledge-and-assign on the incoming-patients board, cluster-wide (issue #15): an assignment
 * taken on any process ("cath lab activated" on AMB-7, by whom, when) is on every process' board.
 *
 * - The process that takes it journals it first (DATA_DIR/dashboard/journal.log, fsync'd, as
 *   one process does), then shares it: one Lua script sets `ambulink:assignments` (hash: unit →
 *   the latest assignment) and publishes it on `ambulink:assignment`, atomically, so the hash and
 *   the order of announcements agree on every process (the last one Redis ran wins everywhere).
 *   An assignment older than the one Redis holds for the unit is not shared (a retry after an
 *   outage never overwrites a newer one).
 * - Every process applies each announcement in Redis' order: its pages get it at once (pub/sub:
 *   milliseconds), and it journals it too (who, when, which process took it is in the record's
 *   `by` and `at`), so each process' journal is the board it showed.
 * - A process starting (or one whose peer died) reads the hash: the board survives the death of
 *   the process that took an assignment. Entries older than a day are dropped.
 * - Redis down: the assignment is journalled and shown on this process' pages (as one process
 *   would), the request says `shared: false`, and it is shared once Redis answers (retried every
 *   2 s, the newest per unit).
 */
import type { Logger } from 'pino'
import { ASSIGNMENT_ACTIONS, type Assignment, type LiveHub } from '../../streams/index.js'
import type { DashboardJournal } from '../dashboard/journal.js'
import { PREFIX, within, type ClusterLink } from './redis.js'

export const ASSIGNMENTS = `${PREFIX}assignments`
const CHANNEL = `${PREFIX}assignment`
/** Assignments older than this are dropped from the shared board (a patient handed over long ago). */
const KEEP_MS = 24 * 3_600_000
/** Bound on one share (the clinician's request waits for it). */
const SHARE_TIMEOUT_MS = 2000
const RETRY_MS = 2000

// KEYS[1] hash; ARGV: unit, assignment JSON, its `at`, channel. Not older than the stored one.
const SHARE = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local ok, c = pcall(cjson.decode, cur)
  if ok and type(c) == 'table' and tonumber(c.at) ~= nil and tonumber(c.at) > tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 1`

/** A well-formed assignment, or null. */
export function parseAssignment (v: unknown): Assignment | null {
  if (typeof v !== 'object' || v === null) return null
  const a = v as Record<string, unknown>
  if (typeof a.unit !== 'string' || a.unit === '' || a.unit.length > 64 || typeof a.encounter !== 'string' ||
    !ASSIGNMENT_ACTIONS.includes(a.action as Assignment['action']) || typeof a.by !== 'string' || typeof a.at !== 'number' || !Number.isFinite(a.at)) return null
  return { unit: a.unit, encounter: a.encounter, action: a.action as Assignment['action'], by: a.by, at: a.at }
}

export class ClusterAssignments {
  /** The JSON of the assignment applied last per unit (announcements already shown are skipped). */
  private readonly applied = new Map<string, string>()
  /** Not yet shared (Redis did not answer): the newest per unit. */
  private readonly pending = new Map<string, Assignment>()
  private retry: NodeJS.Timeout | null = null
  private closed = false

  private constructor (private readonly link: ClusterLink, private readonly hub: LiveHub, private readonly journal: DashboardJournal, private readonly log: Logger) {}

  /** Listens to the announcements, then puts the cluster's board (Redis) on this hub. */
  static async open (link: ClusterLink, hub: LiveHub, journal: DashboardJournal, log: Logger, now: () => number = Date.now): Promise<ClusterAssignments> {
    const c = new ClusterAssignments(link, hub, journal, log)
    for (const a of journal.assignments.values()) c.applied.set(a.unit, JSON.stringify(a))
    await link.listen(CHANNEL, m => { c.announced(m) })
    const all = await within(SHARE_TIMEOUT_MS * 2, link.cmd.hgetall(ASSIGNMENTS))
    if (all === undefined) {
      log.warn('the cluster\'s incoming board was not read from Redis in time: this process shows its own journal until the next assignment')
    } else {
      const old: string[] = []
      for (const [unit, text] of Object.entries(all)) {
        let a: Assignment | null = null
        try { a = parseAssignment(JSON.parse(text)) } catch { a = null }
        if (a === null || a.at < now() - KEEP_MS) { old.push(unit); continue }
        const mine = journal.assignments.get(unit)
        // This process' journal may hold a newer one that never reached Redis (an outage): it is shared below.
        if (mine !== undefined && mine.at > a.at) { c.pending.set(unit, mine); continue }
        // Taken elsewhere (perhaps while this process was down): journalled here too.
        c.apply(a, text, true)
      }
      if (old.length > 0) link.cmd.hdel(ASSIGNMENTS, ...old).catch(() => {})
      if (c.pending.size > 0) c.schedule()
    }
    return c
  }

  private announced (m: Buffer): void {
    const text = m.toString()
    let a: Assignment | null = null
    try { a = parseAssignment(JSON.parse(text)) } catch { a = null }
    if (a === null) { this.log.warn('malformed assignment announcement ignored'); return }
    this.apply(a, text, true)
  }

  private apply (a: Assignment, text: string, journal: boolean): void {
    if (this.closed || this.applied.get(a.unit) === text) return
    this.applied.set(a.unit, text)
    this.hub.pushAssignment(a)
    if (journal) {
      this.journal.append({ type: 'assign', assignment: a }).catch((err: Error) => {
        this.log.error({ err: err.message, unit: a.unit }, 'assignment from another process not journalled here')
      })
    }
  }

  /**
   * Shares an assignment this process took (already journalled): shown on this process' pages at
   * once, on every other process' within Redis' pub/sub latency. Resolves whether Redis has it
   * or a newer one (false: kept and retried every 2 s; this process' pages have it anyway).
   */
  async share (a: Assignment): Promise<boolean> {
    this.apply(a, JSON.stringify(a), false)
    const ok = await this.send(a)
    if (!ok) { this.pending.set(a.unit, a); this.schedule() }
    return ok
  }

  private async send (a: Assignment): Promise<boolean> {
    const r = await within(SHARE_TIMEOUT_MS, this.link.cmd.eval(SHARE, 1, ASSIGNMENTS, a.unit, JSON.stringify(a), String(a.at), CHANNEL).then(() => true, () => false))
    return r === true
  }

  private schedule (): void {
    if (this.retry !== null || this.closed) return
    this.retry = setTimeout(() => {
      this.retry = null
      void this.flush()
    }, RETRY_MS)
    this.retry.unref()
  }

  private async flush (): Promise<void> {
    for (const [unit, a] of [...this.pending]) {
      if (this.closed) return
      if (!(await this.send(a))) { this.schedule(); return }
      if (this.pending.get(unit) === a) this.pending.delete(unit)
      this.log.info({ unit }, 'assignment shared with the cluster after an outage')
    }
  }

  /** Assignments waiting for Redis. */
  get pendingCount (): number { return this.pending.size }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.retry !== null) clearTimeout(this.retry)
    await this.link.unlisten(CHANNEL).catch(() => {})
  }
}
