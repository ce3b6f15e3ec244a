/**
 * Restart keeps the ward: what the engine knows of each watched unit (encounter, last readings,
 * NEWS2 level, clinician settings) survives a restart, so every unit is watched as before — a
 * unit that never reconnects raises signal loss, and a NIBP taken ten minutes ago still scores.
 *
 * Behind a small interface ({@link AlertStateStore}) so a shared store (Redis, for several
 * gateway processes) can replace the local one. The local one, {@link JournalStateStore}, is an
 * append-only NDJSON file under DATA_DIR/alerts/ (one line per saved snapshot, the last line per
 * unit wins), group-committed with fdatasync and compacted on open and when it grows.
 */
import { constants as fsc } from 'node:fs'
import { mkdir, open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { GroupCommitFile } from '../storage/group-commit.js'
import { AlertError } from './errors.js'
import { writeFileDurably } from './journal.js'
import type { Reading } from './news2.js'
import type { WindowState } from './window.js'

/** One unit's durable state. Times are Unix ms; no patient identifiers beyond the pseudonymous encounter. */
export interface UnitSnapshot {
  unit: string
  encounter: string
  bootId: string
  /** Sample time of the newest frame processed (its capture time on the unit's timeline). */
  lastCapturedAt: number
  /** Highest seq of the boot processed (-1: none); absent in snapshots from before it was kept. */
  seqTop?: number
  /** The boot's clock shift, ms (frame-order.ts: the device clock set back); absent before it was kept. */
  clockShiftMs?: number
  /** Latest reading per vital-sign field. */
  readings: Record<string, Reading>
  /** NEWS2 level of the open NEWS2 alert (0 none). */
  news2Level: number
  /** SpO2 scale set by a clinician for the encounter (1 unless set). */
  spo2Scale: 1 | 2
  /** Age from the crew's assessment, or null. */
  ageYears: number | null
  /** Whether the unit has streamed ECG in this encounter (for lead-off detection). */
  hadEcg: boolean
  /**
   * Rule windows (how long each condition has held, window.ts), by threshold rule sign, so a
   * condition part-way through its duration goes on from there after a restart or a failover.
   * Absent in snapshots written before they were kept (the windows then start empty).
   */
  windows?: Record<string, WindowState>
  /** NEWS2's raise/step-down window. */
  news2Window?: WindowState
  /** Link gaps of the last linkWindowMs (gateway time they ended, length ms), oldest first: the degraded-link count. */
  linkGaps?: Array<[number, number]>
}

/** Where unit snapshots live. `save` and `remove` never throw: failures go to the store's onError. */
export interface AlertStateStore {
  loadAll: () => Promise<UnitSnapshot[]>
  save: (s: UnitSnapshot) => void
  remove: (unit: string) => void
  close: () => Promise<void>
}

const FILE = 'units.ndjson'

interface Line { u: string, s: UnitSnapshot | null }

/** The local implementation: an fsync'd append-only file, compacted on open and past `compactBytes`. */
export class JournalStateStore implements AlertStateStore {
  private writer: GroupCommitFile | null = null
  private latest = new Map<string, UnitSnapshot>()
  private failed = false
  private closed = false
  private compacting = false
  /** Lines appended while compacting: written after the switch. */
  private held: Line[] = []

  constructor (private readonly dir: string, private readonly onError: (err: Error) => void, private readonly compactBytes = 4 * 1024 * 1024) {}

  async loadAll (): Promise<UnitSnapshot[]> {
    await mkdir(this.dir, { recursive: true })
    const path = join(this.dir, FILE)
    let text = ''
    try {
      text = await readFile(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new AlertError('AMB_ERR_ALERT_JOURNAL', `cannot read ${path}: ${(err as Error).message}`, { cause: err })
      }
    }
    for (const line of text.split('\n')) {
      if (line === '') continue
      let l: Line
      // A torn last line (crash mid-write) is skipped: the previous snapshot of that unit stands.
      try { l = JSON.parse(line) as Line } catch { continue }
      if (typeof l.u !== 'string') continue
      if (l.s === null || typeof l.s !== 'object') this.latest.delete(l.u)
      else this.latest.set(l.u, l.s)
    }
    await this.rewrite()
    return [...this.latest.values()]
  }

  private async rewrite (): Promise<void> {
    let text = ''
    for (const [u, s] of this.latest) text += JSON.stringify({ u, s }) + '\n'
    await this.writer?.close()
    await writeFileDurably(this.dir, FILE, text)
    const fh = await open(join(this.dir, FILE), fsc.O_RDWR)
    this.writer = new GroupCommitFile(fh, (await fh.stat()).size)
  }

  save (s: UnitSnapshot): void {
    this.latest.set(s.unit, s)
    this.append({ u: s.unit, s })
  }

  remove (unit: string): void {
    if (!this.latest.delete(unit)) return
    this.append({ u: unit, s: null })
  }

  private append (l: Line): void {
    if (this.closed || this.failed || this.writer === null) return
    if (this.compacting) { this.held.push(l); return }
    this.writer.append(Buffer.from(JSON.stringify(l) + '\n')).catch((err: Error) => { this.fail(err) })
    if (this.writer.size > this.compactBytes) {
      this.compacting = true
      this.rewrite().catch((err: Error) => { this.fail(err) }).finally(() => {
        this.compacting = false
        const held = this.held
        this.held = []
        for (const h of held) this.append(h)
      })
    }
  }

  private fail (err: Error): void {
    if (this.failed) return
    this.failed = true
    this.onError(new AlertError('AMB_ERR_ALERT_JOURNAL', `unit state journal write failed; the ward roster will not survive a restart: ${err.message}`, { cause: err }))
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    while (this.compacting) await new Promise(resolve => setImmediate(resolve))
    try { await this.writer?.close() } catch (err) { this.fail(err as Error) }
  }
}
