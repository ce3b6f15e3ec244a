/**
 * Frame records (spool record kind 1, see spool.ts): what ingest spools for an accepted frame is
 * the frame as received, not its line protocol (issue 12, goal 5: a 12-lead frame of ~2.3 KB
 * wrote ~19 KB of line protocol). The line protocol is written when the spool drains, from the
 * same bytes, by the same pure function (line-protocol.ts), so the points are exactly those
 * ingest would have written.
 *
 * Payload: [u8 format = 1][u8 unit id length][unit id, latin1][the frame's protobuf bytes]. The
 * unit id is the authenticated identity the frame was validated against (decode() checks the
 * frame's unit_id equals it).
 *
 * Draining decodes the frame again with the time and size limits lifted: the frame was validated
 * at ingest and acknowledged, so a clock that moved on (store-and-forward past maxPastAgeMs by
 * the time InfluxDB is back) or a limit an operator lowered since must not refuse it. Should the
 * decoder of a later version refuse it all the same, it goes to the dead letters (never
 * silently dropped) with AMB_ERR_SPOOL_UNDECODABLE. Should decoding or writing its line protocol
 * fail otherwise (a bug: an error that is not the decoder's coded refusal), it goes there too,
 * with AMB_ERR_SPOOL_DRAIN_FAILED: one frame a bug cannot handle must not stop the storage of
 * every unit's frames behind it.
 */
import { FrameDecoder, FrameError } from '../../decoders/index.js'
import { drainFaultUnit } from './drain-fault.js'
import { LineBuffer } from './line-buffer.js'
import { writeFrameLines } from './line-protocol.js'
import { SPOOL_RECORD_HEADER } from './spool.js'
import type { DeadLetterStore } from './dead-letter.js'
import { StreamError } from './errors.js'

const FORMAT = 1

/**
 * A spool record (header room reserved, for Spool.appendRecord with SPOOL_RECORD_FRAME) holding
 * the frame `bytes` validated for `unit`.
 */
export function frameRecord (unit: string, bytes: Uint8Array): Buffer {
  const unitLen = unitIdLength(unit)
  const rec = Buffer.allocUnsafe(SPOOL_RECORD_HEADER + 2 + unitLen + bytes.length)
  rec.set(bytes, writeHead(rec, unit, unitLen))
  return rec
}

/**
 * The start of a frame record for `unit` (header room reserved, the format and the unit id),
 * for Spool.appendRecord with SPOOL_RECORD_FRAME and the frame's bytes as its `tail`: the same
 * record on disk as frameRecord()'s, without copying the frame (ingest).
 */
export function frameRecordHead (unit: string): Buffer {
  const unitLen = unitIdLength(unit)
  const head = Buffer.allocUnsafe(SPOOL_RECORD_HEADER + 2 + unitLen)
  writeHead(head, unit, unitLen)
  return head
}

function unitIdLength (unit: string): number {
  const n = Buffer.byteLength(unit, 'latin1')
  if (n > 255) throw new RangeError('unit id longer than 255 bytes')
  return n
}

/** Writes the format and the unit id after the header room; returns where the frame goes. */
function writeHead (rec: Buffer, unit: string, unitLen: number): number {
  let at = SPOOL_RECORD_HEADER
  rec[at++] = FORMAT
  rec[at++] = unitLen
  return at + rec.write(unit, at, 'latin1')
}

/** The unit id and frame bytes of a frame record's payload. */
export function parseFrameRecord (payload: Buffer): { unit: string, bytes: Buffer } {
  if (payload.length < 2 || payload[0] !== FORMAT) throw new StreamError('AMB_ERR_SPOOL_UNDECODABLE', `frame record of format ${payload[0] ?? 'none'}, expected ${FORMAT}`)
  const unitLen = payload[1]!
  if (payload.length < 2 + unitLen) throw new StreamError('AMB_ERR_SPOOL_UNDECODABLE', 'frame record shorter than its unit id')
  return { unit: payload.toString('latin1', 2, 2 + unitLen), bytes: payload.subarray(2 + unitLen) }
}

