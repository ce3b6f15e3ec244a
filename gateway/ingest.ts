/**
 * The ingest path every frame takes, whatever its transport: decode and validate once, append
 * the frame as received to the spool (a frame record: durable before the caller acknowledges;
 * its line protocol is written when the spool drains), then hand the validated frame to live
 * consumers (the alert engine evaluates this decoded frame, here, not the spooled copy). A refused frame is counted, kept in the dead letters with
 * its reason, and never disturbs the next frame.
 */
import { EventEmitter } from 'node:events'
import { FrameDecoder, FrameError, type Frame } from '../decoders/index.js'
import type { DeadLetterStore } from '../streams/index.js'
import { countFrameLines, frameRecord } from '../streams/index.js'
import { SPOOL_RECORD_FRAME, type Spool } from '../streams/index.js'
import type { Metrics } from './metrics.js'

export type IngestResult =
  | { ok: true, frame: Frame, points: number, replay: boolean }
  | { ok: false, error: FrameError }

export interface IngestEvents {
  frame: [frame: Frame, transport: string]
}

export class Ingest extends EventEmitter<IngestEvents> {
  /** unit → boot → highest seq seen (its decimal) to tell resends from new frames. */
  private readonly lastSeq = new Map<string, { boot: string, seq: string }>()
  /** framesAccepted's child per transport: prom-client hashes a label object on every inc(). */
  private readonly acceptedBy = new Map<string, ReturnType<Metrics['framesAccepted']['labels']>>()

  constructor (
    private readonly decoder: FrameDecoder,
    private readonly spool: Spool,
    private readonly deadLetters: DeadLetterStore,
    private readonly metrics: Metrics
  ) {
    super()
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
    // The frame's bytes go into the spool record (one copy); the header counts its points.
    const lines = countFrameLines(frame)
    const t0 = performance.now()
    await this.spool.appendRecord(frameRecord(unit, bytes), lines.points, SPOOL_RECORD_FRAME)
    this.metrics.spoolAppendSeconds.observe((performance.now() - t0) / 1000)
    let accepted = this.acceptedBy.get(transport)
    if (accepted === undefined) this.acceptedBy.set(transport, accepted = this.metrics.framesAccepted.labels(transport))
    accepted.inc()
    this.metrics.frameBytes.inc(frame.byteLength)
    this.metrics.pointsSpooled.inc(lines.points)
    const replay = this.isReplay(frame)
    if (replay) this.metrics.framesReplayed.inc()
    this.emit('frame', frame, transport)
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
