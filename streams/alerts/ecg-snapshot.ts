/**
 * The 10 s 12-lead snapshot kept with an ECG STEMI alert, so a cardiologist can read the tracing
 * that raised it. One JSON file per alert under DATA_DIR/alerts/ecg/<alert id>.json, owner-only
 * (0600, folder 0700), written durably: temp file, fsync, rename, fsync of the folder. Without a
 * data folder (dir null) the newest snapshots are kept in memory only.
 *
 * In memory a snapshot's samples stay one Int16Array per lead (120 kB for 12 × 5,000 samples);
 * the JSON arrays (a JS array of numbers costs 8 bytes a sample, 480 kB a snapshot) exist only
 * while a snapshot is written or read (issue 12: nothing per sample on the heap).
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import type { LeadName } from './stemi-criteria.js'

export interface StSource {
  /** ST deviation at J+60 ms per lead, µV; absent leads were not measured. */
  stUv: Partial<Record<LeadName, number>>
  verdict: string
  leads: LeadName[]
  /** Device statement, or the gateway measurement's note (beats, QRS). */
  note: string
}

export interface EcgSnapshot {
  version: 1
  alertId: string
  unit: string
  /** Device time of the first sample, Unix ms. */
  startMs: number
  sampleRateHz: number
  leads: LeadName[]
  /** One row per lead (same order as `leads`), µV. */
  microvolts: number[][]
  /** The device's figures and the gateway's own measurement, side by side. */
  device: StSource | null
  gateway: StSource | null
  /** The V2-V3 limit applied and why. */
  limitNote: string
}

/** A snapshot as it is built and kept in memory: the samples as Int16 rows (µV), one per lead. */
export type EcgSnapshotRows = Omit<EcgSnapshot, 'microvolts'> & { rows: Int16Array[] }

const ID = /^[A-Za-z0-9-]{1,64}$/
const MEMORY_KEEP = 64

/** The JSON form (what the file holds and `get` returns). */
function toSnapshot (r: EcgSnapshotRows): EcgSnapshot {
  const { rows, ...rest } = r
  return { ...rest, microvolts: rows.map(toArray) }
}

export class EcgSnapshotStore {
  private readonly memory = new Map<string, EcgSnapshotRows>()
  private readonly pending = new Set<Promise<void>>()
  private ready: Promise<void> | null = null

  /** @param dir DATA_DIR/alerts/ecg, or null for memory only */
  constructor (readonly dir: string | null, private readonly onError: (err: Error) => void) {}

  /** Writes a snapshot durably (in the background; failures go to onError). */
  save (s: EcgSnapshotRows): void {
    if (!ID.test(s.alertId)) { this.onError(new Error('ecg snapshot: bad alert id')); return }
    this.memory.set(s.alertId, s)
    if (this.memory.size > MEMORY_KEEP) this.memory.delete(this.memory.keys().next().value!)
    if (this.dir === null) return
    const p = this.write(this.dir, s).catch((err: unknown) => { this.onError(new Error(`ecg snapshot ${s.alertId} not saved: ${(err as Error).message}`, { cause: err })) })
    this.pending.add(p)
    void p.finally(() => this.pending.delete(p))
  }

  private async write (dir: string, s: EcgSnapshotRows): Promise<void> {
    this.ready ??= mkdir(dir, { recursive: true, mode: 0o700 }).then(() => {})
    await this.ready
    const file = join(dir, s.alertId + '.json')
    const tmp = file + '.tmp'
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(JSON.stringify(toSnapshot(s)))
      await fh.datasync()
    } finally {
      await fh.close()
    }
    await rename(tmp, file)
    const d = await open(dir, 'r')
    try { await d.sync() } finally { await d.close() }
  }

  /** The snapshot of an alert, or null when there is none (yet). */
  async get (alertId: string): Promise<EcgSnapshot | null> {
    if (!ID.test(alertId)) return null
    const m = this.memory.get(alertId)
    if (m !== undefined) return toSnapshot(m)
    if (this.dir === null) return null
    let text: string
    try {
      text = await readFile(join(this.dir, alertId + '.json'), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
    const s = JSON.parse(text) as EcgSnapshot
    return s.version === 1 && s.alertId === alertId && Array.isArray(s.microvolts) ? s : null
  }

  /** Waits for the writes under way. */
  async flush (): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending])
  }
}

/** A plain copy (Array.from goes through the iterator: ~20 ms for 12 × 5,000 samples). */
function toArray (a: Int16Array): number[] {
  const out = new Array<number>(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i]!
  return out
}
