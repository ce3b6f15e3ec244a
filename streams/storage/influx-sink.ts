/**
 * The InfluxDB sink: drains the spool into InfluxDB in order, with up to `concurrency` batches in
 * flight and the cursor committed in spool order (the spool is the retry buffer: nothing is kept
 * in memory beyond the batches in flight).
 *
 * Threads: this file runs on the main thread and keeps the spool (reader, cursor, commit, rewind),
 * the dead letters and the ordering, retry and commit loop; turning a batch of spool records into
 * an InfluxDB write (checksums, decoding frame records again, line protocol, gzip, the HTTP POST
 * and the split of a write refused as bad input) runs in a worker thread (sink-job.ts through
 * sink-thread.ts), so the broker, the alert engine and the live hub never queue behind it
 * (issue 12, goal 2). The batch's records are transferred to the worker, not copied.
 *
 * - Batches by points, bytes and time (a short linger lets a batch fill under load).
 * - gzip (level 1) in the worker (`gzip: false` only for same-run comparisons); HTTP through the one InfluxDB client (influx-client.ts: no
 *   library write buffer, the spool is the retry buffer).
 * - 429/5xx/network errors: the same batch is retried with exponential backoff and jitter
 *   (honouring Retry-After); the spool keeps everything behind it. Nothing is dropped. While
 *   writes fail, `/ping` is probed every `probeIntervalMs`: once InfluxDB answers again after
 *   it did not, the oldest batch is retried at once (the others when it succeeds, with jitter)
 *   instead of sleeping out a backoff of up to maxRetryDelayMs (issue 12, goal 6).
 * - 400/413/422 (type conflict, partial write, too large): the batch is split in halves until the
 *   offending lines are isolated; those go to dead letters with InfluxDB's message, the rest is
 *   written (writes are idempotent, so re-sending lines that a partial write kept is harmless).
 * - Dead letters of a batch (frames refused when draining, lines InfluxDB refused) are written
 *   just before the cursor moves past it, in spool order: a batch written but not committed (an
 *   older one still failing when the sink stops) dead-letters nothing, so the replay after a
 *   restart does not dead-letter its frames a second time; within a run, a record is
 *   dead-lettered once whatever the rewinds. Only a crash between the dead letter and the cursor
 *   save (milliseconds) can repeat one.
 * - v1 (`/write?db=`) creates its database when missing; v2 (`/api/v2/write?org=&bucket=`).
 * - Drain policy after an outage: FIFO. The backlog is written oldest first and live frames
 *   queue behind it, so InfluxDB is complete up to a moving point in time, never holey; live
 *   views (dashboard, alerts) are fed from ingest and do not wait. One cursor keeps crash
 *   recovery simple (see spool.ts); interleaving would need two and out-of-order commits.
 *   Measured by test/faults-outage.test.ts and loadtest/outage.ts.
 * - Every request is aborted after timeoutMs (INFLUX_TIMEOUT_MS): a hung InfluxDB (SIGSTOP)
 *   is a failed attempt, retried with backoff, not a stuck sink.
 */
import type { Position, RawSpoolBatch, Spool } from './spool.js'
import type { DeadLetterStore } from './dead-letter.js'
import { crashPoint } from './crash-point.js'
import { StreamError, type StreamErrorCode } from './errors.js'
import { InfluxWriteClient, type InfluxWriteTarget } from './influx-write.js'
import type { JobOutcome, WireError } from './sink-job.js'
import { SinkThread, type SinkThreadMode, type SinkWorkerStart } from './sink-thread.js'
import type { ThreadPriority } from './thread-priority.js'

