/**
 * What the sink's worker thread does (sink-worker.ts): turn a batch of spool records into an
 * InfluxDB write. The records are checked against their checksums, frame records are decoded
 * again and written as line protocol (frame-record.ts), the batch is gzipped (unless a same-run
 * comparison turned it off) and posted, and a
 * write InfluxDB refuses as bad input is split until the refused lines are isolated. The main
 * thread keeps the spool, the cursor, the dead letters and the retry policy (influx-sink.ts): a
 * job reports what it stored, the frames and lines to dead-letter, or why it failed.
 *
 * A job's line protocol is kept until it is stored, so a retry does not decode or expand again.
 */
import { promisify } from 'node:util'
import { isMainThread } from 'node:worker_threads'
import { gzip as gzipCb, gzipSync, constants as zc } from 'node:zlib'
import { drainFailed, FrameRecordExpander, parseFrameRecord } from './frame-record.js'
import { LineBuffer } from './line-buffer.js'
import { SPOOL_RECORD_FRAME, SPOOL_RECORD_LINES, spoolRecords, spoolSegmentName } from './spool-records.js'
import { StreamError } from './errors.js'
import { crashPoint } from './crash-point.js'
import { InfluxWriteClient, influxErrorMessage, influxRetryAfterMs, isBadInput, type InfluxWriteTarget } from './influx-write.js'

export type { InfluxWriteTarget } from './influx-write.js'

const gzip = promisify(gzipCb)

/** Where and how the jobs write: the InfluxDB target and the most line-protocol bytes per request. */
export type SinkJobTarget = InfluxWriteTarget & { maxBatchBytes?: number }

/** A batch to write; `bytes` (whole spool records) only when the worker does not hold it yet. */
export interface WriteJob {
  id: number
  /** Where the records start in the spool (for messages and dead letters). */
  segment: number
  offset: number
  bytes?: Uint8Array
}

/** A frame record the decoder refused when draining: main puts it in the dead letters. */
export interface RefusedFrame {
  segment: number
  offset: number
  code: string
  reason: string
  unit?: string
  /** The frame's bytes (or the record's payload when it could not be parsed). */
  payload: Uint8Array
}

/** Lines InfluxDB refused as bad input (isolated by splitting): main dead-letters them. */
export interface RejectedLines { text: string, message: string }

/** A failure, as it crosses the thread boundary. */
export interface WireError {
  message: string
  code?: string
  /** The HTTP status InfluxDB answered with; absent when it did not answer (network, timeout). */
  status?: number
  retryAfterMs: number
}

export type JobOutcome =
  | { id: number, ok: true, points: number, bytes: number, latencyMs: number, refused: RefusedFrame[], rejected: RejectedLines[] }
  /**
   * retry: InfluxDB or the network failed, the worker keeps the batch; fatal: the records cannot
   * be written by waiting (a checksum failure, an unknown record kind); lost: the worker does
   * not hold the batch (it was restarted), send its bytes again.
   */
  | { id: number, ok: false, kind: 'retry' | 'fatal' | 'lost', error: WireError }

/**
 * A batch ready to post. `failedPlain`: a post of it failed with gzip off. Such a request may not
 * have finished sending its body out of `lines` (an early answer, a timeout), so that buffer is
 * dropped rather than reused; a 2xx means the server read the whole body, so the kernel had
 * taken every byte of it.
 */
interface Prepared { data: Buffer, points: number, refused: RefusedFrame[], lines: LineBuffer, failedPlain: boolean }

/** Line buffers kept for reuse once their batch is stored (about the batches in flight). */
const MAX_FREE_LINE_BUFFERS = 4

export class SinkJobs {
  private readonly prepared = new Map<number, Prepared>()
  /** Line buffers of stored batches, for the next ones: no allocation per batch once warm. */
  private readonly free: LineBuffer[] = []
  private readonly expander = new FrameRecordExpander()
  private readonly client: InfluxWriteClient
  private readonly maxBytes: number
  private readonly gzip: boolean

  constructor (target: SinkJobTarget) {
    this.client = new InfluxWriteClient(target)
    this.maxBytes = target.maxBatchBytes ?? Infinity
    this.gzip = target.gzip ?? true
  }

  /** One attempt at writing the job's batch. Never rejects. */
  async run (job: WriteJob): Promise<JobOutcome> {
    const id = job.id
    let p = this.prepared.get(id)
    if (p === undefined) {
      if (job.bytes === undefined) return { id, ok: false, kind: 'lost', error: { message: 'the sink worker does not hold this batch', retryAfterMs: 0 } }
      try {
        p = this.prepare(job, job.bytes)
      } catch (err) {
        return { id, ok: false, kind: 'fatal', error: wireError(err) }
      }
      this.prepared.set(id, p)
    }
    crashPoint('sink-worker')
    const started = performance.now()
    const rejected: RejectedLines[] = []
    try {
      // Every record of it went to the dead letters when draining: nothing to post.
      // A batch is cut by spool bytes and points: its line protocol may exceed maxBatchBytes.
      for (let at = 0; at < p.data.length;) {
        const end = at + this.maxBytes >= p.data.length ? p.data.length : cutAt(p.data, at, this.maxBytes)
        await this.writeOrSplit(p, p.data.subarray(at, end), rejected)
        at = end
      }
    } catch (err) {
      return { id, ok: false, kind: 'retry', error: wireError(err) }
    }
    this.prepared.delete(id)
    // Every post of it has completed (gzip read its bytes before; a plain body was read whole by
    // the server): the buffer can be reused. A forgotten batch's buffer is not, as a post of it
    // may still be reading it, nor one a failed plain post was sending.
    if (!p.failedPlain && this.free.length < MAX_FREE_LINE_BUFFERS) this.free.push(p.lines)
    return { id, ok: true, points: p.points, bytes: p.data.length, latencyMs: performance.now() - started, refused: p.refused, rejected }
  }

