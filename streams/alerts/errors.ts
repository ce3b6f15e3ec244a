/** The alert engine's error catalogue. Callers match on `code`. */
export type AlertErrorCode =
  | 'AMB_ERR_ALERT_RULES'    // the per-hospital rules file is unreadable or invalid (fails the start)
  | 'AMB_ERR_ALERT_JOURNAL'  // the alert journal could not be read or written

export class AlertError extends Error {
  override readonly name = 'AlertError'
  readonly code: AlertErrorCode

  constructor (code: AlertErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause })
    this.code = code
  }

  /** A bad rules file needs an edit; a failing disk may recover, but not by retrying here. */
  canRetry (): boolean { return false }
}