/** Where to write (url, api, token, org, bucket or db; timeoutMs, the request timeout), and how. */
export interface InfluxSinkOptions extends InfluxWriteTarget {
  /** Most points per write request. */
  maxBatchPoints: number
  /** Most line-protocol bytes per write request (before gzip). */
  maxBatchBytes: number
  /** How long a batch may wait to fill once data is there, in ms. */
  lingerMs: number
  /**
   * Write requests in flight. InfluxDB parses a request on one core: with one request at a
   * time it idles while the gateway reads, gzips and commits the next batch, and a 2-core
   * InfluxDB drains at about half its rate. The cursor is still committed in spool order.
   */
  concurrency: number
  minRetryDelayMs: number
  maxRetryDelayMs: number
  /** While writes fail, how often `/ping` is probed to retry as soon as InfluxDB is back, in ms (0: never). */
  probeIntervalMs: number
  /**
   * Where batches are turned into writes: a worker thread (the default), or the main thread
   * (for same-run comparisons, loadtest/sink-thread.ts).
   */
  thread: SinkThreadMode
  /**
   * How many nice levels below the gateway the worker thread runs (0: the same; Linux only,
   * capped at 19: thread-priority.ts). On a box shared with InfluxDB the drain then takes the CPU
   * the thread serving MQTT and alerts leaves.
   */
  workerNice: number
}

export const INFLUX_SINK_DEFAULTS = Object.freeze({
  api: 'v2' as const,
  // 5,000 points × 3 requests in flight drained a backlog ~20 % faster into InfluxDB 1.8 than
  // 10,000 × 2 (InfluxDB spent 9-10 µs of CPU per point instead of 11-14; `ambulink bench`).
  maxBatchPoints: 5_000,
  maxBatchBytes: 4 * 1024 * 1024,
  lingerMs: 20,
  timeoutMs: 30_000,
  gzip: true,
  concurrency: 3,
  minRetryDelayMs: 200,
  maxRetryDelayMs: 15_000,
  probeIntervalMs: 500,
  thread: 'worker' as SinkThreadMode,
  workerNice: 0,
  /** How long close() waits for in-flight and spooled batches before giving up (they stay spooled). */
  closeGraceMs: 5_000
})

/** Spool bytes not yet read beyond which a batch is sent without lingering. */
const BACKLOG_BYTES = 1024 * 1024

export interface SinkEvents {
  /** A batch was stored: points, bytes, request latency in ms, first record's receive time. */
  onWritten?: (points: number, bytes: number, latencyMs: number, firstReceivedAtMs: number) => void
  /** A write failed and will be retried. */
  onRetry?: (err: Error, attempt: number, delayMs: number) => void
  /** Lines refused by InfluxDB were moved to dead letters. */
  onRejected?: (lines: number, message: string) => void
  /**
   * A spooled frame refused when draining (AMB_ERR_SPOOL_UNDECODABLE) went to the dead letters
   * (`kept`), or could not (the sink stops with the record still spooled).
   */
  onSpoolRefused?: (err: StreamError, kept: boolean) => void
  /**
   * A worker thread is up, at this priority (its notice says why not as asked); `start` says what
   * it was started from and how long it took.
   */
  onWorkerPriority?: (priority: ThreadPriority, start: SinkWorkerStart) => void
  /** The worker thread crashed (also reported through onError); it restarts after `restartInMs`. */
  onWorkerCrash?: (err: Error, restartInMs: number) => void
  /** Another failure in the sink loop (logged by the owner). */
  onError?: (err: Error) => void
}

/** A batch in flight: resolves to its outcome, or null when it was given up (stop, fatal). */
interface InFlight { batch: RawSpoolBatch, done: Promise<Extract<JobOutcome, { ok: true }> | null> }