  /** Drops a batch the main thread gave up on (the sink stops; it stays spooled). */
  forget (id: number): void { this.prepared.delete(id) }

  /** Closes the idle sockets (a worker's go with it anyway). */
  close (): void {
    this.prepared.clear()
    this.free.length = 0
    this.client.close()
  }

  /**
   * The batch's line protocol, written into one reused buffer, and the frames to dead-letter
   * (refused, or failed by a bug: AMB_ERR_SPOOL_UNDECODABLE / _DRAIN_FAILED). Throws
   * AMB_ERR_SPOOL_CORRUPT (a checksum) or _UNDECODABLE (a record kind this version does not know)
   * to stop the sink with it kept.
   */
  private prepare (job: WriteJob, bytes: Uint8Array): Prepared {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    const out = this.free.pop() ?? new LineBuffer(256 * 1024)
    out.reset()
    const refused: RefusedFrame[] = []
    let points = 0
    for (const r of spoolRecords(buf, job.segment, job.offset)) {
      if (r.kind === SPOOL_RECORD_LINES) {
        out.bytes(r.payload)
      } else if (r.kind === SPOOL_RECORD_FRAME) {
        const mark = out.length
        try {
          this.expander.expandInto(r.payload, out)
        } catch (thrown) {
          // One frame that cannot be drained goes to the dead letters; it never stops the sink
          // (whatever it threw: a coded refusal or a bug), so every other unit's frames are stored.
          out.length = mark
          const parsed = (() => { try { return parseFrameRecord(r.payload) } catch { return null } })()
          const err = thrown instanceof StreamError ? thrown : drainFailed(parsed?.unit, thrown)
          // A copy: a view would carry the whole batch's memory across the thread boundary.
          refused.push({ segment: job.segment, offset: job.offset + r.at, code: err.code, reason: err.message, unit: parsed?.unit, payload: Uint8Array.prototype.slice.call(parsed?.bytes ?? r.payload) })
          continue
        }
      } else {
        throw new StreamError('AMB_ERR_SPOOL_UNDECODABLE', `spool record at ${spoolSegmentName(job.segment)}:${job.offset + r.at} is of kind ${r.kind}, which this version does not know`)
      }
      points += r.points
    }
    return { data: out.buf.subarray(0, out.length), points, refused, lines: out, failedPlain: false }
  }

  /**
   * Posts `data`; when InfluxDB refuses it as bad input, splits it to isolate the refused lines
   * (collected in `rejected`). Throws only for errors where retrying later can help.
   */
  private async writeOrSplit (p: Prepared, data: Buffer, rejected: RejectedLines[]): Promise<void> {
    try {
      await this.post(data)
    } catch (err) {
      if (!this.gzip) p.failedPlain = true
      if (!isBadInput(err)) throw err
      if (countLines(data) <= 1) {
        rejected.push({ text: data.toString('utf8'), message: influxErrorMessage(err) })
        return
      }
      const mid = splitPoint(data)
      await this.writeOrSplit(p, data.subarray(0, mid), rejected)
      await this.writeOrSplit(p, data.subarray(mid), rejected)
    }
  }

  private async post (data: Buffer): Promise<void> {
    // In the worker thread, gzip runs on that thread (its own, lowered priority: SINK_WORKER_NICE),
    // not on libuv's pool, which the main thread's spool writes and fsyncs share and which runs
    // at the gateway's priority. On the main thread (comparisons only) it must not block.
    const body = !this.gzip ? data : isMainThread ? await gzip(data, { level: zc.Z_BEST_SPEED }) : gzipSync(data, { level: zc.Z_BEST_SPEED })
    const sent = this.client.write(body, this.gzip)
    crashPoint('sink-posting')
    await sent
  }
}

function wireError (err: unknown): WireError {
  const e = err as Error & { code?: unknown, statusCode?: unknown }
  return { message: e.message ?? String(err), code: typeof e.code === 'string' ? e.code : undefined, status: typeof e.statusCode === 'number' ? e.statusCode : undefined, retryAfterMs: influxRetryAfterMs(err) }
}

/** End of the longest run of whole lines from `at` within `max` bytes (at least one line). */
function cutAt (data: Buffer, at: number, max: number): number {
  const nl = data.lastIndexOf(10, at + max - 1)
  if (nl >= at) return nl + 1
  const next = data.indexOf(10, at)
  return next === -1 ? data.length : next + 1
}

function countLines (data: Buffer): number {
  let n = 0
  let i = -1
  while ((i = data.indexOf(10, i + 1)) !== -1) n++
  return n
}

/** Index just after the newline nearest the middle. */
function splitPoint (data: Buffer): number {
  const nl = data.indexOf(10, data.length >> 1)
  if (nl !== -1 && nl + 1 < data.length) return nl + 1
  return data.lastIndexOf(10, (data.length >> 1) - 1) + 1
}
