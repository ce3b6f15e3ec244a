/**
 * The durable spool: every accepted frame's line protocol is appended here and fsync'd (group
 * commit) before the device is acknowledged. The InfluxDB sink reads it in order and the spool is
 * trimmed only after InfluxDB acknowledged the points. Without InfluxDB (the embedded default)
 * the spool is the store of record and drains once a database is configured.
 *
 * On disk: `seg-<n>.log` segments of records
 *   [u32 payload length][u32 crc32 of the rest][f64 received-at ms][u32 points][payload]
 * and `cursor.json`, the position up to which InfluxDB has acknowledged. A crash can leave a torn
 * record at the end of the newest segment; open() truncates it (its device got no PUBACK and will
 * resend). A crash after a write but before the cursor moved replays some records into InfluxDB,
 * which is harmless because writes are idempotent.
 */
import { constants as fsc } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { StreamError } from './errors.js'
import { crashPoint } from './crash-point.js'
import { GroupCommitFile } from './group-commit.js'

const HEADER = 20
/** Bytes appendRecord() expects reserved in front of the payload. */
export const SPOOL_RECORD_HEADER = HEADER

export interface SpoolOptions {
  /** Folder for segments and the cursor. */
  dir: string
  /** Size after which a new segment is started, in bytes. */
  segmentBytes: number
  /** Hard bound on disk use, in bytes: appends beyond it are refused with AMB_ERR_SPOOL_FULL. */
  maxSpoolBytes: number
  /** Fraction of maxSpoolBytes at which `onPressure` fires (once per crossing). */
  warnRatio: number
  /** Called when use crosses warnRatio (true) or falls back under it (false). */
  onPressure?: (high: boolean, bytes: number) => void
  /** Injectable clock for tests. */
  now?: () => number
}

export const SPOOL_DEFAULTS = Object.freeze({
  segmentBytes: 64 * 1024 * 1024,
  maxSpoolBytes: 4 * 1024 * 1024 * 1024,
  warnRatio: 0.8
})

export interface Position { segment: number, offset: number }

export interface SpoolBatch {
  /** Concatenated payloads (line protocol). */
  data: Buffer
  records: number
  points: number
  /** Received-at time of the first record, Unix ms. */
  firstReceivedAtMs: number
  /** Position just after the last record: pass to commit() once stored. */
  end: Position
}

function segName (n: number): string { return `seg-${String(n).padStart(12, '0')}.log` }

interface Segment { n: number, bytes: number }

export class Spool {
  private segments: Segment[] = []
  private writer!: GroupCommitFile
  private writerSeg!: Segment
  /** Position up to which the sink has acknowledged (persisted in cursor.json). */
  private cursor: Position = { segment: 0, offset: 0 }
  /** Position the reader has handed out up to (may run ahead of the cursor). */
  private readPos: Position = { segment: 0, offset: 0 }
  private readFh: { n: number, fh: FileHandle } | null = null
  private dataWaiters: Array<() => void> = []
  private totalBytes = 0
  private high = false
  private closed = false
  private rotating: Promise<void> | null = null
  private closedSyncs = 0
  /** Records appended since open. */
  appends = 0
  /**
   * True from a refusal at the bound until the sink frees space: the spool may sit a little
   * under maxSpoolBytes and still refuse every frame (readiness must say so).
   */
  refusing = false
  /** Torn segment tails skipped by read() (see there); 0 unless a crash tore a write. */
  tornTailsSkipped = 0
  private readonly now: () => number
  readonly options: Readonly<SpoolOptions>

  private constructor (options: SpoolOptions) {
    this.options = options
    this.now = options.now ?? Date.now
  }

  static async open (options: Partial<SpoolOptions> & { dir: string }): Promise<Spool> {
    const o = { ...SPOOL_DEFAULTS, ...options }
    // Only whole segments are trimmed, so a segment must be small next to the bound.
    o.segmentBytes = Math.max(4096, Math.min(o.segmentBytes, Math.floor(o.maxSpoolBytes / 8)))
    const s = new Spool(o)
    await s.recover()
    return s
  }

