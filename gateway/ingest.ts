/**
 * The ingest path every frame takes, whatever its transport: decode and validate once, hand the
 * validated frame to the live consumers at once ('validated': the alert engine, the clinicians'
 * dashboard and the cluster's roster get this decoded frame, here, while its spool append is in
 * flight, so an alert never waits for an fsync), append the frame as received to the spool (a
 * frame record: durable before the caller acknowledges; its line protocol is written when the
 * spool drains), and only then announce it as stored ('frame': the research live stream). A
 * refused frame is counted, kept in the dead letters with its reason, and never disturbs the
 * next frame.
 *
 * The frame's outcome depends only on decoding, validation and the spool: a listener that throws
 * (a bug in a live consumer) is logged and counted (`ambulink_frame_consumer_errors_total`) and
 * the other listeners still run; the frame is acknowledged as if nothing had happened.
 *
 * A frame reaches each consumer once (handed-over.ts): a device's resend of it (its first copy
 * still being written, acknowledged with the PUBACK lost, or refused by the spool) is stored
 * again (idempotent) but not evaluated, drawn or announced again, so it raises nothing twice, the
 * dashboard's rings hold it once and a researcher's live stream carries its samples once. It is
 * announced at its first copy the spool keeps: when the spool refused the first copy, the resend
 * stored later is announced. A frame the spool refuses (disk full or failing, spool bound) has
 * been evaluated: it was really measured, so its alert stands (docs/alerts.md, "Alerts before
 * storage"). The memory is the process': after a restart a resend of a frame stored before it is
 * evaluated as late and announced again (docs/dataspace.md, "Live messages").
 */
import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { FrameDecoder, FrameError, type Frame } from '../decoders/index.js'
import type { DeadLetterStore } from '../streams/index.js'
import { countFrameLines, frameRecordHead } from '../streams/index.js'
import { SPOOL_RECORD_FRAME, type Spool } from '../streams/index.js'
import { HandedOver } from './handed-over.js'
import type { Metrics } from './metrics.js'

export type IngestResult =
  | { ok: true, frame: Frame, points: number, replay: boolean }
  | { ok: false, error: FrameError }

export interface IngestEvents {
  /** Decoded and validated, its spool append not yet durable (it may still be refused). In arrival order. */
  validated: [frame: Frame, transport: string]
  /**
   * Durable in the spool (the device is acknowledged next), once per frame: at its first stored
   * copy, not again for a resend of a frame already announced (handed-over.ts). In arrival order.
   */
  frame: [frame: Frame, transport: string]
}

/** A consumer that keeps failing is logged at most this often (every failure is counted), ms. */
const CONSUMER_LOG_EVERY_MS = 10_000

/** The label of a listener added with `on()` rather than `consume()`. */
const UNNAMED_CONSUMER = 'other'

export class Ingest extends EventEmitter<IngestEvents> {
  /** unit → boot → highest seq seen (its decimal) to tell resends from new frames. */
  private readonly lastSeq = new Map<string, { boot: string, seq: string }>()
  /**
   * Frames handed to the 'validated' consumers and announced as stored, per unit: a resend is not
   * handed over again, whether its first copy was stored, is still in flight or was refused by the
   * spool, nor announced again once a copy of it was.
   */
  private readonly handedOver = new HandedOver()
  /** framesAccepted's child per transport: prom-client hashes a label object on every inc(). */
  private readonly acceptedBy = new Map<string, ReturnType<Metrics['framesAccepted']['labels']>>()

  /** Consumer names of the listeners added with consume() (the metric's `consumer` label). */
  private readonly consumerNames = new WeakMap<object, string>()
  /** consumer → when its failure was last logged, and the failures not logged since. */
  private readonly consumerLogged = new Map<string, { atMs: number, unlogged: number }>()

  constructor (
    private readonly decoder: FrameDecoder,
    private readonly spool: Spool,
    private readonly deadLetters: DeadLetterStore,
    private readonly metrics: Metrics,
    private readonly log: Logger | null = null
  ) {
    super()
  }

  /**
   * Adds a listener under a consumer name (a stable, low-cardinality label such as `live_hub`):
   * what it throws is isolated (see deliver()) and counted under that name. Remove it with off().
   */
  consume<K extends keyof IngestEvents> (event: K, consumer: string, listener: (...args: IngestEvents[K]) => void): void {
    this.consumerNames.set(listener, consumer)
    this.on(event, listener as never)
  }

