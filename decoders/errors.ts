/**
 * The decoder's error catalogue. Every rejection of a frame carries one of these stable codes;
 * callers (metrics, dead letters, HTTP answers) match on `code`, never on the message.
 */
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
export const FRAME_ERRORS: Readonly<Record<FrameErrorCode, { status: number, description: string }>> = {
  AMB_ERR_FRAME_TOO_LARGE: { status: 413, description: 'frame is larger than maxFrameBytes' },
  AMB_ERR_FRAME_EMPTY: { status: 400, description: 'frame has no bytes' },
  AMB_ERR_FRAME_MALFORMED: { status: 400, description: 'bytes are not a valid ambulink.v1.TelemetryFrame protobuf' },
  AMB_ERR_UNIT_MISMATCH: { status: 403, description: 'unit_id differs from the authenticated unit' },
  AMB_ERR_FIELD_MISSING: { status: 400, description: 'a required field (unit_id, boot_id, seq, captured_at_ms) is absent' },
  AMB_ERR_FIELD_INVALID: { status: 400, description: 'an identifier or enum has a value outside the contract' },
  AMB_ERR_UNKNOWN_SIGN: { status: 400, description: 'numeric with an unspecified or unknown VitalSign' },
  AMB_ERR_VALUE_OUT_OF_RANGE: { status: 422, description: 'a value lies outside its plausibility range' },
  AMB_ERR_WAVEFORM_INCONSISTENT: { status: 422, description: 'waveform rate, scale, length or leads are inconsistent' },
  AMB_ERR_TIME_IN_FUTURE: { status: 422, description: 'device time is further in the future than maxFutureSkewMs' },
  AMB_ERR_TIME_TOO_OLD: { status: 422, description: 'device time is older than maxPastAgeMs' }
}

export class FrameError extends Error {
  override readonly name = 'FrameError'
  readonly code: FrameErrorCode
  readonly statusCode: number

  constructor (code: FrameErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.statusCode = FRAME_ERRORS[code].status
  }

  /** A rejected frame is rejected for good: sending the same bytes again cannot help. */
  canRetry (): boolean {
    return false
  }
}