  private async recover (): Promise<void> {
    const dir = this.options.dir
    await mkdir(dir, { recursive: true })
    const names = (await readdir(dir)).filter(n => /^seg-\d{12}\.log$/.test(n)).sort()
    for (const name of names) {
      const { size } = await stat(join(dir, name))
      this.segments.push({ n: Number(name.slice(4, 16)), bytes: size })
    }
    try {
      const c = JSON.parse(await readFile(join(dir, 'cursor.json'), 'utf8')) as Position
      if (Number.isInteger(c.segment) && Number.isInteger(c.offset)) this.cursor = c
    } catch { /* no cursor yet: start at the oldest segment */ }
    if (this.segments.length === 0) {
      this.segments.push({ n: Math.max(1, this.cursor.segment), bytes: 0 })
    }
    // Drop segments that lie wholly before the cursor (a crash between cursor save and unlink).
    while (this.segments.length > 1 && this.segments[0]!.n < this.cursor.segment) {
      await unlink(join(dir, segName(this.segments[0]!.n)))
      this.segments.shift()
    }
    const first = this.segments[0]!
    if (this.cursor.segment < first.n) this.cursor = { segment: first.n, offset: 0 }
    const last = this.segments[this.segments.length - 1]!
    last.bytes = last.bytes === 0 ? 0 : await this.validLength(last)
    // A crash during rotate() can tear the segment before the newest one (it was still being
    // flushed when the new one was created): trim its torn tail too. Older segments were
    // complete and fsync'd before their successor took writes.
    const prev = this.segments.length > 1 ? this.segments[this.segments.length - 2]! : null
    if (prev !== null && prev.n >= this.cursor.segment) {
      const valid = await this.validLength(prev)
      if (valid < prev.bytes) {
        const pfh = await open(join(dir, segName(prev.n)), fsc.O_RDWR)
        try {
          await pfh.truncate(valid)
          await pfh.datasync()
        } finally {
          await pfh.close()
        }
        prev.bytes = valid
      }
    }
    if (this.cursor.segment === last.n && this.cursor.offset > last.bytes) this.cursor.offset = last.bytes
    this.readPos = { ...this.cursor }
    const fh = await open(join(dir, segName(last.n)), fsc.O_RDWR | fsc.O_CREAT)
    await fh.truncate(last.bytes)
    await fh.datasync()
    this.writerSeg = last
    this.writer = new GroupCommitFile(fh, last.bytes, size => { this.onDurable(size) })
    this.totalBytes = this.segments.reduce((a, s) => a + s.bytes, 0)
    await syncDir(dir)
  }

  /** Scans a segment and returns the length of its intact prefix. */
  private async validLength (seg: Segment): Promise<number> {
    const fh = await open(join(this.options.dir, segName(seg.n)), 'r')
    try {
      let off = 0
      const head = Buffer.alloc(HEADER)
      for (;;) {
        const { bytesRead } = await fh.read(head, 0, HEADER, off)
        if (bytesRead < HEADER) return off
        const len = head.readUInt32LE(0)
        if (off + HEADER + len > seg.bytes) return off
        const body = Buffer.alloc(HEADER - 8 + len)
        await fh.read(body, 0, body.length, off + 8)
        if (crc32(body) !== head.readUInt32LE(4)) return off
        off += HEADER + len
      }
    } finally {
      await fh.close()
    }
  }

  /** fdatasync calls since open (group commit: one covers many appends). */
  get fsyncs (): number { return this.closedSyncs + this.writer.syncs }

  /** Bytes on disk across all segments. */
  get bytes (): number { return this.totalBytes }

  /**
   * Appends one record and resolves once it is durable. Rejects with AMB_ERR_SPOOL_FULL when the
   * spool is at its bound (the caller must not acknowledge the frame).
   */
  async append (payload: string | Buffer, points: number): Promise<void> {
    const body = typeof payload === 'string' ? Buffer.from(payload) : payload
    const rec = Buffer.allocUnsafe(HEADER + body.length)
    body.copy(rec, HEADER)
    return await this.appendRecord(rec, points)
  }

  /**
   * append() for a payload already written after SPOOL_RECORD_HEADER reserved bytes at the start
   * of `rec` (ingest writes line protocol straight there): the spool fills in the header, so the
   * frame's ~18 KB of lines are not copied again. `rec` belongs to the spool from here on.
   */
  async appendRecord (rec: Buffer, points: number): Promise<void> {
    if (this.closed) throw new StreamError('AMB_ERR_SPOOL_CLOSED', 'spool is closed', { retryAfterMs: 1000 })
    rec.writeUInt32LE(rec.length - HEADER, 0)
    rec.writeDoubleLE(this.now(), 8)
    rec.writeUInt32LE(points, 16)
    rec.writeUInt32LE(crc32(rec.subarray(8)), 4)
    if (this.totalBytes + rec.length > this.options.maxSpoolBytes) {
      this.refusing = true
      throw new StreamError('AMB_ERR_SPOOL_FULL', `spool holds ${this.totalBytes} bytes, bound maxSpoolBytes=${this.options.maxSpoolBytes}`, { retryAfterMs: 5000 })
    }
    if (this.rotating !== null) await this.rotating
    this.totalBytes += rec.length
    this.appends++
    this.checkPressure()
    const seg = this.writerSeg
    seg.bytes += rec.length
    const done = this.writer.append(rec)
    crashPoint('spool-append-inflight')
    if (seg.bytes >= this.options.segmentBytes && this.rotating === null) {
      this.rotating = this.rotate().finally(() => { this.rotating = null })
    }
    try {
      await done
    } catch (err) {
      throw new StreamError('AMB_ERR_SPOOL_IO', `spool write failed: ${(err as Error).message}`, { cause: err })
    }
    crashPoint('spool-durable')
  }