/** Turns frame records into line protocol (one decoder and scratch buffer, reused). */
export class FrameRecordExpander {
  private readonly decoder = new FrameDecoder({ maxFrameBytes: Infinity, maxFutureSkewMs: Infinity, maxPastAgeMs: Infinity, maxWaveformSpanMs: Infinity })
  private readonly out = new LineBuffer(64 * 1024)
  /** Test hook (drain-fault.ts): the unit whose frames fail as a bug would; null in production. */
  private readonly faultUnit = drainFaultUnit()

  /**
   * The record's line protocol (a fresh buffer). Throws only StreamErrors:
   * AMB_ERR_SPOOL_UNDECODABLE (the record or the decoder's refusal) or AMB_ERR_SPOOL_DRAIN_FAILED
   * (anything else: a bug).
   */
  expand (payload: Buffer): Buffer {
    const out = this.out
    out.reset()
    this.expandInto(payload, out)
    return Buffer.from(out.buf.subarray(0, out.length))
  }

  /**
   * Appends the record's line protocol to `out`; throws AMB_ERR_SPOOL_UNDECODABLE or
   * AMB_ERR_SPOOL_DRAIN_FAILED having written nothing (the frame is decoded whole before a line
   * is written, and a failed write is rolled back). The sink's worker writes a
   * whole batch this way into one buffer: a fresh buffer per frame record, then their
   * concatenation, cost it more than the decoding and the line protocol together (issue 12).
   */
  expandInto (payload: Buffer, out: LineBuffer): void {
    const { unit, bytes } = parseFrameRecord(payload)
    let frame
    try {
      frame = this.decoder.decode(bytes, unit, 0)
    } catch (err) {
      if (err instanceof FrameError) throw new StreamError('AMB_ERR_SPOOL_UNDECODABLE', `spooled frame of unit ${unit} refused when draining: ${err.message}`, { cause: err })
      throw drainFailed(unit, err)
    }
    // Nothing of this record stays in `out` if writing its lines fails (a bug): the buffer goes
    // back to where the record started.
    const start = out.length
    try {
      if (this.faultUnit === unit) throw new TypeError('line protocol writer failed (injected by AMBULINK_FAULT_DRAIN_UNIT)')
      writeFrameLines(frame, out)
    } catch (err) {
      out.length = start
      throw drainFailed(unit, err)
    }
  }
}

/** An internal error while draining a frame of `unit`, as the coded error the dead letters keep. */
export function drainFailed (unit: string | undefined, err: unknown): StreamError {
  const e = err as Error
  return new StreamError('AMB_ERR_SPOOL_DRAIN_FAILED', `spooled frame of unit ${unit ?? '?'} could not be turned into line protocol (internal error: ${e?.name ?? 'Error'}: ${e?.message ?? String(err)})`.slice(0, 2000), { cause: err })
}

/**
 * The spool's `expandFrame` for the gateway: a frame the decoder refuses when draining goes to
 * the dead letters (with its bytes, under AMB_ERR_SPOOL_UNDECODABLE) and the drain goes on; when
 * the dead letters cannot take it either, the reader stops with the record still spooled.
 */
export function spoolFrameExpander (deadLetters: DeadLetterStore, onUndecodable?: (err: StreamError, kept: boolean) => void): (payload: Buffer) => Promise<Buffer> {
  const expander = new FrameRecordExpander()
  return async payload => {
    try {
      return expander.expand(payload)
    } catch (thrown) {
      const parsed = (() => { try { return parseFrameRecord(payload) } catch { return null } })()
      const err = thrown instanceof StreamError ? thrown : drainFailed(parsed?.unit, thrown)
      const kept = await deadLetters.add({ source: 'spool', code: err.code, reason: err.message, unit: parsed?.unit, payload: parsed?.bytes ?? payload })
      // Told after the dead letters answered, so "kept" is only ever reported when it is true.
      onUndecodable?.(err, kept)
      if (!kept) throw err
      return Buffer.alloc(0)
    }
  }
}
