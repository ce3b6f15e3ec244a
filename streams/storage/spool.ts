/**
 * The durable spool: every accepted frame is appended here and fsync'd (group commit) before
 * the device is acknowledged. The InfluxDB sink reads it in order and the spool is trimmed only
 * after InfluxDB acknowledged the points. Without InfluxDB (the embedded default) the spool is
 * the store of record and drains once a database is configured.
 *
 * On disk: `seg-<n>.log` segments of records
 *   [u32 payload length][u32 crc32 of the rest][f64 received-at ms][u32 kind << 28 | points][payload]
 * and `cursor.json`, the position up to which InfluxDB has acknowledged. The record's kind (its
 * format version) is in the top 4 bits of the points field, under the checksum:
 * - 0, lines: the payload is line protocol. Every record before the compact spool was one (its
 *   points never reach 2^28), and alert events still are: such spools drain unchanged.
 * - 1, frame: the payload is a validated frame as received plus what is needed to write its
 *   line protocol (frame-record.ts), about 1/8 of its line protocol; read() turns it into line
 *   protocol through `expandFrame`.
 * Kinds are read by read() only; recovery, torn-tail and checksum logic do not depend on them. A crash can leave a torn
 * record at the end of the newest segment; open() truncates it (its device got no PUBACK and will
 * resend). A crash after a write but before the cursor moved replays some records into InfluxDB,
 * which is harmless because writes are idempotent.
 */
import { constants as fsc } from 'node:fs'
import { mkdir, open as fsOpen, readdir, readFile, stat, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { StreamError, type StreamErrorCode } from './errors.js'
import { crashPoint } from './crash-point.js'
import { syncDir, writeFileAtomic } from './durable.js'
import { GroupCommitFile } from './group-commit.js'
import { spoolSyncHook } from './sync-hook.js'

import {
  KIND_SHIFT, POINTS_MASK, SPOOL_RECORD_FRAME, SPOOL_RECORD_HEADER, SPOOL_RECORD_LINES, scanRecordHeaders,
  spoolRecords, spoolSegmentName, type SpoolRecordKind
} from './spool-records.js'

export { SPOOL_RECORD_FRAME, SPOOL_RECORD_HEADER, SPOOL_RECORD_LINES, type SpoolRecordKind } from './spool-records.js'

const HEADER = SPOOL_RECORD_HEADER
/** Most bytes readRaw() reads ahead of what it hands out (it adapts to the batches it cuts). */
const READ_CHUNK_BYTES = 512 * 1024
/** Least bytes readRaw() reads at a time. */
const MIN_READ_BYTES = 16 * 1024

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
  /** Called for every append refused (the frame is not acknowledged), with the reason code. */
  onRefused?: (code: StreamErrorCode) => void
  /**
   * Called when the disk refuses a write or fsync (with the coded error) and again with null
   * once the spool has recovered and takes appends again.
   */
  onFault?: (err: StreamError | null) => void
  /** Called when a segment rotation fails (the current segment keeps taking appends). */
  onRotateFailed?: (err: Error) => void
  /** While faulted, how often the spool probes the disk to resume by itself, in ms. */
  recoverIntervalMs: number
  /** Bytes the recovery probe must be able to write and fsync before appends resume. */
  probeBytes: number
  /**
   * Turns a frame record's payload into its line protocol (frame-record.ts). It may instead
   * keep the record elsewhere (dead letters) and return an empty buffer; it throws to stop the
   * reader with the record still spooled. Without it, a frame record stops the reader
   * (AMB_ERR_SPOOL_UNDECODABLE).
   */
  expandFrame?: (payload: Buffer) => Buffer | Promise<Buffer>
  /**
   * Opens the spool's segment files. Tests pass a wrapper around the real `open` to inject an
   * EIO, which no real file system produces on demand.
   */
  openFile?: typeof fsOpen
}

export const SPOOL_DEFAULTS = Object.freeze({
  segmentBytes: 64 * 1024 * 1024,
  maxSpoolBytes: 4 * 1024 * 1024 * 1024,
  warnRatio: 0.8,
  recoverIntervalMs: 1000,
  probeBytes: 256 * 1024
})

