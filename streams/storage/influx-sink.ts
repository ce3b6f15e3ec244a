/**
 * The InfluxDB sink: drains the spool into InfluxDB in order, through the one InfluxDB client
 * (influx-client.ts; no library write buffer: the spool is the retry buffer).
 *
 * - Batches by points, bytes and time (a short linger lets a batch fill under load); up to
 *   `concurrency` batches in flight, the cursor committed in spool order.
 * - gzip (level 1, on libuv's thread pool: off the event loop).
 * - 429/5xx/network errors: the same batch is retried with exponential backoff and jitter
 *   (honouring Retry-After); the spool keeps everything behind it. Nothing is dropped.
 * - 400/413/422 (type conflict, partial write, too large): the batch is split in halves until the
 *   offending lines are isolated; those go to dead letters with InfluxDB's message, the rest is
 *   written (writes are idempotent, so re-sending lines that a partial write kept is harmless).
 * - v1 (`/write?db=`) creates its database when missing; v2 (`/api/v2/write?org=&bucket=`).
 * - Drain policy after an outage: FIFO. The backlog is written oldest first and live frames
 *   queue behind it, so InfluxDB is complete up to a moving point in time, never holey; live
 *   views (dashboard, alerts) are fed from ingest and do not wait. One cursor keeps crash
 *   recovery simple (see spool.ts); interleaving would need two and out-of-order commits.
 *   Measured by test/faults-outage.test.ts and loadtest/outage.ts.
 * - Every request is aborted after timeoutMs (INFLUX_TIMEOUT_MS): a hung InfluxDB (SIGSTOP)
 *   is a failed attempt, retried with backoff, not a stuck sink.
 */
import { promisify } from 'node:util'
import { gzip as gzipCb, constants as zc } from 'node:zlib'
import { InfluxClient, InfluxHttpError, InfluxTimeoutError } from './influx-client.js'
import type { Spool, SpoolBatch } from './spool.js'
import type { DeadLetterStore } from './dead-letter.js'
import { crashPoint } from './crash-point.js'
import { StreamError } from './errors.js'

const gzip = promisify(gzipCb)

export interface InfluxSinkOptions {
  url: string
  api: 'v2' | 'v1'
  /** v2 token, or `user:password` for v1 with auth enabled. */
  token?: string
  org?: string
  bucket?: string
  db?: string
  /** Most points per write request. */
  maxBatchPoints: number
  /** Most line-protocol bytes per write request (before gzip). */
  maxBatchBytes: number
  /** How long a batch may wait to fill once data is there, in ms. */
  lingerMs: number
  /** Request timeout, in ms. */
  timeoutMs: number
  /**
   * Write requests in flight. InfluxDB parses a request on one core: with one request at a
   * time it idles while the gateway reads, gzips and commits the next batch, and a 2-core
   * InfluxDB drains at about half its rate. The cursor is still committed in spool order.
   */
  concurrency: number
  minRetryDelayMs: number
  maxRetryDelayMs: number
}

export const INFLUX_SINK_DEFAULTS = Object.freeze({
  api: 'v2' as const,
  // 5,000 points × 3 requests in flight drained a backlog ~20 % faster into InfluxDB 1.8 than
  // 10,000 × 2 (InfluxDB spent 9-10 µs of CPU per point instead of 11-14; `ambulink bench`).
  maxBatchPoints: 5_000,
  maxBatchBytes: 4 * 1024 * 1024,
  lingerMs: 20,
  timeoutMs: 30_000,
  concurrency: 3,
  minRetryDelayMs: 200,
  maxRetryDelayMs: 15_000,
  /** How long close() waits for in-flight and spooled batches before giving up (they stay spooled). */
  closeGraceMs: 5_000
})

/** Unwritten spool bytes beyond which a batch is sent without lingering. */
const BACKLOG_BYTES = 1024 * 1024

export interface SinkEvents {
  /** A batch was stored: points, bytes, request latency in ms, first record's receive time. */
  onWritten?: (points: number, bytes: number, latencyMs: number, firstReceivedAtMs: number) => void
  /** A write failed and will be retried. */
  onRetry?: (err: Error, attempt: number, delayMs: number) => void
  /** Lines refused by InfluxDB were moved to dead letters. */
  onRejected?: (lines: number, message: string) => void
  /** Another failure in the sink loop (logged by the owner). */
  onError?: (err: Error) => void
}

export class InfluxSink {
  readonly options: Readonly<InfluxSinkOptions>
  private readonly client: InfluxClient
  private readonly writePath: string
  private running: Promise<void> | null = null
  private stopping = false
  /** Wakes every pending sleep (linger, retry backoffs of the batches in flight). */
  private readonly sleepers = new Set<() => void>()
  private dbCreated = false
  /** Last outcome, for /readyz. */
  lastError: Error | null = null
  lastSuccessAt = 0
  private failing = false

