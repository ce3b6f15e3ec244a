/** The alert engine's error catalogue. Callers match on `code`. */
import { catalogue, CodedError, createError, type ErrorDefinition } from '../../decoders/index.js'

export type AlertErrorCode =
  | 'AMB_ERR_ALERT_RULES'    // the per-hospital rules file is unreadable or invalid (fails the start)
  | 'AMB_ERR_ALERT_JOURNAL'  // the alert journal could not be read or written

/** A bad rules file needs an edit; a failing disk may recover, but not by retrying here. */
export const ALERT_ERRORS: Readonly<Record<AlertErrorCode, ErrorDefinition<AlertErrorCode>>> = catalogue<AlertErrorCode>(
  createError('AMB_ERR_ALERT_RULES', 'the per-hospital alert rules file is unreadable or invalid; the gateway does not start', 500),
  createError('AMB_ERR_ALERT_JOURNAL', 'the alert journal (or shared alert state) could not be read or written', 500)
)

export class AlertError extends CodedError<AlertErrorCode> {
  override readonly name = 'AlertError'

  constructor (code: AlertErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(ALERT_ERRORS[code], message, { cause: options.cause })
  }
}