  private async rotate (): Promise<void> {
    const old = this.writer
    this.closedSyncs += old.syncs
    const next: Segment = { n: this.writerSeg.n + 1, bytes: 0 }
    const fh = await open(join(this.options.dir, segName(next.n)), fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL)
    await syncDir(this.options.dir)
    crashPoint('spool-rotate')
    await old.close()
    this.segments.push(next)
    this.writerSeg = next
    this.writer = new GroupCommitFile(fh, 0, size => { this.onDurable(size) })
    this.wake()
  }

  private onDurable (_size: number): void { this.wake() }

  private wake (): void {
    const ws = this.dataWaiters
    this.dataWaiters = []
    for (const w of ws) w()
  }

  /** Durable end of segment `n`. */
  private durableEnd (n: number): number {
    if (n === this.writerSeg.n) return this.writer.durableSize
    return this.segments.find(s => s.n === n)?.bytes ?? 0
  }

  /** True when the reader has handed out everything durable. */
  private caughtUp (): boolean {
    return this.readPos.segment === this.writerSeg.n && this.readPos.offset >= this.writer.durableSize
  }

  /** Resolves when there is durable data beyond the read position (or the spool closes). */
  waitForData (): Promise<void> {
    if (!this.caughtUp() || this.closed) return Promise.resolve()
    return new Promise(resolve => { this.dataWaiters.push(resolve) })
  }