  /**
   * A consumer failed on a unit's frame: logged (unit id only, never the encounter; at most once
   * per CONSUMER_LOG_EVERY_MS per consumer) and counted in `ambulink_frame_consumer_errors_total`.
   * Consumers that catch their own errors (the alert engine's wiring) report them here too.
   */
  consumerFailed (consumer: string, unit: string, err: unknown): void {
    this.metrics.frameConsumerErrors.inc({ consumer })
    const now = Date.now()
    const seen = this.consumerLogged.get(consumer)
    if (seen !== undefined && now - seen.atMs < CONSUMER_LOG_EVERY_MS) { seen.unlogged++; return }
    this.log?.error({ err, consumer, unit, unloggedSince: seen?.unlogged ?? 0 }, 'a frame consumer failed; the frame stands and the other consumers ran')
    this.consumerLogged.set(consumer, { atMs: now, unlogged: 0 })
  }

  /**
   * Hands a frame to every listener of `event`, each on its own: a listener that throws is
   * reported (consumerFailed) and the next one still runs. The frame's outcome (acknowledged or
   * not) depends only on decoding, validation and the spool: a bug in a live consumer (the
   * dashboard's hub, the roster) must not become an ingest outage for the unit, whose device
   * would resend a frame already stored, again and again.
   */
  private deliver (event: keyof IngestEvents, frame: Frame, transport: string): void {
    // A copy, as emit() makes one: a listener removed meanwhile still gets this frame (raw: a
    // once() listener is removed by its wrapper).
    const ls = this.rawListeners(event) as Array<(f: Frame, t: string) => void>
    for (let i = 0; i < ls.length; i++) {
      const l = ls[i]!
      try {
        l.call(this, frame, transport)
      } catch (err) {
        this.consumerFailed(this.consumerNames.get(l) ?? UNNAMED_CONSUMER, frame.unitId, err)
      }
    }
  }

  /**
   * Ingests one frame from `unit`. Resolves when the outcome is durable: accepted frames are in
   * the spool, refused ones in the dead letters. Rejects only when the frame could not be kept
   * at all (spool full or failing): the caller must then not acknowledge it.
   */
  async ingest (unit: string, bytes: Uint8Array, transport: string): Promise<IngestResult> {
    let frame: Frame
    try {
      frame = this.decoder.decode(bytes, unit)
    } catch (err) {
      if (!(err instanceof FrameError)) throw err
      this.metrics.framesRejected.inc({ reason: err.code })
      const kept = await this.deadLetters.add({ source: 'decoder', code: err.code, reason: err.message, unit, transport, payload: bytes })
      if (kept) this.metrics.deadLetters.inc({ source: 'decoder' })
      return { ok: false, error: err }
    }
    // The frame's bytes go into the spool record as they are (not copied: they stay untouched
    // until the append settles); the header counts its points.
    const lines = countFrameLines(frame)
    const t0 = performance.now()
    // Queued in the group commit first (appendRecord is synchronous up to its first await), then
    // evaluated while the write and fsync run: the alert leaves before the frame is durable.
    const stored = this.spool.appendRecord(frameRecordHead(unit), lines.points, SPOOL_RECORD_FRAME, bytes)
    // A resend of a frame already evaluated (its first copy in flight, stored, or refused by the
    // spool) is not evaluated again. A listener that throws is isolated (deliver()): the frame's
    // fate is its spool append's.
    if (this.handedOver.first(frame.unitId, frame.bootId, frame.seq, frame.capturedAtMs)) this.deliver('validated', frame, transport)
    await stored
    this.metrics.spoolAppendSeconds.observe((performance.now() - t0) / 1000)
    let accepted = this.acceptedBy.get(transport)
    if (accepted === undefined) this.acceptedBy.set(transport, accepted = this.metrics.framesAccepted.labels(transport))
    accepted.inc()
    this.metrics.frameBytes.inc(frame.byteLength)
    this.metrics.pointsSpooled.inc(lines.points)
    const replay = this.isReplay(frame)
    if (replay) this.metrics.framesReplayed.inc()
    // Announced once: a resend of a frame already stored is not (the research stream would carry
    // its samples twice); the resend of a copy the spool refused is the first stored, and is.
    if (this.handedOver.firstStored(frame.unitId, frame.bootId, frame.seq, frame.capturedAtMs)) this.deliver('frame', frame, transport)
    return { ok: true, frame, points: lines.points, replay }
  }

  private isReplay (f: Frame): boolean {
    const seq = f.seq
    const last = this.lastSeq.get(f.unitId)
    if (last === undefined || last.boot !== f.bootId) {
      this.lastSeq.set(f.unitId, { boot: f.bootId, seq })
      return false
    }
    if (!decimalAbove(seq, last.seq)) return true
    last.seq = seq
    return false
  }
}

/**
 * a > b for the decimals of two uint64 (no sign, no leading zeros, as the decoder writes them):
 * the longer is larger, and equal lengths compare as strings. No BigInt per frame.
 */
export function decimalAbove (a: string, b: string): boolean {
  return a.length !== b.length ? a.length > b.length : a > b
}
