/** The streams area's error catalogue (spool, sink, dead letters). Callers match on `code`. */
import { catalogue, CodedError, createError, type CodedErrorOptions, type ErrorDefinition } from '../../decoders/index.js'

export type StreamErrorCode =
  | 'AMB_ERR_SPOOL_FULL'
  | 'AMB_ERR_SPOOL_CLOSED'
  | 'AMB_ERR_SPOOL_CORRUPT'
  | 'AMB_ERR_SPOOL_UNDECODABLE'
  | 'AMB_ERR_SPOOL_DRAIN_FAILED'
  | 'AMB_ERR_SPOOL_IO'
  | 'AMB_ERR_DISK_FULL'
  | 'AMB_ERR_INFLUX_REJECTED'
  | 'AMB_ERR_INFLUX_UNAVAILABLE'

/** `status` is what the HTTP ingest answers with; the last four never reach a sender. */
export const STREAM_ERRORS: Readonly<Record<StreamErrorCode, ErrorDefinition<StreamErrorCode>>> = catalogue<StreamErrorCode>(
  createError('AMB_ERR_SPOOL_FULL', 'the spool is at maxSpoolBytes', 503),
  createError('AMB_ERR_SPOOL_CLOSED', 'a frame arrived while the spool was closing', 503),
  createError('AMB_ERR_SPOOL_IO', 'the disk refused a spool write or fsync; the spool refuses frames until a probe write succeeds', 503),
  createError('AMB_ERR_DISK_FULL', 'as AMB_ERR_SPOOL_IO, because the disk is full (ENOSPC/EDQUOT)', 503),
  createError('AMB_ERR_SPOOL_CORRUPT', 'a spool record fails its checksum inside a segment', 503),
  createError('AMB_ERR_SPOOL_UNDECODABLE', 'a spooled frame could not be turned into line protocol when draining (a record kind this version does not know, or a frame the current decoder refuses); a refused frame goes to the dead letters, an unknown kind stops the sink with the record kept', 503),
  createError('AMB_ERR_SPOOL_DRAIN_FAILED', 'turning a spooled frame into line protocol failed with an internal error (a bug in the decoder or the line-protocol writer, not a refusal); the frame goes to the dead letters and the drain goes on', 503),
  createError('AMB_ERR_INFLUX_REJECTED', 'InfluxDB refused a line\'s content; it goes to the dead letters', 503),
  createError('AMB_ERR_INFLUX_UNAVAILABLE', 'InfluxDB did not answer in time; the sink retries', 503)
)

export class StreamError extends CodedError<StreamErrorCode> {
  override readonly name = 'StreamError'

  /** `retryAfterMs` given: how long a sender should wait before trying again. */
  constructor (code: StreamErrorCode, message: string, options: CodedErrorOptions = {}) {
    super(STREAM_ERRORS[code], message, options)
  }
}