  constructor (
    options: Partial<InfluxSinkOptions> & { url: string },
    private readonly spool: Spool,
    private readonly deadLetters: DeadLetterStore,
    private readonly events: SinkEvents = {}
  ) {
    this.options = Object.freeze({ ...INFLUX_SINK_DEFAULTS, ...options })
    const o = this.options
    this.client = new InfluxClient({ url: o.url, token: o.token, timeoutMs: o.timeoutMs })
    if (o.api === 'v1') {
      if (o.db === undefined || o.db === '') throw new Error('INFLUX_DB is required with INFLUX_API=v1')
      this.writePath = `/write?db=${encodeURIComponent(o.db)}&precision=u`
    } else {
      if (o.bucket === undefined || o.bucket === '') throw new Error('INFLUX_BUCKET is required with INFLUX_API=v2')
      this.writePath = `/api/v2/write?org=${encodeURIComponent(o.org ?? '')}&bucket=${encodeURIComponent(o.bucket)}&precision=us`
    }
  }

  /** True while writes fail (the spool is growing). */
  get healthy (): boolean { return !this.failing }

  start (): void {
    if (this.running !== null) return
    this.running = this.loop().catch(err => { this.events.onError?.(err as Error) })
  }

  /** Checks that InfluxDB answers (`/ping`, served by 1.x, 2.x, 3.x and VictoriaMetrics). */
  async ping (timeoutMs = 2000): Promise<boolean> {
    return await this.client.ping(timeoutMs)
  }

  private async loop (): Promise<void> {
    const o = this.options
    // Up to `concurrency` batches in flight, each retried on its own; the cursor moves in spool
    // order only, so a crash or stop at any point replays (idempotently) what was not committed.
    const inFlight: Array<{ batch: SpoolBatch, ok: Promise<boolean> }> = []
    const commitOldest = async (): Promise<boolean> => {
      const { batch, ok } = inFlight.shift()!
      if (!await ok) return false
      crashPoint('sink-written')
      await this.spool.commit(batch.end)
      return true
    }
    let failed = false
    while (!this.stopping) {
      if (inFlight.length >= Math.max(1, o.concurrency)) {
        if (!await commitOldest()) { failed = true; break }
        continue
      }
      if (inFlight.length > 0) {
        // More data to send, or the oldest write done: whichever comes first.
        const oldest = inFlight[0]!.ok
        const next = await Promise.race([this.spool.waitForData().then(() => 'data' as const), oldest.then(() => 'oldest' as const)])
        if (next === 'oldest') {
          if (!await commitOldest()) { failed = true; break }
          continue
        }
      } else {
        await this.spool.waitForData()
      }
      if (this.stopping) break
      // Let the batch fill: without it, frames arriving one by one would each become a request
      // (InfluxDB fsyncs its WAL per request). Not while a backlog is there: a full batch is
      // ready, and waiting would leave InfluxDB with one request less to work on.
      const inFlightBytes = inFlight.reduce((a, b) => a + b.batch.data.length, 0)
      if (o.lingerMs > 0 && this.spool.pendingBytes - inFlightBytes < BACKLOG_BYTES) await this.sleep(o.lingerMs)
      if (this.stopping) break
      let batch: SpoolBatch | null
      try {
        batch = await this.spool.read(o.maxBatchBytes, o.maxBatchPoints)
      } catch (err) {
        // A corrupt record cannot heal by waiting; report and stop rather than skip data.
        this.lastError = err as Error
        this.failing = true
        this.events.onError?.(err as Error)
        failed = true
        break
      }
      if (batch === null) continue
      inFlight.push({ batch, ok: this.writeBatch(batch) })
    }
    // Stopping (writes in flight give up their retries) or failed: commit what was stored, in
    // order; the reader goes back to the cursor for whatever was not.
    while (inFlight.length > 0 && !failed) {
      if (!await commitOldest()) failed = true
    }
    await Promise.all(inFlight.map(b => b.ok))
    if (failed || this.stopping) this.spool.rewind()
  }

  /** Writes one spool batch, retrying until it is stored or the sink stops. */
  private async writeBatch (batch: SpoolBatch): Promise<boolean> {
    // Every record of it went to the dead letters when draining (frame-record.ts): nothing to post.
    if (batch.data.length === 0) return true
    let attempt = 0
    for (;;) {
      const started = performance.now()
      try {
        await this.writeOrSplit(batch.data)
        this.events.onWritten?.(batch.points, batch.data.length, performance.now() - started, batch.firstReceivedAtMs)
        this.lastError = null
        this.failing = false
        this.lastSuccessAt = Date.now()
        return true
      } catch (err) {
        attempt++
        this.lastError = err as Error
        this.failing = true
        if (this.stopping) return false
        const delay = this.retryDelay(err as Error, attempt)
        this.events.onRetry?.(err as Error, attempt, delay)
        await this.sleep(delay)
        if (this.stopping) return false
      }
    }
  }

