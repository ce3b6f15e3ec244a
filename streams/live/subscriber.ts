/**
 * One dashboard connection as the hub sees it: a capped outbound queue in front of a socket.
 *
 * Ingest only ever enqueues (O(1), never waits). What reaches the socket is limited by the bytes
 * in flight (sent but not yet written out, learnt from the socket's write callbacks, as aedes'
 * `lib/write.js` does with `write()`'s return): above highWaterBytes nothing more is sent until
 * the socket drains. A queue over maxQueueBytes drops its oldest ECG chunks first (the page draws
 * a gap), then its oldest unit updates (a later one supersedes them), and never an alert or a
 * snapshot. A socket that makes no progress for blockedTimeoutMs is cut off by the hub's sweep.
 *
 * Alerts go ahead of waveform data: an alert is queued in front of the ECG chunks and unit
 * updates waiting behind the last message that is never dropped (snapshot, backfill, earlier
 * alert), so it waits only for those and for the bytes already on the socket (at most
 * highWaterBytes), never for the queued ECG of a busy or slow page. It stays behind those kept
 * messages: a snapshot sent before it must not overwrite it on the page, and alert events keep
 * their order.
 */

/** The socket side, as `ws`'s WebSocket provides it. */
export interface LiveSink {
  /** `cb` runs once the data is written out (or with an error when it cannot be). */
  send: (data: string | Uint8Array, cb: (err?: Error) => void) => void
  close: (code?: number, reason?: string) => void
  terminate: () => void
}

/** Message classes, in the order they are dropped under pressure. */
export const ECG = 0
export const UPDATE = 1
/** Never dropped: snapshots, backfills, goodbyes. */
export const KEEP = 2
/** Never dropped, and ahead of queued ECG and updates: alert events. */
export const ALERT = 3
export type MessageClass = typeof ECG | typeof UPDATE | typeof KEEP | typeof ALERT

interface Entry { data: string | Uint8Array, cls: MessageClass, bytes: number }

export interface SubscriberLimits {
  maxQueueBytes: number
  highWaterBytes: number
  blockedTimeoutMs: number
}

export class Subscriber {
  readonly watching = new Set<string>()
  queuedBytes = 0
  inFlightBytes = 0
  /** Messages dropped from this queue, by class (ECG, UPDATE). */
  readonly dropped = [0, 0]
  closed = false
  private queue: Entry[] = []
  /** Sizes of the sends whose callbacks are outstanding (ws calls them in order). */
  private readonly inFlight: number[] = []
  /** When the queue started waiting on a full socket; null while the socket makes progress. */
  private waitingSince: number | null = null

  constructor (
    readonly id: number,
    readonly user: string,
    private readonly sink: LiveSink,
    private readonly limits: SubscriberLimits,
    private readonly now: () => number,
    private readonly onDrop: (cls: MessageClass, count: number) => void
  ) {}

  /** Queues a message; `bytes` is its size on the wire (string length is close enough for JSON). */
  enqueue (data: string | Uint8Array, cls: MessageClass): void {
    if (this.closed) return
    const bytes = typeof data === 'string' ? data.length : data.byteLength
    if (cls === ALERT) this.queue.splice(this.afterLastKept(), 0, { data, cls, bytes })
    else this.queue.push({ data, cls, bytes })
    this.queuedBytes += bytes
    if (this.queuedBytes > this.limits.maxQueueBytes) this.shed()
    this.pump()
  }

  /** True when the socket has accepted nothing for longer than blockedTimeoutMs. */
  blocked (nowMs: number): boolean {
    return this.waitingSince !== null && nowMs - this.waitingSince > this.limits.blockedTimeoutMs
  }

  close (code: number, reason: string): void {
    if (this.closed) return
    this.closed = true
    this.queue = []
    this.queuedBytes = 0
    try { this.sink.close(code, reason) } catch { this.sink.terminate() }
  }

  terminate (): void {
    this.closed = true
    this.queue = []
    this.queuedBytes = 0
    this.sink.terminate()
  }

  /** Index just after the last queued message that is never dropped (0 when none). Alerts are rare: a scan is fine. */
  private afterLastKept (): number {
    let i = this.queue.length
    while (i > 0 && this.queue[i - 1]!.cls < KEEP) i--
    return i
  }

  private pump (): void {
    while (this.queue.length > 0 && !this.closed) {
      if (this.inFlightBytes >= this.limits.highWaterBytes) {
        this.waitingSince ??= this.now()
        return
      }
      const e = this.queue.shift()!
      this.queuedBytes -= e.bytes
      this.inFlightBytes += e.bytes
      this.inFlight.push(e.bytes)
      this.sink.send(e.data, this.onSent)
    }
  }

  private readonly onSent = (err?: Error): void => {
    this.inFlightBytes -= this.inFlight.shift() ?? 0
    this.waitingSince = null
    if (err !== undefined) return // the socket is going away; its close handler unsubscribes
    this.pump()
  }

  /**
   * Drops the oldest ECG, then the oldest updates, down to 3/4 of the cap (never KEEP). Shedding a
   * quarter at once keeps the scan rare: a frozen tab costs ingest one pass per many frames.
   */
  private shed (): void {
    const max = this.limits.maxQueueBytes * 0.75
    for (const cls of [ECG, UPDATE] as const) {
      let n = 0
      const keep: Entry[] = []
      for (const e of this.queue) {
        if (this.queuedBytes > max && e.cls === cls) {
          this.queuedBytes -= e.bytes
          n++
        } else {
          keep.push(e)
        }
      }
      this.queue = keep
      if (n > 0) {
        this.dropped[cls] = this.dropped[cls]! + n
        this.onDrop(cls, n)
      }
      if (this.queuedBytes <= max) return
    }
  }
}
