/**
 * The dataspace's error catalogue: permits (401), the permit's scope (403), requests (400),
 * the store behind extracts (502/503), the audit log. Callers match on `code`; every code is
 * described here and in the README (Dataspace) (a test checks both). Refusals are counted in
 * `ambulink_dataspace_refused_total{code}` and written to the audit log.
 */
import { catalogue, CodedError, createError, type CodedErrorOptions, type ErrorDefinition } from '../../decoders/index.js'

export type DataspaceErrorCode =
  | 'AMB_ERR_PERMIT_MISSING'
  | 'AMB_ERR_PERMIT_INVALID'
  | 'AMB_ERR_PERMIT_EXPIRED'
  | 'AMB_ERR_PERMIT_REVOKED'
  | 'AMB_ERR_PERMIT_BAD_GRANT'
  | 'AMB_ERR_PERMIT_UNKNOWN_ISSUER'
  | 'AMB_ERR_PERMIT_ALGORITHM'
  | 'AMB_ERR_PERMIT_NOT_YET_VALID'
  | 'AMB_ERR_PERMIT_RESEARCHER_UNBOUND'
  | 'AMB_ERR_PERMIT_ISSUER_UNAVAILABLE'
  | 'AMB_ERR_DATASPACE_DATASET_FORBIDDEN'
  | 'AMB_ERR_DATASPACE_FIELD_FORBIDDEN'
  | 'AMB_ERR_DATASPACE_WINDOW_FORBIDDEN'
  | 'AMB_ERR_DATASPACE_BAD_REQUEST'
  | 'AMB_ERR_DATASPACE_FORMAT'
  | 'AMB_ERR_DATASPACE_LEVEL_UNSUPPORTED'
  | 'AMB_ERR_DATASPACE_NOT_WEBSOCKET'
  | 'AMB_ERR_DATASPACE_TOO_LARGE'
  | 'AMB_ERR_DATASPACE_STORE_UNAVAILABLE'
  | 'AMB_ERR_DATASPACE_QUERY_FAILED'
  | 'AMB_ERR_DATASPACE_SLOW_CONSUMER'
  | 'AMB_ERR_DATASPACE_KEYS'
  | 'AMB_ERR_DATASPACE_LEVEL_FORBIDDEN'
  | 'AMB_ERR_DATASPACE_BUDGET_EXHAUSTED'
  | 'AMB_ERR_AUDIT_UNAVAILABLE'
  | 'AMB_ERR_AUDIT_TAMPERED'
  | 'AMB_ERR_AUDIT_INTEGRITY'

/** What each code means; `status` is the HTTP status (for the live stream, the WebSocket close code). */
export type DataspaceErrorInfo = ErrorDefinition<DataspaceErrorCode>

