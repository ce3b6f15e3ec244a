/**
 * The decoder's error catalogue. Every rejection of a frame carries one of these stable codes;
 * callers (metrics, dead letters, HTTP answers) match on `code`, never on the message.
 */
import { catalogue, CodedError, createError, type ErrorDefinition } from './errors-factory.js'

export type FrameErrorCode =
  | 'AMB_ERR_FRAME_TOO_LARGE'
  | 'AMB_ERR_FRAME_EMPTY'
  | 'AMB_ERR_FRAME_MALFORMED'
  | 'AMB_ERR_UNIT_MISMATCH'
  | 'AMB_ERR_FIELD_MISSING'
  | 'AMB_ERR_FIELD_INVALID'
  | 'AMB_ERR_UNKNOWN_SIGN'
  | 'AMB_ERR_VALUE_OUT_OF_RANGE'
  | 'AMB_ERR_WAVEFORM_INCONSISTENT'
  | 'AMB_ERR_TIME_IN_FUTURE'
  | 'AMB_ERR_TIME_TOO_OLD'

/** What each code means and the HTTP status the HTTP ingest answers with. */
export const FRAME_ERRORS: Readonly<Record<FrameErrorCode, ErrorDefinition<FrameErrorCode>>> = catalogue<FrameErrorCode>(
  createError('AMB_ERR_FRAME_TOO_LARGE', 'frame is larger than maxFrameBytes', 413),
  createError('AMB_ERR_FRAME_EMPTY', 'frame has no bytes', 400),
  createError('AMB_ERR_FRAME_MALFORMED', 'bytes are not a valid ambulink.v1.TelemetryFrame protobuf', 400),
  createError('AMB_ERR_UNIT_MISMATCH', 'unit_id differs from the authenticated unit', 403),
  createError('AMB_ERR_FIELD_MISSING', 'a required field (unit_id, boot_id, seq, captured_at_ms) is absent', 400),
  createError('AMB_ERR_FIELD_INVALID', 'an identifier or enum has a value outside the contract', 400),
  createError('AMB_ERR_UNKNOWN_SIGN', 'numeric with an unspecified or unknown VitalSign', 400),
  createError('AMB_ERR_VALUE_OUT_OF_RANGE', 'a value lies outside its plausibility range', 422),
  createError('AMB_ERR_WAVEFORM_INCONSISTENT', 'waveform rate, scale, length or leads are inconsistent', 422),
  createError('AMB_ERR_TIME_IN_FUTURE', 'device time is further in the future than maxFutureSkewMs', 422),
  createError('AMB_ERR_TIME_TOO_OLD', 'device time is older than maxPastAgeMs', 422)
)

/** A rejected frame is rejected for good: sending the same bytes again cannot help. */
export class FrameError extends CodedError<FrameErrorCode> {
  override readonly name = 'FrameError'

  constructor (code: FrameErrorCode, message: string, options?: { cause?: unknown }) {
    super(FRAME_ERRORS[code], message, { cause: options?.cause })
  }
}