export class InfluxSink {
  readonly options: Readonly<InfluxSinkOptions>
  private readonly thread: SinkThread
  private running: Promise<void> | null = null
  private closing: Promise<void> | null = null
  private stopping = false
  /** Set when the sink stopped on an error waiting cannot heal (a corrupt record, dead letters full). */
  private halted = false
  /** Wakes every pending sleep (linger, retry backoffs of the batches in flight). */
  private readonly sleepers = new Set<() => void>()
  /** Wakes of the retry backoffs, oldest batch first (the /ping probe wakes them). */
  private readonly backoffs: Array<() => void> = []
  private probing = false
  private probeTimer: NodeJS.Timeout | null = null
  /** The probe saw InfluxDB down since the last wake. */
  private seenDown = false
  private nextJobId = 1
  /** Records (segment:offset) dead-lettered this run and not yet behind the cursor. */
  private readonly deadLettered = new Map<string, Position>()
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
    // Checks the target (INFLUX_DB / INFLUX_BUCKET) here, on the caller's thread.
    this.client = new InfluxWriteClient(this.target())
    this.thread = new SinkThread(this.target(), o.thread, {
      onCrash: (err, restartInMs) => {
        this.events.onWorkerCrash?.(err, restartInMs)
        this.events.onError?.(err)
      },
      onPriority: (priority, start) => { this.events.onWorkerPriority?.(priority, start) }
    }, o.workerNice)
  }

  private readonly client: InfluxWriteClient

  private target (): ConstructorParameters<typeof InfluxWriteClient>[0] & { maxBatchBytes: number } {
    const o = this.options
    return { url: o.url, api: o.api, token: o.token, org: o.org, bucket: o.bucket, db: o.db, timeoutMs: o.timeoutMs, gzip: o.gzip, maxBatchBytes: o.maxBatchBytes }
  }

  /** True while writes fail (the spool is growing). */
  get healthy (): boolean { return !this.failing }

  /** Crashes of the worker thread since start. */
  get workerCrashes (): number { return this.thread.crashes }

  /** The worker thread's priority as it reported it (null on the main thread or before it is up). */
  get workerPriority (): ThreadPriority | null { return this.thread.priority }

  /** How the current worker thread came up (null on the main thread or before it is up). */
  get workerStart (): SinkWorkerStart | null { return this.thread.started }

  /** Resolves once the worker thread is up (benchmarks leave its start-up out). */
  async whenReady (): Promise<void> {
    await this.thread.whenReady()
  }

  start (): void {
    if (this.running !== null || this.closing !== null) return
    this.running = this.loop().catch(err => { this.halt(err as Error) })
  }

  /** Checks that InfluxDB answers (`/ping`, served by 1.x, 2.x, 3.x and VictoriaMetrics). */
  async ping (timeoutMs = 2000): Promise<boolean> {
    return await this.client.ping(timeoutMs)
  }

  private async loop (): Promise<void> {
    const o = this.options
    // Up to `concurrency` batches in flight, each retried on its own; the cursor moves in spool
    // order only, so a crash or stop at any point replays (idempotently) what was not committed.
    const inFlight: InFlight[] = []
    const commitOldest = async (): Promise<boolean> => {
      const { batch, done } = inFlight.shift()!
      const out = await done
      if (out === null) return false
      try {
        // Dead letters just before the cursor passes them (see the top of this file).
        if (!await this.deadLetter(out)) return false
        crashPoint('sink-written')
        await this.spool.commit(batch.end)
      } catch (err) {
        // The dead letters' or the spool's disk failed: stop, visibly (/readyz), rather than
        // leave a loop that died with the sink still reported as writing.
        this.halt(err as Error)
        return false
      }
      for (const [key, at] of this.deadLettered) {
        if (at.segment < batch.end.segment || (at.segment === batch.end.segment && at.offset < batch.end.offset)) this.deadLettered.delete(key)
      }
      return true
    }
    let failed = false
    while (!this.stopping && !this.halted) {
      if (inFlight.length >= Math.max(1, o.concurrency)) {
        if (!await commitOldest()) { failed = true; break }
        continue
      }
      if (inFlight.length > 0) {
        // More data to send, or the oldest write done: whichever comes first.
        const oldest = inFlight[0]!.done
        const next = await Promise.race([this.spool.waitForData().then(() => 'data' as const), oldest.then(() => 'oldest' as const)])
        if (next === 'oldest') {
          if (!await commitOldest()) { failed = true; break }
          continue
        }
      } else {
        await this.spool.waitForData()
      }
      if (this.stopping || this.halted) break
      // Let the batch fill: without it, frames arriving one by one would each become a request
      // (InfluxDB fsyncs its WAL per request). Not while a backlog is there: a full batch is
      // ready, and waiting would leave InfluxDB with one request less to work on. Both sides in
      // spool bytes on disk: what is not committed, less what is in flight.
      const inFlightBytes = inFlight.reduce((a, b) => a + b.batch.end.offset - b.batch.start.offset, 0)
      if (o.lingerMs > 0 && this.spool.pendingBytes - inFlightBytes < BACKLOG_BYTES) await this.sleep(o.lingerMs)
      if (this.stopping || this.halted) break
      let batch: RawSpoolBatch | null
      try {
        batch = await this.spool.readRaw(o.maxBatchBytes, o.maxBatchPoints)
      } catch (err) {
        // The disk refused the read: report and stop rather than skip data.
        this.halt(err as Error)
        failed = true
        break
      }
      if (batch === null) continue
      inFlight.push({ batch, done: this.writeBatch(batch) })
    }
    // Stopping (writes in flight give up their retries) or failed: commit what was stored, in
    // order; the reader goes back to the cursor for whatever was not.
    while (inFlight.length > 0 && !failed) {
      if (!await commitOldest()) failed = true
    }
    await Promise.all(inFlight.map(b => b.done))
    this.spool.rewind()
  }

  /** Stops the sink on an error that waiting cannot heal; what is not stored stays spooled. */
  private halt (err: Error): void {
    this.lastError = err
    this.failing = true
    this.halted = true
    this.events.onError?.(err)
    for (const wake of [...this.sleepers]) wake()
  }

  /**
   * Writes one batch through the worker, retrying until it is stored, the sink stops or the
   * batch cannot be written (then null).
   */
  private async writeBatch (batch: RawSpoolBatch): Promise<Extract<JobOutcome, { ok: true }> | null> {
    const id = this.nextJobId++
    const job = { id, segment: batch.start.segment, offset: batch.start.offset }
    // The first send hands over the batch's memory (transferred); a restarted worker gets the
    // same records read again from the spool.
    let first: Buffer | null = batch.bytes
    const bytes = async (): Promise<Buffer> => {
      if (first === null) return await this.spool.readRange(batch.start, batch.end)
      const b = first
      first = null
      return b
    }
    let attempt = 0
    for (;;) {
      let out: JobOutcome
      try {
        out = await this.thread.run(job, bytes)
      } catch (err) {
        this.halt(err as Error)
        return null
      }
      if (out.ok) {
        this.events.onWritten?.(out.points, out.bytes, out.latencyMs, batch.firstReceivedAtMs)
        this.lastError = null
        this.lastSuccessAt = Date.now()
        if (this.failing) {
          this.failing = false
          // The oldest batch went through: the others retry now, spread over a moment.
          this.wakeBackoffs(Infinity, 100)
        }
        return out
      }
      const err = toError(out.error)
      if (out.kind === 'fatal') {
        this.thread.forget(id)
        this.halt(err)
        return null
      }
      attempt++
      this.lastError = err
      this.failing = true
      // No answer at all (refused, reset, timed out): InfluxDB is down, and the probe may end
      // the backoff once it answers. An HTTP error means it answers: the backoff runs its course.
      if (out.error.status === undefined) this.seenDown = true
      if (this.stopping || this.halted) {
        this.thread.forget(id)
        return null
      }
      const delay = this.retryDelay(out.error, attempt)
      this.events.onRetry?.(err, attempt, delay)
      this.startProbe()
      await this.backoff(delay)
      if (this.stopping || this.halted) {
        this.thread.forget(id)
        return null
      }
    }
  }

  /** Dead-letters what a stored batch refused; false (sink halted) when the dead letters cannot keep a frame. */
  private async deadLetter (out: Extract<JobOutcome, { ok: true }>): Promise<boolean> {
    for (const f of out.refused) {
      const key = `${f.segment}:${f.offset}`
      if (this.deadLettered.has(key)) continue
      const err = new StreamError(f.code as StreamErrorCode, f.reason)
      const kept = await this.deadLetters.add({ source: 'spool', code: f.code, reason: f.reason, unit: f.unit, payload: f.payload })
      // Told after the dead letters answered, so "kept" is only ever reported when it is true.
      this.events.onSpoolRefused?.(err, kept)
      if (!kept) {
        this.halt(err)
        return false
      }
      this.deadLettered.set(key, { segment: f.segment, offset: f.offset })
    }
    for (const r of out.rejected) {
      const kept = await this.deadLetters.add({ source: 'influx', code: 'AMB_ERR_INFLUX_REJECTED', reason: r.message, lines: r.text })
      if (!kept) {
        // Neither InfluxDB nor the dead letters keep these lines: the cursor must not pass them.
        // The batch stays in the spool (written again after a restart, once the dead letters
        // have room), and /readyz says the sink stopped.
        this.halt(new StreamError('AMB_ERR_INFLUX_REJECTED', `InfluxDB refused lines the dead letters could not keep (full or closed): ${r.message}`.slice(0, 2000)))
        return false
      }
      this.events.onRejected?.(1, r.message)
    }
    return true
  }

  private retryDelay (err: WireError, attempt: number): number {
    const o = this.options
    // Retry-After (429 and 503 send it) is a floor.
    const exp = Math.min(o.maxRetryDelayMs, o.minRetryDelayMs * 2 ** Math.min(attempt - 1, 16))
    // Full jitter keeps many gateways from hammering a recovering InfluxDB in step.
    return Math.max(err.retryAfterMs, exp / 2 + Math.random() * exp / 2)
  }

  /**
   * While writes fail, probes `/ping` every probeIntervalMs; when InfluxDB answers after it was
   * seen not answering (by the probe or by a write that got no answer), the oldest backoff is cut
   * short (one batch tries first, see writeBatch). A server that answers /ping but keeps
   * refusing writes with an HTTP error is left to the backoff.
   */
  private startProbe (): void {
    const every = this.options.probeIntervalMs
    if (this.probing || every <= 0 || this.stopping || this.halted) return
    this.probing = true
    const tick = async (): Promise<void> => {
      this.probeTimer = null
      if (!this.failing || this.stopping || this.halted) {
        this.probing = false
        return
      }
      const up = await this.ping(Math.max(250, Math.min(2000, every * 2)))
      if (!up) this.seenDown = true
      else if (this.seenDown) {
        this.seenDown = false
        this.wakeBackoffs(1, 0)
      }
      if (!this.failing || this.stopping || this.halted) {
        this.probing = false
        return
      }
      this.probeTimer = setTimeout(() => { void tick() }, every)
      this.probeTimer.unref()
    }
    this.probeTimer = setTimeout(() => { void tick() }, every)
    this.probeTimer.unref()
  }

  /** Wakes up to `n` retry backoffs, oldest first, each after a random 0..jitterMs. */
  private wakeBackoffs (n: number, jitterMs: number): void {
    const woken = this.backoffs.splice(0, Math.min(n, this.backoffs.length))
    for (const wake of woken) {
      if (jitterMs <= 0) wake()
      else setTimeout(wake, Math.random() * jitterMs).unref()
    }
  }

  /** A retry backoff: a sleep the probe can cut short. */
  private async backoff (ms: number): Promise<void> {
    let wake!: () => void
    const woken = new Promise<void>(resolve => { wake = resolve })
    this.backoffs.push(wake)
    await Promise.race([this.sleep(ms), woken])
    const i = this.backoffs.indexOf(wake)
    if (i !== -1) this.backoffs.splice(i, 1)
  }

  /** v1: CREATE DATABASE is idempotent in InfluxDB 1.x (the worker also creates it on a 404). */
  async createDatabase (): Promise<void> {
    await this.client.createDatabase()
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
   * Stops after the batches in flight (or at once when InfluxDB is failing: what is not stored
   * stays in the spool for the next start), then stops the worker. Safe to call twice: a second
   * call waits for the first.
   */
  close (graceMs: number = INFLUX_SINK_DEFAULTS.closeGraceMs): Promise<void> {
    this.closing ??= this.closeOnce(graceMs)
    return this.closing
  }

  private async closeOnce (graceMs: number): Promise<void> {
    const running = this.running
    if (running !== null) {
      // Give the loop a moment to drain what is already spooled while healthy.
      const deadline = Date.now() + graceMs
      while (!this.failing && !this.halted && Date.now() < deadline && this.spool.pendingBytes > 0) {
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    }
    this.stopping = true
    if (this.probeTimer !== null) clearTimeout(this.probeTimer)
    this.probeTimer = null
    for (const wake of [...this.sleepers]) wake()
    this.wakeBackoffs(Infinity, 0)
    this.thread.stop()
    this.spool.wakeReaders()
    await running
    this.running = null
    await this.thread.close()
    this.client.close()
  }
}

function toError (e: WireError): Error {
  return new StreamError((e.code ?? '').startsWith('AMB_ERR_') ? e.code as StreamErrorCode : 'AMB_ERR_INFLUX_UNAVAILABLE', e.message)
}
