/**
 * Durable alert state: an append-only NDJSON journal under DATA_DIR/alerts/, one line per alert
 * event holding the whole alert after the event (last line per id wins), group-committed with
 * fdatasync (streams/group-commit.ts). Compacted on open, and again whenever it grows past
 * `compactBytes`: the live state is written to a temp file, fsync'd, renamed over the journal.
 *
 * Why a journal rather than a snapshot file rewritten on each change: an event costs one small
 * append (≈ 500 bytes) instead of rewriting every retained alert, and concurrent events share
 * one fsync; a torn last line after a crash is detected and dropped, so a crash never loses more
 * than the events whose fsync had not completed.
 *
 * Appends are fire-and-forget: an alert is delivered to clinicians at once and never waits for
 * the disk. A crash in the few ms before the fsync can lose the latest change of an alert (a
 * frame-driven alert is raised again by the next frames; an acknowledgement may need repeating).
 */
import { constants as fsc } from 'node:fs'
import { mkdir, open, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../storage/durable.js'
import { GroupCommitFile } from '../storage/group-commit.js'
import { AlertError } from './errors.js'
import type { StrokeFindings } from './messages.js'
import type { Alert, AlertEventType } from './types.js'

/** One journal line. */
export interface JournalRecord {
  /** The event, or `state` for a compacted line. */
  e: AlertEventType | 'state'
  a: Alert
  /** Gateway time of the next escalation (Unix ms); null when none is due. */
  x: number | null
  /** Gateway time the acknowledgement's silence ends (Unix ms); null when not silenced. */
  k?: number | null
  /** Stroke alerts: the findings behind the message (no identifiers). */
  s?: StrokeFindings | null
}

export interface JournalOpenResult {
  journal: AlertJournal
  /** The kept alerts, one record each, in raise order. */
  records: JournalRecord[]
  /** Lines that could not be read (torn last line, corruption). */
  skipped: number
}

const FILE = 'journal.ndjson'

export class AlertJournal {
  private writer: GroupCommitFile
  private held: Buffer[] | null = null
  private compacting: Promise<void> | null = null
  private failed = false
  private closed = false

  private constructor (private readonly dir: string, writer: GroupCommitFile, private readonly onError: (err: Error) => void) {
    this.writer = writer
  }

  /**
   * Reads the journal, keeps the alerts `keep` accepts (open ones, recently cleared ones),
   * rewrites the file with just those, and opens it for appending.
   */
  static async open (dir: string, keep: (a: Alert) => boolean, onError: (err: Error) => void): Promise<JournalOpenResult> {
    await mkdir(dir, { recursive: true })
    const path = join(dir, FILE)
    let text = ''
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new AlertError('AMB_ERR_ALERT_JOURNAL', `cannot read ${path}: ${(err as Error).message}`, { cause: err })
      }
    }
    const latest = new Map<string, JournalRecord>()
    let skipped = 0
    for (const line of text.split('\n')) {
      if (line === '') continue
      const rec = parseRecord(line)
      if (rec === null) { skipped++; continue }
      // Re-insert so the map's order is that of each alert's latest record.
      latest.delete(rec.a.id)
      latest.set(rec.a.id, rec)
    }
    const records = [...latest.values()].filter(r => keep(r.a)).sort((p, q) => p.a.raisedAt - q.a.raisedAt)
    await writeAtomically(dir, records)
    const fh = await open(path, fsc.O_RDWR)
    const { size } = await fh.stat()
    const journal = new AlertJournal(dir, new GroupCommitFile(fh, size), onError)
    return { journal, records, skipped }
  }

  /** Bytes in the journal (durable or in flight). */
  get size (): number { return this.writer.size }

  /** Queues one record; errors go to onError (once), never to the caller. */
  append (rec: JournalRecord): void {
    if (this.closed || this.failed) return
    const buf = Buffer.from(JSON.stringify(rec) + '\n')
    if (this.held !== null) { this.held.push(buf); return }
    this.writer.append(buf).catch((err: Error) => { this.fail(err) })
  }

  /**
   * Replaces the journal with `records` (the live state). Appends made meanwhile are held and
   * written after the switch, so no event is lost and replay order stays correct.
   */
  compact (records: JournalRecord[]): Promise<void> {
    if (this.compacting !== null || this.closed || this.failed) return this.compacting ?? Promise.resolve()
    this.held = []
    this.compacting = (async () => {
      try {
        await this.writer.close()
        await writeAtomically(this.dir, records)
        const fh = await open(join(this.dir, FILE), fsc.O_RDWR)
        this.writer = new GroupCommitFile(fh, (await fh.stat()).size)
      } catch (err) {
        this.fail(err as Error)
      } finally {
        const held = this.held ?? []
        this.held = null
        this.compacting = null
        for (const b of held) if (!this.failed) this.writer.append(b).catch((err: Error) => { this.fail(err) })
      }
    })()
    return this.compacting
  }

  /** Waits for compaction and pending appends, then closes the file. Safe to call twice. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.compacting !== null) await this.compacting
    try {
      await this.writer.close()
    } catch (err) {
      this.fail(err as Error)
    }
  }

  private fail (err: Error): void {
    if (this.failed) return
    this.failed = true
    this.onError(new AlertError('AMB_ERR_ALERT_JOURNAL', `alert journal write failed; alerts continue in memory only: ${err.message}`, { cause: err }))
  }
}

function parseRecord (line: string): JournalRecord | null {
  let r: unknown
  try { r = JSON.parse(line) } catch { return null }
  if (typeof r !== 'object' || r === null) return null
  const rec = r as Partial<JournalRecord>
  const a = rec.a as Partial<Alert> | undefined
  if (a === undefined || typeof a !== 'object' || a === null) return null
  if (typeof a.id !== 'string' || typeof a.unit !== 'string' || typeof a.kind !== 'string' || typeof a.raisedAt !== 'number') return null
  const s = rec.s
  const stroke = typeof s === 'object' && s !== null && typeof s.lamsScore === 'number' && typeof s.lastKnownWellMs === 'number'
    ? { lamsScore: s.lamsScore, fastPositive: s.fastPositive === true, lastKnownWellMs: s.lastKnownWellMs }
    : null
  return { e: rec.e ?? 'state', a: { escalatedAt: null, realarms: 0, valueAt: null, ...a } as Alert, x: typeof rec.x === 'number' ? rec.x : null, k: typeof rec.k === 'number' ? rec.k : null, s: stroke }
}

/** Writes the records to a temp file, fsyncs it, renames it over the journal, fsyncs the folder. */
async function writeAtomically (dir: string, records: JournalRecord[]): Promise<void> {
  let text = ''
  for (const r of records) text += JSON.stringify({ e: 'state', a: r.a, x: r.x, k: r.k ?? null, s: r.s ?? null }) + '\n'
  await writeFileDurably(dir, FILE, text)
}

/** The one atomic durable write of the alert state files (temp file, fsync, rename, fsync the folder). */
export async function writeFileDurably (dir: string, name: string, text: string): Promise<void> {
  await writeFileAtomic(join(dir, name), text)
}

/** For tests and tooling: the journal's path and size. */
export async function journalSize (dir: string): Promise<number> {
  try { return (await stat(join(dir, FILE))).size } catch { return 0 }
}
