/** The streams area's error catalogue (spool, sink, dead letters). Callers match on `code`. */
export type StreamErrorCode =
  | 'AMB_ERR_SPOOL_FULL'
  | 'AMB_ERR_SPOOL_CLOSED'
  | 'AMB_ERR_SPOOL_CORRUPT'
  | 'AMB_ERR_SPOOL_IO'
  | 'AMB_ERR_DISK_FULL'
  | 'AMB_ERR_INFLUX_REJECTED'
  | 'AMB_ERR_INFLUX_UNAVAILABLE'

export class StreamError extends Error {
  override readonly name = 'StreamError'
  readonly code: StreamErrorCode
  /** HTTP status for the HTTP ingest, where one applies. */
  readonly statusCode: number
  private readonly retryAfterMs: number | null

  constructor (code: StreamErrorCode, message: string, options: { cause?: unknown, statusCode?: number, retryAfterMs?: number } = {}) {
    super(message, { cause: options.cause })
    this.code = code
    this.statusCode = options.statusCode ?? 503
    this.retryAfterMs = options.retryAfterMs ?? null
  }

  canRetry (): boolean {
    return this.retryAfterMs !== null
  }

  /** How long a sender should wait before trying again, in ms (null: retrying cannot help). */
  retryAfter (): number | null {
    return this.retryAfterMs
  }
}
