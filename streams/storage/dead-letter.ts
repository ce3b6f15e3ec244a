/**
 * Dead letters: frames the decoder refused and lines InfluxDB refused, kept with their reason so
 * nothing is silently lost. One NDJSON file per UTC day under `<dir>`, fsync'd (group commit)
 * before the caller acknowledges the input. Disk use is bounded; past the bound entries are
 * counted as dropped (metric + log) rather than filling the disk that holds the spool.
 */
import { constants as fsc } from 'node:fs'
import { mkdir, open, readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { GroupCommitFile } from './group-commit.js'

export interface DeadLetter {
  /**
   * Where it was refused: the decoder (frame), InfluxDB (lines), or the spool's drain (a
   * spooled frame the decoder refused when its line protocol was written: frame-record.ts).
   */
  source: 'decoder' | 'influx' | 'spool'
  /** Stable error code (AMB_ERR_…). */
  code: string
  reason: string
  unit?: string
  /** Transport the frame came in on. */
  transport?: string
  /** The raw frame, for decoder and spool rejections (stored base64). */
  payload?: Uint8Array
  /** The refused line protocol, for InfluxDB rejections. */
  lines?: string
}

export interface StoredDeadLetter extends Omit<DeadLetter, 'payload'> { at: string, payload?: string }

export interface DeadLetterOptions {
  dir: string
  /** Bound on the dead-letter folder, in bytes. */
  maxBytes: number
  onDropped?: (entry: DeadLetter) => void
}

export const DEAD_LETTER_DEFAULTS = Object.freeze({ maxBytes: 512 * 1024 * 1024 })

export class DeadLetterStore {
  private file: { day: string, gc: GroupCommitFile } | null = null
  private opening: Promise<GroupCommitFile> | null = null
  private bytes = 0
  private closed = false

  private constructor (private readonly options: DeadLetterOptions) {}

  static async open (options: Partial<DeadLetterOptions> & { dir: string }): Promise<DeadLetterStore> {
    const s = new DeadLetterStore({ ...DEAD_LETTER_DEFAULTS, ...options })
    await mkdir(options.dir, { recursive: true })
    for (const name of await readdir(options.dir)) s.bytes += (await stat(join(options.dir, name))).size
    return s
  }

  get totalBytes (): number { return this.bytes }

  /** Stores one dead letter durably. Returns false when it had to be dropped (bound reached). */
  async add (entry: DeadLetter): Promise<boolean> {
    const stored: StoredDeadLetter = {
      at: new Date().toISOString(),
      ...entry,
      payload: entry.payload === undefined ? undefined : Buffer.from(entry.payload.buffer, entry.payload.byteOffset, entry.payload.byteLength).toString('base64')
    }
    const line = Buffer.from(JSON.stringify(stored) + '\n')
    if (this.closed || this.bytes + line.length > this.options.maxBytes) {
      this.options.onDropped?.(entry)
      return false
    }
    this.bytes += line.length
    const gc = await this.current(stored.at.slice(0, 10))
    await gc.append(line)
    return true
  }

  private async current (day: string): Promise<GroupCommitFile> {
    if (this.file !== null && this.file.day === day) return this.file.gc
    if (this.opening !== null) return await this.opening
    this.opening = (async () => {
      const old = this.file
      const path = join(this.options.dir, `dead-letters-${day}.ndjson`)
      const fh = await open(path, fsc.O_RDWR | fsc.O_CREAT)
      const { size } = await fh.stat()
      const gc = new GroupCommitFile(fh, size)
      this.file = { day, gc }
      if (old !== null) await old.gc.close()
      return gc
    })().finally(() => { this.opening = null })
    return await this.opening
  }

  /** Reads every stored dead letter (operations and tests; not for hot paths). */
  async readAll (): Promise<StoredDeadLetter[]> {
    if (this.file !== null) await this.file.gc.flush()
    const out: StoredDeadLetter[] = []
    const names = (await readdir(this.options.dir)).filter(n => n.endsWith('.ndjson')).sort()
    for (const name of names) {
      for (const line of (await readFile(join(this.options.dir, name), 'utf8')).split('\n')) {
        if (line !== '') out.push(JSON.parse(line) as StoredDeadLetter)
      }
    }
    return out
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.opening !== null) await this.opening
    if (this.file !== null) await this.file.gc.close()
  }
}