export interface Position { segment: number, offset: number }

export interface SpoolBatch {
  /** The records' line protocol, concatenated (frame records expanded). */
  data: Buffer
  records: number
  points: number
  /** Received-at time of the first record, Unix ms. */
  firstReceivedAtMs: number
  /** Position just after the last record: pass to commit() once stored. */
  end: Position
}

const segName = spoolSegmentName

/**
 * Whole spool records as they are on disk (Spool.readRaw()), for the sink's worker thread to
 * check, parse and expand (spool-records.ts). Never spans two segments.
 */
export interface RawSpoolBatch {
  /**
   * The records, headers included. Its memory is the batch's alone (the spool keeps no reference
   * to its ArrayBuffer), so it can be transferred to a worker.
   */
  bytes: Buffer
  records: number
  /** Points the records were spooled with (a frame refused when draining writes none). */
  points: number
  /** Received-at time of the first record, Unix ms. */
  firstReceivedAtMs: number
  /** Position of the first record: with `end`, Spool.readRange() reads the same bytes again. */
  start: Position
  /** Position just after the last record: pass to commit() once stored. */
  end: Position
}

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
  /**
   * Bytes read from disk past the read position but not handed out yet: the next read starts
   * from them instead of reading them again.
   */
  private ahead: { segment: number, offset: number, buf: Buffer } | null = null
  /** How much readRaw() reads at once: about a batch (it adapts to the batches it cuts). */
  private readSize = 64 * 1024
  private dataWaiters: Array<() => void> = []
  private totalBytes = 0
  private high = false
  private closed = false
  private rotating: Promise<void> | null = null
  private closedSyncs = 0
  private closing: Promise<void> | null = null
  /** Set while the disk refuses writes: every append is refused until recovery clears it. */
  private fault: StreamError | null = null
  private recoverTimer: NodeJS.Timeout | null = null
  private recovering: Promise<void> | null = null
  /** Rotations that failed (the segment kept growing; retried at the next append). */
  rotationsFailed = 0
  /** Cursor saves that failed (kept in memory, saved at the next commit). */
  cursorSavesFailed = 0
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
  private readonly openFile: typeof fsOpen
  readonly options: Readonly<SpoolOptions>

  private constructor (options: SpoolOptions) {
    this.options = options
    this.now = options.now ?? Date.now
    this.openFile = options.openFile ?? fsOpen
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
        const pfh = await this.openFile(join(dir, segName(prev.n)), fsc.O_RDWR)
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
    const fh = await this.openFile(join(dir, segName(last.n)), fsc.O_RDWR | fsc.O_CREAT)
    await fh.truncate(last.bytes)
    await fh.datasync()
    this.writerSeg = last
    this.writer = new GroupCommitFile(fh, last.bytes, size => { this.onDurable(size) }, spoolSyncHook)
    this.totalBytes = this.segments.reduce((a, s) => a + s.bytes, 0)
    await syncDir(dir)
  }

  /** Scans a segment and returns the length of its intact prefix. */
  private async validLength (seg: Segment): Promise<number> {
    const fh = await this.openFile(join(this.options.dir, segName(seg.n)), 'r')
    try {
      const intactAt = async (off: number): Promise<number | null> => {
        const head = Buffer.alloc(HEADER)
        const { bytesRead } = await fh.read(head, 0, HEADER, off)
        if (bytesRead < HEADER) return null
        const len = head.readUInt32LE(0)
        if (off + HEADER + len > seg.bytes) return null
        const body = Buffer.alloc(HEADER - 8 + len)
        await fh.read(body, 0, body.length, off + 8)
        return crc32(body) === head.readUInt32LE(4) ? len : -1 - len
      }
      let off = 0
      for (;;) {
        const len = await intactAt(off)
        if (len === null) return off
        if (len >= 0) { off += HEADER + len; continue }
        // A bad checksum followed by an intact record is damage inside the file, not a tail torn
        // by a crash: keep it (read() reports AMB_ERR_SPOOL_CORRUPT) rather than truncate the
        // acknowledged records after it.
        const next = off + HEADER + (-1 - len)
        if (next < seg.bytes && (await intactAt(next) ?? -1) >= 0) { off = next; continue }
        return off
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
   * of `rec`: the spool fills in the header, so the payload is not copied again. `rec` belongs to
   * the spool from here on. `kind` says what the payload is (line protocol, or a frame record
   * that read() expands). With `tail`, the payload goes on with those bytes, written after `rec`
   * as they are (ingest spools a frame record so, its frame's bytes not copied: a 2.3 KB copy and
   * allocation per frame, issue 12); they must not change until the append settles.
   */
  async appendRecord (rec: Buffer, points: number, kind: SpoolRecordKind = SPOOL_RECORD_LINES, tail?: Uint8Array): Promise<void> {
    if (this.closed) throw this.refuse(new StreamError('AMB_ERR_SPOOL_CLOSED', 'spool is closed', { retryAfterMs: 1000 }))
    if (this.fault !== null) throw this.refuse(this.fault)
    if (!(Number.isSafeInteger(points) && points >= 0 && points <= POINTS_MASK)) throw new RangeError(`points ${points} outside 0..${POINTS_MASK}`)
    const size = tail === undefined ? rec.length : rec.length + tail.length
    rec.writeUInt32LE(size - HEADER, 0)
    rec.writeDoubleLE(this.now(), 8)
    rec.writeUInt32LE(((kind << KIND_SHIFT) | points) >>> 0, 16)
    const crc = crc32(rec.subarray(8))
    rec.writeUInt32LE(tail === undefined ? crc : crc32(tail, crc), 4)
    if (this.totalBytes + size > this.options.maxSpoolBytes) {
      this.refusing = true
      throw this.refuse(new StreamError('AMB_ERR_SPOOL_FULL', `spool holds ${this.totalBytes} bytes, bound maxSpoolBytes=${this.options.maxSpoolBytes}`, { retryAfterMs: 5000 }))
    }
    // rotate() never rejects (a failed rotation keeps the current segment).
    if (this.rotating !== null) await this.rotating
    if (this.fault !== null) throw this.refuse(this.fault)
    const seg = this.writerSeg
    const writer = this.writer
    seg.bytes += size
    this.totalBytes += size
    const done = writer.append(rec, tail)
    crashPoint('spool-append-inflight')
    if (seg.bytes >= this.options.segmentBytes && this.rotating === null) this.startRotation()
    try {
      await done
    } catch (err) {
      throw this.refuse(this.writeFailed(writer, seg, err as Error))
    }
    this.appends++
    this.checkPressure()
    crashPoint('spool-durable')
  }

  private refuse (err: StreamError): StreamError {
    this.options.onRefused?.(err.code)
    return err
  }

  /**
   * A write or fsync failed: what the segment holds past its last successful fsync is unknown,
   * so nothing written since is acknowledged, its bytes are not counted, and the spool refuses
   * everything until recover() has set the segment back to its durable length and started a
   * fresh one on a disk that takes writes again (probed in the background).
   */
  private writeFailed (writer: GroupCommitFile, seg: Segment, cause: Error): StreamError {
    seg.bytes = writer.durableSize
    this.totalBytes = this.segments.reduce((a, s) => a + s.bytes, 0)
    if (this.fault === null && !this.closed) {
      const code = (cause as NodeJS.ErrnoException).code
      const full = code === 'ENOSPC' || code === 'EDQUOT'
      this.fault = full
        ? new StreamError('AMB_ERR_DISK_FULL', `the disk under the spool is full: ${cause.message}`, { cause, retryAfterMs: this.options.recoverIntervalMs * 2 })
        : new StreamError('AMB_ERR_SPOOL_IO', `spool write failed: ${cause.message}`, { cause, retryAfterMs: this.options.recoverIntervalMs * 2 })
      this.options.onFault?.(this.fault)
      this.scheduleRecovery()
    }
    return this.fault ?? new StreamError('AMB_ERR_SPOOL_IO', `spool write failed: ${cause.message}`, { cause })
  }

  /** True while appends are refused (disk fault, or the bound reached): readiness says so. */
  get faulted (): StreamError | null { return this.fault }

  private scheduleRecovery (): void {
    if (this.recoverTimer !== null || this.closed) return
    this.recoverTimer = setTimeout(() => {
      this.recoverTimer = null
      this.recovering = this.recover_().finally(() => { this.recovering = null })
    }, this.options.recoverIntervalMs)
    this.recoverTimer.unref()
  }

  /** One recovery attempt; schedules the next one when the disk still refuses. */
  private async recover_ (): Promise<void> {
    if (this.fault === null || this.closed) return
    if (this.rotating !== null) await this.rotating
    const dir = this.options.dir
    let fh: FileHandle | null = null
    try {
      // Is there room again? Write and fsync a probe the size of a burst of frames.
      const probe = join(dir, 'probe.tmp')
      const pfh = await this.openFile(probe, 'w')
      try {
        await pfh.writeFile(Buffer.alloc(this.options.probeBytes))
        await pfh.sync()
      } finally {
        await pfh.close()
        await unlink(probe).catch(() => {})
      }
      // Cut the failed segment back to what was durable, and continue in a fresh one.
      const old = this.writer
      const seg = this.writerSeg
      this.closedSyncs += old.syncs
      await old.close().catch(() => {})
      const tfh = await this.openFile(join(dir, segName(seg.n)), fsc.O_RDWR)
      try {
        await tfh.truncate(seg.bytes)
        await tfh.datasync()
      } finally {
        await tfh.close()
      }
      const next: Segment = { n: seg.n + 1, bytes: 0 }
      fh = await this.openFile(join(dir, segName(next.n)), fsc.O_RDWR | fsc.O_CREAT | fsc.O_TRUNC)
      await syncDir(dir)
      if (this.closed) { await fh.close(); return }
      this.segments.push(next)
      this.writerSeg = next
      this.writer = new GroupCommitFile(fh, 0, size => { this.onDurable(size) }, spoolSyncHook)
      fh = null
      this.totalBytes = this.segments.reduce((a, s) => a + s.bytes, 0)
      this.fault = null
      this.options.onFault?.(null)
      this.wake()
    } catch {
      await fh?.close().catch(() => {})
      this.scheduleRecovery()
    }
  }

  private startRotation (): void {
    this.rotating = this.rotate().catch((err: Error) => {
      // The current segment keeps taking appends; the next append past the size tries again.
      this.rotationsFailed++
      this.options.onRotateFailed?.(err)
    }).finally(() => { this.rotating = null })
  }

  private async rotate (): Promise<void> {
    const old = this.writer
    const next: Segment = { n: this.writerSeg.n + 1, bytes: 0 }
    const path = join(this.options.dir, segName(next.n))
    // O_TRUNC, not O_EXCL: a file left by an earlier failed rotation is empty and ours to reuse.
    const fh = await this.openFile(path, fsc.O_RDWR | fsc.O_CREAT | fsc.O_TRUNC)
    try {
      await syncDir(this.options.dir)
      crashPoint('spool-rotate')
    } catch (err) {
      await fh.close().catch(() => {})
      await unlink(path).catch(() => {})
      throw err
    }
    // Appends queued on the old writer land in the old segment; once it is flushed the new one
    // takes over (a failure of that flush faults the spool through the appends that wait on it).
    await old.flush()
    if (old.failure !== null) {
      // The old segment failed meanwhile: recovery owns the switch to a fresh segment.
      this.writeFailed(old, this.writerSeg, old.failure)
      await fh.close().catch(() => {})
      await unlink(path).catch(() => {})
      return
    }
    this.closedSyncs += old.syncs
    await old.close().catch(() => {})
    this.segments.push(next)
    this.writerSeg = next
    this.writer = new GroupCommitFile(fh, 0, size => { this.onDurable(size) }, spoolSyncHook)
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
   * record), frame records expanded to line protocol. Returns null when caught up. Advances the
   * read position (not the cursor); a record that fails its checksum or cannot be expanded
   * throws with the read position left before the records of this call.
   */
  async read (maxBytes: number, maxPoints = Infinity): Promise<SpoolBatch | null> {
    const parts: Buffer[] = []
    let bytes = 0
    let records = 0
    let points = 0
    let first = 0
    const from = { ...this.readPos }
    try {
      while (bytes < maxBytes && points < maxPoints) {
        const raw = await this.readRaw(maxBytes - bytes, maxPoints - points)
        if (raw === null) break
        if (records === 0) first = raw.firstReceivedAtMs
        records += raw.records
        for (const r of spoolRecords(raw.bytes, raw.start.segment, raw.start.offset)) {
          const lines = await this.expand(r.kind, r.payload, raw.start.segment, raw.start.offset + r.at)
          if (lines.length === 0) continue
          parts.push(lines)
          points += r.points
          bytes += lines.length
        }
      }
    } catch (err) {
      this.readPos = from
      throw err
    }
    if (records === 0) return null
    return { data: parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes), records, points, firstReceivedAtMs: first, end: { ...this.readPos } }
  }

  /** A record's line protocol: its payload, or a frame record expanded. */
  private async expand (kind: number, payload: Buffer, segment: number, at: number): Promise<Buffer> {
    if (kind === SPOOL_RECORD_LINES) return payload
    if (kind !== SPOOL_RECORD_FRAME || this.options.expandFrame === undefined) {
      throw new StreamError('AMB_ERR_SPOOL_UNDECODABLE', `spool record at ${segName(segment)}:${at} is of kind ${kind}, which this ${kind === SPOOL_RECORD_FRAME ? 'reader has no frame expander for' : 'version does not know'}`)
    }
    return await this.options.expandFrame(payload)
  }

  /**
   * Reads the next whole records from the read position as they are on disk (not checked against
   * their checksums: the caller does that, see spool-records.ts), up to `maxBytes` of payload and
   * `maxPoints` (at least one record), within one segment. Returns null when caught up. Advances
   * the read position (not the cursor). Each byte is read from disk once: what was read past the
   * batch is kept for the next call.
   */
  async readRaw (maxBytes: number, maxPoints = Infinity): Promise<RawSpoolBatch | null> {
    for (;;) {
      if (this.caughtUp()) return null
      const pos = this.readPos
      const end = this.durableEnd(pos.segment)
      if (pos.offset >= end) {
        if (pos.segment === this.writerSeg.n) return null
        const next = this.segments.find(s => s.n > pos.segment)
        if (next === undefined) return null
        this.readPos = { segment: next.n, offset: 0 }
        continue
      }
      const avail = end - pos.offset
      let buf = this.aheadAt(pos, avail)
      let scan = scanRecordHeaders(buf, maxBytes, maxPoints)
      while (scan.need > 0 && buf.length < avail) {
        // More on disk than read: read on (at least the next record whole), keeping what is read.
        buf = await this.readMore(pos, buf, Math.min(avail, Math.max(scan.need, buf.length * 2, this.readSize)))
        scan = scanRecordHeaders(buf, maxBytes, maxPoints)
      }
      if (scan.records === 0) {
        this.ahead = null
        if (pos.segment === this.writerSeg.n) return null
        // Nothing whole is left in a finished segment: the tail a crash tore while a rotation
        // was flushing it (recover() trims the newest two; this covers any other). Such a record
        // was never fsync'd, so never acknowledged: skip to the next segment instead of
        // re-reading the remnant for ever.
        this.tornTailsSkipped++
        const next = this.segments.find(x => x.n > pos.segment)
        if (next === undefined) return null
        this.readPos = { segment: next.n, offset: 0 }
        continue
      }
      const used = scan.used
      // The batch's memory goes to the sink's worker: keep a copy of the rest, not a view.
      if (buf.length > used) {
        const rest = Buffer.allocUnsafeSlow(buf.length - used)
        buf.copy(rest, 0, used)
        this.ahead = { segment: pos.segment, offset: pos.offset + used, buf: rest }
      } else {
        this.ahead = null
      }
      this.readSize = Math.min(READ_CHUNK_BYTES, Math.max(MIN_READ_BYTES, Math.ceil(used * 1.25) + 4096))
      this.readPos = { segment: pos.segment, offset: pos.offset + used }
      const bytes = buf.subarray(0, used)
      return { bytes, records: scan.records, points: scan.points, firstReceivedAtMs: bytes.readDoubleLE(8), start: { ...pos }, end: { ...this.readPos } }
    }
  }

  /** The bytes already read from `pos` on (at most `avail`), or an empty buffer. */
  private aheadAt (pos: Position, avail: number): Buffer {
    const a = this.ahead
    if (a === null || a.segment !== pos.segment || pos.offset < a.offset || pos.offset >= a.offset + a.buf.length) return Buffer.alloc(0)
    const from = pos.offset - a.offset
    return a.buf.subarray(from, from + Math.min(avail, a.buf.length - from))
  }

  /** `have` (the bytes from `pos` on) followed by the next bytes of the segment, `want` in all. */
  private async readMore (pos: Position, have: Buffer, want: number): Promise<Buffer> {
    const fh = await this.readHandle(pos.segment)
    const buf = Buffer.allocUnsafeSlow(want)
    have.copy(buf, 0)
    const { bytesRead } = await fh.read(buf, have.length, want - have.length, pos.offset + have.length)
    return buf.subarray(0, have.length + bytesRead)
  }

  /**
   * The bytes of records already handed out by readRaw() (`start` and `end` of its batch), read
   * again: for a batch whose worker crashed with it.
   */
  async readRange (start: Position, end: Position): Promise<Buffer> {
    if (start.segment !== end.segment || end.offset < start.offset) throw new RangeError('a spool range lies within one segment')
    if (start.segment < this.cursor.segment || (start.segment === this.cursor.segment && start.offset < this.cursor.offset)) {
      throw new RangeError(`spool range at ${segName(start.segment)}:${start.offset} is before the cursor (already committed)`)
    }
    const fh = await this.openFile(join(this.options.dir, segName(start.segment)), 'r')
    try {
      const buf = Buffer.allocUnsafeSlow(end.offset - start.offset)
      const { bytesRead } = await fh.read(buf, 0, buf.length, start.offset)
      if (bytesRead !== buf.length) throw new StreamError('AMB_ERR_SPOOL_CORRUPT', `spool range at ${segName(start.segment)}:${start.offset} is shorter on disk than when it was read`)
      return buf
    } finally {
      await fh.close()
    }
  }

  private async readHandle (n: number): Promise<FileHandle> {
    if (this.readFh !== null && this.readFh.n === n) return this.readFh.fh
    if (this.readFh !== null) await this.readFh.fh.close()
    this.readFh = null
    const fh = await this.openFile(join(this.options.dir, segName(n)), 'r')
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
    if (pos.segment === this.writerSeg.n && pos.offset === this.writer.size && pos.offset >= this.options.segmentBytes / 4 && this.rotating === null && this.fault === null) {
      this.startRotation()
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
    try {
      await writeFileAtomic(join(this.options.dir, 'cursor.json'), JSON.stringify(this.cursor))
    } catch {
      // A full disk must not stop the trim that frees it. Deleting segments wholly before the
      // in-memory cursor is safe with a stale cursor.json: open() starts at the oldest segment
      // left, so a restart replays a little into InfluxDB (idempotent) and loses nothing.
      this.cursorSavesFailed++
    }
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
    const fh = await this.openFile(join(this.options.dir, segName(segment)), 'r')
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

  /**
   * Waits for in-flight appends, then closes files. Safe to call twice: a second call while the
   * first runs waits for the first.
   */
  close (): Promise<void> {
    this.closing ??= this.closeOnce()
    return this.closing
  }

  private async closeOnce (): Promise<void> {
    this.closed = true
    if (this.recoverTimer !== null) clearTimeout(this.recoverTimer)
    this.recoverTimer = null
    if (this.recovering !== null) await this.recovering
    if (this.rotating !== null) await this.rotating
    await this.writer.close()
    if (this.readFh !== null) await this.readFh.fh.close()
    this.readFh = null
    this.wake()
  }
}