  /**
   * Reads the next records from the read position, up to `maxBytes` of payload (at least one
   * record). Returns null when caught up. Advances the read position (not the cursor).
   */
  async read (maxBytes: number, maxPoints = Infinity): Promise<SpoolBatch | null> {
    const parts: Buffer[] = []
    let bytes = 0
    let records = 0
    let points = 0
    let first = 0
    while (bytes < maxBytes && points < maxPoints) {
      if (this.caughtUp()) break
      const pos = this.readPos
      const end = this.durableEnd(pos.segment)
      if (pos.offset >= end) {
        if (pos.segment === this.writerSeg.n) break
        const next = this.segments.find(s => s.n > pos.segment)
        if (next === undefined) break
        this.readPos = { segment: next.n, offset: 0 }
        continue
      }
      const fh = await this.readHandle(pos.segment)
      const want = Math.min(end - pos.offset, Math.max(maxBytes - bytes + HEADER * 64, HEADER))
      const chunk = Buffer.allocUnsafe(want)
      const { bytesRead } = await fh.read(chunk, 0, want, pos.offset)
      let off = 0
      while (off + HEADER <= bytesRead) {
        const len = chunk.readUInt32LE(off)
        if (off + HEADER + len > bytesRead) {
          // A record running past the segment's end is a torn tail: leave it to the check below.
          if (off === 0 && pos.offset + HEADER + len <= end) {
            // One record larger than the chunk: read it alone, and check it like any other.
            const big = Buffer.allocUnsafe(HEADER + len)
            const got = await fh.read(big, 0, big.length, pos.offset)
            if (got.bytesRead !== big.length || crc32(big.subarray(8)) !== big.readUInt32LE(4)) {
              throw new StreamError('AMB_ERR_SPOOL_CORRUPT', `spool record at ${segName(pos.segment)}:${pos.offset} fails its checksum`)
            }
            this.takeRecord(big, 0, parts)
            if (records === 0) first = big.readDoubleLE(8)
            points += big.readUInt32LE(16)
            records++
            bytes += len
            off = big.length
          }
          break
        }
        if (crc32(chunk.subarray(off + 8, off + HEADER + len)) !== chunk.readUInt32LE(off + 4)) {
          throw new StreamError('AMB_ERR_SPOOL_CORRUPT', `spool record at ${segName(pos.segment)}:${pos.offset + off} fails its checksum`)
        }
        if (records === 0) first = chunk.readDoubleLE(off + 8)
        points += chunk.readUInt32LE(off + 16)
        this.takeRecord(chunk, off, parts)
        records++
        bytes += len
        off += HEADER + len
        if (bytes >= maxBytes || points >= maxPoints) break
      }
      if (off === 0) {
        if (pos.segment === this.writerSeg.n) break
        // Nothing whole is left in a finished segment: the tail a crash tore while a rotation
        // was flushing it (recover() trims the newest two; this covers any other). Such a record
        // was never fsync'd, so never acknowledged: skip to the next segment instead of
        // re-reading the remnant for ever.
        this.tornTailsSkipped++
        const next = this.segments.find(x => x.n > pos.segment)
        if (next === undefined) break
        this.readPos = { segment: next.n, offset: 0 }
        continue
      }
      this.readPos = { segment: pos.segment, offset: pos.offset + off }
    }
    if (records === 0) return null
    return { data: parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes), records, points, firstReceivedAtMs: first, end: { ...this.readPos } }
  }

  private takeRecord (buf: Buffer, off: number, parts: Buffer[]): void {
    const len = buf.readUInt32LE(off)
    parts.push(buf.subarray(off + HEADER, off + HEADER + len))
  }

  private async readHandle (n: number): Promise<FileHandle> {
    if (this.readFh !== null && this.readFh.n === n) return this.readFh.fh
    if (this.readFh !== null) await this.readFh.fh.close()
    this.readFh = null
    const fh = await open(join(this.options.dir, segName(n)), 'r')
    this.readFh = { n, fh }
    return fh
  }

  /** Wakes anyone blocked in waitForData (used on close). */
  wakeReaders (): void { this.wake() }

  /** Rewinds the reader to the cursor (after a failed write, to send the same records again). */
  rewind (): void {
    this.readPos = { ...this.cursor }
  }

  /**
   * Records everything before `pos` as stored in InfluxDB: persists the cursor, then deletes
   * segments that lie wholly before it.
   */
  async commit (pos: Position): Promise<void> {
    this.cursor = { ...pos }
    // Caught up with a well-filled writer segment: start a new one so this one can be trimmed.
    if (pos.segment === this.writerSeg.n && pos.offset === this.writer.size && pos.offset >= this.options.segmentBytes / 4 && this.rotating === null) {
      this.rotating = this.rotate().finally(() => { this.rotating = null })
      await this.rotating
    }
    // A cursor at the end of a finished segment belongs at the start of the next one.
    for (;;) {
      const c = this.cursor
      if (c.segment === this.writerSeg.n) break
      const seg = this.segments.find(x => x.n === c.segment)
      const next = this.segments.find(x => x.n > c.segment)
      if (seg === undefined || next === undefined || c.offset < seg.bytes) break
      this.cursor = { segment: next.n, offset: 0 }
    }
    if (this.readPos.segment < this.cursor.segment) this.readPos = { ...this.cursor }
    const tmp = join(this.options.dir, 'cursor.json.tmp')
    await writeFile(tmp, JSON.stringify(this.cursor))
    await rename(tmp, join(this.options.dir, 'cursor.json'))
    crashPoint('spool-commit')
    while (this.segments.length > 1 && this.segments[0]!.n < this.cursor.segment) {
      const seg = this.segments.shift()!
      if (this.readFh?.n === seg.n) {
        await this.readFh.fh.close()
        this.readFh = null
      }
      await unlink(join(this.options.dir, segName(seg.n)))
      this.totalBytes -= seg.bytes
      this.refusing = false
    }
    this.checkPressure()
  }

  private checkPressure (): void {
    const high = this.totalBytes >= this.options.maxSpoolBytes * this.options.warnRatio
    if (high !== this.high) {
      this.high = high
      this.options.onPressure?.(high, this.totalBytes)
    }
  }

  /** Seconds between now and the oldest record not yet acknowledged by InfluxDB (0 if none). */
  async lagSeconds (): Promise<number> {
    const pos = this.cursor
    if (pos.segment === this.writerSeg.n && pos.offset >= this.writer.durableSize) return 0
    let { segment, offset } = pos
    if (offset >= this.durableEnd(segment)) {
      const next = this.segments.find(s => s.n > segment)
      if (next === undefined) return 0
      segment = next.n
      offset = 0
    }
    const fh = await open(join(this.options.dir, segName(segment)), 'r')
    try {
      const head = Buffer.alloc(HEADER)
      const { bytesRead } = await fh.read(head, 0, HEADER, offset)
      if (bytesRead < HEADER) return 0
      return Math.max(0, (this.now() - head.readDoubleLE(8)) / 1000)
    } finally {
      await fh.close()
    }
  }

  /** Bytes written but not yet acknowledged by InfluxDB. */
  get pendingBytes (): number {
    let n = 0
    for (const s of this.segments) {
      if (s.n < this.cursor.segment) continue
      n += s.n === this.cursor.segment ? s.bytes - this.cursor.offset : s.bytes
    }
    return n
  }

  /** Waits for in-flight appends, then closes files. Safe to call twice. */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.rotating !== null) await this.rotating
    await this.writer.close()
    if (this.readFh !== null) await this.readFh.fh.close()
    this.readFh = null
    this.wake()
  }
}

async function syncDir (dir: string): Promise<void> {
  // fsync the folder so a new segment's directory entry survives a power cut.
  const fh = await open(dir, 'r')
  try { await fh.sync() } finally { await fh.close() }
}