  private retryDelay (err: Error, attempt: number): number {
    const o = this.options
    // Retry-After (429 and 503 send it).
    const serverSays = err instanceof InfluxHttpError ? err.retryAfterMs() : 0
    const exp = Math.min(o.maxRetryDelayMs, o.minRetryDelayMs * 2 ** Math.min(attempt - 1, 16))
    // Full jitter keeps many gateways from hammering a recovering InfluxDB in step.
    return Math.max(serverSays, exp / 2 + Math.random() * exp / 2)
  }

  /**
   * Posts `data`; when InfluxDB refuses it as bad input, splits it to isolate the refused lines
   * and dead-letters them. Throws only for errors where retrying later can help.
   */
  private async writeOrSplit (data: Buffer): Promise<void> {
    try {
      await this.post(data)
    } catch (err) {
      if (!isBadInput(err)) throw err
      const lines = countLines(data)
      if (lines <= 1) {
        const msg = errorMessage(err)
        await this.deadLetters.add({ source: 'influx', code: 'AMB_ERR_INFLUX_REJECTED', reason: msg, lines: data.toString('utf8') })
        this.events.onRejected?.(1, msg)
        return
      }
      const mid = splitPoint(data)
      await this.writeOrSplit(data.subarray(0, mid))
      await this.writeOrSplit(data.subarray(mid))
    }
  }

  private async post (data: Buffer): Promise<void> {
    const body = await gzip(data, { level: zc.Z_BEST_SPEED })
    try {
      const sent = this.send(body)
      crashPoint('sink-posting')
      await sent
    } catch (err) {
      if (this.options.api === 'v1' && !this.dbCreated && err instanceof InfluxHttpError && err.statusCode === 404) {
        await this.createDatabase()
        await this.send(body)
        return
      }
      throw err
    }
  }

  /** One POST of an already gzipped body; a timeout is named as such (INFLUX_TIMEOUT_MS). */
  private async send (body: Buffer): Promise<void> {
    try {
      await this.client.request({
        path: this.writePath,
        body,
        headers: { 'content-type': 'text/plain; charset=utf-8', 'content-encoding': 'gzip' }
      })
    } catch (err) {
      if (err instanceof InfluxTimeoutError) throw new StreamError('AMB_ERR_INFLUX_UNAVAILABLE', `InfluxDB write timed out after ${err.timeoutMs} ms (INFLUX_TIMEOUT_MS)`, { cause: err })
      throw err
    }
  }

  /** v1: CREATE DATABASE is idempotent in InfluxDB 1.x. */
  async createDatabase (): Promise<void> {
    if (this.options.api !== 'v1') return
    const q = `CREATE DATABASE "${this.options.db!.replace(/["\\]/g, '')}"`
    await this.client.request({ path: `/query?q=${encodeURIComponent(q)}` })
    this.dbCreated = true
  }

  private sleep (ms: number): Promise<void> {
    return new Promise(resolve => {
      const wake = (): void => {
        clearTimeout(t)
        this.sleepers.delete(wake)
        resolve()
      }
      const t = setTimeout(wake, ms)
      this.sleepers.add(wake)
    })
  }

  /**
   * Stops after the batch in flight (or at once when InfluxDB is failing: what is not stored
   * stays in the spool for the next start). Safe to call twice.
   */
  async close (graceMs: number = INFLUX_SINK_DEFAULTS.closeGraceMs): Promise<void> {
    if (this.running === null) return
    const running = this.running
    // Give the loop a moment to drain what is already spooled while healthy.
    const deadline = Date.now() + graceMs
    while (!this.failing && Date.now() < deadline && this.spool.pendingBytes > 0) {
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    this.stopping = true
    for (const wake of [...this.sleepers]) wake()
    this.spool.wakeReaders()
    await running
    this.running = null
    this.client.close()
  }
}

/**
 * True when InfluxDB refused the *content* of the lines, so isolating them can help. A 400 that
 * is not about the data (a proxy's gzip or auth complaint, a missing bucket) would otherwise
 * send every line to dead letters: those are retried like outages instead.
 */
function isBadInput (err: unknown): boolean {
  if (!(err instanceof InfluxHttpError)) return false
  if (err.statusCode === 413 || err.statusCode === 422) return true
  if (err.statusCode !== 400) return false
  return DATA_ERRORS.test(err.body)
}

/** Messages InfluxDB 1.x/2.x/3.x and VictoriaMetrics give for lines they cannot store. */
const DATA_ERRORS = /partial write|field type conflict|unable to parse|cannot parse|invalid (field|tag|number|boolean|timestamp|measurement)|beyond retention|max-values-per-tag|bad timestamp|conflict/i

function errorMessage (err: unknown): string {
  if (err instanceof InfluxHttpError) return `${err.statusCode} ${err.body}`.slice(0, 2000)
  return (err as Error).message
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
