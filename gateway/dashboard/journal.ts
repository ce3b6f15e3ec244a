/**
 * The dashboard's durable record: every acknowledge-and-assign on the incoming board (who, when,
 * which unit and encounter, what) and every team view a clinician saved, appended as JSON lines to
 * DATA_DIR/dashboard/journal.log and fsync'd before the request that made it is answered. On
 * start the log is replayed: the latest assignment per unit and the latest view per user win.
 *
 * Why its own file and not the dataspace audit log: that log's entry kinds and its signed head are
 * the dataspace's contract (researchers' accesses); assignments are clinical coordination. This
 * file is append-only (never rewritten), mode 0600, one fsync per record; a torn last line (crash
 * mid-append) is skipped on replay and counted.
 */
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { parseViewSpec, type Assignment, type ViewSpec } from '../../streams/index.js'
import { ASSIGNMENT_ACTIONS } from '../../streams/index.js'

export type JournalRecord =
  | { type: 'assign', assignment: Assignment }
  | { type: 'view', user: string, view: ViewSpec | null, at: number }

export function journalPath (dataDir: string): string { return join(dataDir, 'dashboard', 'journal.log') }

function parseRecord (line: string): JournalRecord | null {
  let r: unknown
  try { r = JSON.parse(line) } catch { return null }
  if (typeof r !== 'object' || r === null) return null
  const o = r as Record<string, unknown>
  if (o.type === 'assign') {
    const a = o.assignment as Assignment | undefined
    if (typeof a !== 'object' || a === null || typeof a.unit !== 'string' || typeof a.encounter !== 'string' ||
      !ASSIGNMENT_ACTIONS.includes(a.action) || typeof a.by !== 'string' || typeof a.at !== 'number') return null
    return { type: 'assign', assignment: { unit: a.unit, encounter: a.encounter, action: a.action, by: a.by, at: a.at } }
  }
  if (o.type === 'view' && typeof o.user === 'string' && typeof o.at === 'number') {
    const view = o.view === null ? null : parseViewSpec(o.view)
    if (view === null && o.view !== null) return null
    return { type: 'view', user: o.user, view, at: o.at }
  }
  return null
}

export class DashboardJournal {
  /** Latest assignment per unit, as replayed and appended. */
  readonly assignments = new Map<string, Assignment>()
  /** Each user's own saved view (absent = the admin's default, else the ED view). */
  readonly views = new Map<string, ViewSpec>()
  /** Lines skipped on replay (a torn last line after a crash, or damage). */
  skipped = 0
  private queue: Promise<void> = Promise.resolve()
  private closed = false

  private constructor (private readonly fh: FileHandle) {}

  static async open (dataDir: string): Promise<DashboardJournal> {
    const path = journalPath(dataDir)
    await mkdir(join(dataDir, 'dashboard'), { recursive: true, mode: 0o700 })
    let text = ''
    try { text = await readFile(path, 'utf8') } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err }
    const fh = await open(path, 'a', 0o600)
    const j = new DashboardJournal(fh)
    // A torn tail gets a newline first, so the next record starts on a line of its own.
    if (text.length > 0 && !text.endsWith('\n')) await fh.write('\n')
    for (const line of text.split('\n')) {
      if (line === '') continue
      const r = parseRecord(line)
      if (r === null) { j.skipped++; continue }
      j.apply(r)
    }
    return j
  }

  private apply (r: JournalRecord): void {
    if (r.type === 'assign') this.assignments.set(r.assignment.unit, r.assignment)
    else if (r.view === null) this.views.delete(r.user)
    else this.views.set(r.user, r.view)
  }

  /** Appends and fsyncs `r`, then applies it. Appends are serialised; resolves once durable. */
  async append (r: JournalRecord): Promise<void> {
    if (this.closed) throw new Error('dashboard journal closed')
    const line = JSON.stringify(r) + '\n'
    const done = this.queue.then(async () => {
      await this.fh.write(line)
      await this.fh.datasync()
      this.apply(r)
    })
    this.queue = done.catch(() => {})
    await done
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.queue
    await this.fh.close()
  }
}