export const DATASPACE_ERRORS: Readonly<Record<DataspaceErrorCode, DataspaceErrorInfo>> = catalogue<DataspaceErrorCode>(
  createError('AMB_ERR_PERMIT_MISSING', 'no data permit: send it as `Authorization: Bearer <permit>`', 401),
  createError('AMB_ERR_PERMIT_INVALID', 'the permit is malformed or its signature does not verify (forged, altered, or signed by another key)', 401),
  createError('AMB_ERR_PERMIT_EXPIRED', 'the permit\'s expiry has passed (live streams are closed with 4401 at that moment)', 401),
  createError('AMB_ERR_PERMIT_REVOKED', 'the permit was revoked (`ambulink permit revoke`, or listed in its issuer\'s polled revocation list), or its researcher no longer holds the researcher role (live streams close with 4401)', 401),
  createError('AMB_ERR_PERMIT_BAD_GRANT', '`ambulink permit grant`: an argument is missing or invalid (researcher, datasets, fields, window, expiry, level, purpose)', 400),
  createError('AMB_ERR_PERMIT_UNKNOWN_ISSUER', 'the permit names an issuer (`iss`) that is not in DATASPACE_PERMIT_ISSUERS', 401),
  createError('AMB_ERR_PERMIT_ALGORITHM', 'an access-body permit signed with an algorithm other than EdDSA or ES256 (`none`, HS256, RS256 ... are refused)', 401),
  createError('AMB_ERR_PERMIT_NOT_YET_VALID', 'the access-body permit\'s `nbf` is still in the future', 401),
  createError('AMB_ERR_PERMIT_RESEARCHER_UNBOUND', 'the access-body permit\'s `sub` is not bound, in its issuer\'s `researchers` map, to a local user holding the researcher role (live streams close with 4401)', 401),
  createError('AMB_ERR_PERMIT_ISSUER_UNAVAILABLE', 'the issuer\'s JWKS URL could not be fetched to check the permit; retry later', 503),
  createError('AMB_ERR_DATASPACE_DATASET_FORBIDDEN', 'the dataset is not named in the permit', 403),
  createError('AMB_ERR_DATASPACE_FIELD_FORBIDDEN', 'a requested field is not granted by the permit for that dataset', 403),
  createError('AMB_ERR_DATASPACE_WINDOW_FORBIDDEN', 'the requested time window reaches outside the permit\'s window', 403),
  createError('AMB_ERR_DATASPACE_BAD_REQUEST', 'unknown dataset or field, unparsable time, or from ≥ to', 400),
  createError('AMB_ERR_DATASPACE_FORMAT', 'unknown format (ndjson, csv, fhir)', 400),
  createError('AMB_ERR_DATASPACE_LEVEL_UNSUPPORTED', 'the permit\'s level is aggregated, which serves per-encounter summaries of vitals as ndjson or csv only: no FHIR, no live stream, no other dataset, and only the summarised fields', 403),
  createError('AMB_ERR_DATASPACE_NOT_WEBSOCKET', '/dataspace/stream is a WebSocket endpoint: send an Upgrade request', 426),
  createError('AMB_ERR_DATASPACE_TOO_LARGE', 'the extract\'s first pass (encounters, position cells) exceeds its bound: ask for a shorter window', 413),
  createError('AMB_ERR_DATASPACE_STORE_UNAVAILABLE', 'no InfluxDB configured (INFLUX_URL), or it did not answer: extracts need it; retry later', 503),
  createError('AMB_ERR_DATASPACE_QUERY_FAILED', 'InfluxDB refused or broke off an extract query', 502),
  createError('AMB_ERR_DATASPACE_SLOW_CONSUMER', 'live stream: the client read too slowly and its send buffer passed DATASPACE_LIVE_MAX_BUFFER_BYTES; the connection was cut (ingest never waits for it)', 4008),
  createError('AMB_ERR_DATASPACE_KEYS', 'a dataspace key file under DATA_DIR/dataspace is unreadable, malformed or readable by others (must be 0600)', 500),
  createError('AMB_ERR_DATASPACE_LEVEL_FORBIDDEN', 'the permit\'s protection level does not allow this endpoint: a `statistical` permit gets aggregate queries only (never extracts or the live stream), and /dataspace/statistics serves only `statistical` permits', 403),
  createError('AMB_ERR_DATASPACE_BUDGET_EXHAUSTED', 'the statistical query would spend more differential-privacy budget (epsilon) than the permit has left; nothing was answered or spent', 403),
  createError('AMB_ERR_AUDIT_UNAVAILABLE', 'the access could not be written to the audit log, so no data was released', 503),
  createError('AMB_ERR_AUDIT_INTEGRITY', 'the audit log\'s head did not check out before an append (signature with the pinned key, rollback behind a newer head or anchor, entries past the head that nobody signed): nothing is appended and nothing released until an operator investigates and runs `ambulink audit recover`', 503),
  createError('AMB_ERR_AUDIT_TAMPERED', '`ambulink audit verify`: an entry was altered, removed or reordered, or the log no longer ends at its signed head', 500)
)

export class DataspaceError extends CodedError<DataspaceErrorCode> {
  override readonly name = 'DataspaceError'

  /** `retryAfterMs` given: the same request may succeed later (the store or the audit log were unavailable). */
  constructor (code: DataspaceErrorCode, message: string, options: CodedErrorOptions = {}) {
    super(DATASPACE_ERRORS[code], message, options)
  }
}

export function isDataspaceError (err: unknown): err is DataspaceError {
  return err instanceof DataspaceError
}
