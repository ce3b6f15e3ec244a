/**
 * The dataspace's error catalogue: permits (401), the permit's scope (403), requests (400),
 * the store behind extracts (502/503), the audit log. Callers match on `code`; every code is
 * described here and in the README (Dataspace) (a test checks both). Refusals are counted in
 * `ambulink_dataspace_refused_total{code}` and written to the audit log.
 */
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
  | 'AMB_ERR_DATASPACE_NOT_WEBSOCKET'
  | 'AMB_ERR_DATASPACE_TOO_LARGE'
  | 'AMB_ERR_DATASPACE_STORE_UNAVAILABLE'
  | 'AMB_ERR_DATASPACE_QUERY_FAILED'
  | 'AMB_ERR_DATASPACE_SLOW_CONSUMER'
  | 'AMB_ERR_DATASPACE_KEYS'
  | 'AMB_ERR_AUDIT_UNAVAILABLE'
  | 'AMB_ERR_AUDIT_TAMPERED'
  | 'AMB_ERR_AUDIT_INTEGRITY'

export interface DataspaceErrorInfo {
  /** HTTP status (or, for the live stream, the WebSocket close code noted in the description). */
  status: number
  description: string
}

export const DATASPACE_ERRORS: Readonly<Record<DataspaceErrorCode, DataspaceErrorInfo>> = Object.freeze({
  AMB_ERR_PERMIT_MISSING: { status: 401, description: 'no data permit: send it as `Authorization: Bearer <permit>`' },
  AMB_ERR_PERMIT_INVALID: { status: 401, description: 'the permit is malformed or its signature does not verify (forged, altered, or signed by another key)' },
  AMB_ERR_PERMIT_EXPIRED: { status: 401, description: 'the permit\'s expiry has passed (live streams are closed with 4401 at that moment)' },
  AMB_ERR_PERMIT_REVOKED: { status: 401, description: 'the permit was revoked (`ambulink permit revoke`, or listed in its issuer\'s polled revocation list), or its researcher no longer holds the researcher role (live streams close with 4401)' },
  AMB_ERR_PERMIT_BAD_GRANT: { status: 400, description: '`ambulink permit grant`: an argument is missing or invalid (researcher, datasets, fields, window, expiry, level, purpose)' },
  AMB_ERR_PERMIT_UNKNOWN_ISSUER: { status: 401, description: 'the permit names an issuer (`iss`) that is not in DATASPACE_PERMIT_ISSUERS' },
  AMB_ERR_PERMIT_ALGORITHM: { status: 401, description: 'an access-body permit signed with an algorithm other than EdDSA or ES256 (`none`, HS256, RS256 ... are refused)' },
  AMB_ERR_PERMIT_NOT_YET_VALID: { status: 401, description: 'the access-body permit\'s `nbf` is still in the future' },
  AMB_ERR_PERMIT_RESEARCHER_UNBOUND: { status: 401, description: 'the access-body permit\'s `sub` is not bound, in its issuer\'s `researchers` map, to a local user holding the researcher role (live streams close with 4401)' },
  AMB_ERR_PERMIT_ISSUER_UNAVAILABLE: { status: 503, description: 'the issuer\'s JWKS URL could not be fetched to check the permit; retry later' },
  AMB_ERR_DATASPACE_DATASET_FORBIDDEN: { status: 403, description: 'the dataset is not named in the permit' },
  AMB_ERR_DATASPACE_FIELD_FORBIDDEN: { status: 403, description: 'a requested field is not granted by the permit for that dataset' },
  AMB_ERR_DATASPACE_WINDOW_FORBIDDEN: { status: 403, description: 'the requested time window reaches outside the permit\'s window' },
  AMB_ERR_DATASPACE_BAD_REQUEST: { status: 400, description: 'unknown dataset or field, unparsable time, or from ≥ to' },
  AMB_ERR_DATASPACE_FORMAT: { status: 400, description: 'unknown format, or a format the dataset has no mapping for (fhir is for vitals only)' },
  AMB_ERR_DATASPACE_NOT_WEBSOCKET: { status: 426, description: '/dataspace/stream is a WebSocket endpoint: send an Upgrade request' },
  AMB_ERR_DATASPACE_TOO_LARGE: { status: 413, description: 'the extract\'s first pass (encounters, position cells) exceeds its bound: ask for a shorter window' },
  AMB_ERR_DATASPACE_STORE_UNAVAILABLE: { status: 503, description: 'no InfluxDB configured (INFLUX_URL), or it did not answer: extracts need it; retry later' },
  AMB_ERR_DATASPACE_QUERY_FAILED: { status: 502, description: 'InfluxDB refused or broke off an extract query' },
  AMB_ERR_DATASPACE_SLOW_CONSUMER: { status: 4008, description: 'live stream: the client read too slowly and its send buffer passed DATASPACE_LIVE_MAX_BUFFER_BYTES; the connection was cut (ingest never waits for it)' },
  AMB_ERR_DATASPACE_KEYS: { status: 500, description: 'a dataspace key file under DATA_DIR/dataspace is unreadable, malformed or readable by others (must be 0600)' },
  AMB_ERR_AUDIT_UNAVAILABLE: { status: 503, description: 'the access could not be written to the audit log, so no data was released' },
  AMB_ERR_AUDIT_INTEGRITY: { status: 503, description: 'the audit log\'s head did not check out before an append (signature with the pinned key, rollback behind a newer head or anchor, entries past the head that nobody signed): nothing is appended and nothing released until an operator investigates and runs `ambulink audit recover`' },
  AMB_ERR_AUDIT_TAMPERED: { status: 500, description: '`ambulink audit verify`: an entry was altered, removed or reordered, or the log no longer ends at its signed head' }
})

export class DataspaceError extends Error {
  override readonly name = 'DataspaceError'
  readonly code: DataspaceErrorCode
  readonly statusCode: number
  private readonly retryAfterMs: number | null

  constructor (code: DataspaceErrorCode, message: string, options: { cause?: unknown, retryAfterMs?: number } = {}) {
    super(message, { cause: options.cause })
    this.code = code
    this.statusCode = DATASPACE_ERRORS[code].status
    this.retryAfterMs = options.retryAfterMs ?? null
  }

  /** Whether the same request may succeed later (the store or the audit log were unavailable). */
  canRetry (): boolean { return this.retryAfterMs !== null }

  /** ms to wait before retrying; null when retrying cannot help. */
  retryAfter (): number | null { return this.retryAfterMs }
}

export function isDataspaceError (err: unknown): err is DataspaceError {
  return err instanceof DataspaceError
}
