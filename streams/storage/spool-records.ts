/**
 * The spool's record format (see spool.ts), shared by the spool and by the sink's worker thread,
 * which checks and parses the records the spool hands it (sink-worker.ts): the main thread only
 * walks their headers to cut batches.
 *
 *   [u32 payload length][u32 crc32 of the rest][f64 received-at ms][u32 kind << 28 | points][payload]
 */
import { crc32 } from 'node:zlib'
import { StreamError } from './errors.js'

/** Bytes of a record's header. */
export const SPOOL_RECORD_HEADER = 20
/** Record kinds (see spool.ts). */
export const SPOOL_RECORD_LINES = 0
export const SPOOL_RECORD_FRAME = 1
export type SpoolRecordKind = typeof SPOOL_RECORD_LINES | typeof SPOOL_RECORD_FRAME
export const KIND_SHIFT = 28
export const POINTS_MASK = (1 << KIND_SHIFT) - 1

export function spoolSegmentName (n: number): string { return `seg-${String(n).padStart(12, '0')}.log` }

/** One checked record of a batch; `at` is its offset in the batch's buffer. */
export interface SpoolRecord {
  kind: number
  points: number
  receivedAtMs: number
  payload: Buffer
  at: number
}

/**
 * The records of `buf` (whole records, as Spool.readRaw() hands them out), each checked against
 * its checksum: a record that fails it throws AMB_ERR_SPOOL_CORRUPT naming its place, which
 * `segment` and `offset` (where `buf` starts on disk) give.
 */
export function * spoolRecords (buf: Buffer, segment: number, offset: number): Generator<SpoolRecord> {
  let at = 0
  while (at + SPOOL_RECORD_HEADER <= buf.length) {
    const len = buf.readUInt32LE(at)
    const end = at + SPOOL_RECORD_HEADER + len
    if (end > buf.length || crc32(buf.subarray(at + 8, end)) !== buf.readUInt32LE(at + 4)) {
      throw new StreamError('AMB_ERR_SPOOL_CORRUPT', `spool record at ${spoolSegmentName(segment)}:${offset + at} fails its checksum`)
    }
    const field = buf.readUInt32LE(at + 16)
    yield { kind: field >>> KIND_SHIFT, points: field & POINTS_MASK, receivedAtMs: buf.readDoubleLE(at + 8), payload: buf.subarray(at + SPOOL_RECORD_HEADER, end), at }
    at = end
  }
  if (at !== buf.length) throw new StreamError('AMB_ERR_SPOOL_CORRUPT', `spool record at ${spoolSegmentName(segment)}:${offset + at} is cut short`)
}

/** What a walk over record headers found: whole records that fit the limits. */
export interface HeaderScan {
  /** Bytes of the whole records taken. */
  used: number
  records: number
  points: number
  /** Payload bytes of the records taken. */
  payloadBytes: number
  /** Bytes `buf` must hold to take one more record; 0 when a limit stopped the walk. */
  need: number
}

/**
 * Walks the headers of the records at the start of `buf` (no checksum: the worker checks them),
 * taking records while under `maxBytes` of payload and `maxPoints`.
 */
export function scanRecordHeaders (buf: Buffer, maxBytes: number, maxPoints: number): HeaderScan {
  let used = 0
  let records = 0
  let points = 0
  let payloadBytes = 0
  let need = 0
  while (payloadBytes < maxBytes && points < maxPoints) {
    if (used + SPOOL_RECORD_HEADER > buf.length) { need = used + SPOOL_RECORD_HEADER; break }
    const len = buf.readUInt32LE(used)
    if (used + SPOOL_RECORD_HEADER + len > buf.length) { need = used + SPOOL_RECORD_HEADER + len; break }
    points += buf.readUInt32LE(used + 16) & POINTS_MASK
    payloadBytes += len
    records++
    used += SPOOL_RECORD_HEADER + len
  }
  return { used, records, points, payloadBytes, need }
}
