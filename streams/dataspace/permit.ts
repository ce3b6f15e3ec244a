/**
 * Data permits (EHDS Art. 68): what a health data access body allows one health data user to
 * read, for which purpose, until when. A permit travels as a compact JWS (RFC 7515) signed with
 * Ed25519 (`alg: EdDSA`, RFC 8037), so any JOSE library can read and check it; the claims are
 * standard JWT ones (`jti`, `sub`, `iat`, `exp`) plus the permit's scope.
 *
 * A permit is a bearer credential: whoever holds it reads what it allows. It names the
 * researcher it was issued to; a researcher removed from the credentials (or no longer in the
 * researcher role) invalidates their permits.
 */
import { randomUUID, sign, verify, type KeyObject } from 'node:crypto'
import { aggregatedDefaultFields, aggregatedGrantProblem } from './aggregate.js'
import { DATASET_NAMES, grantableFields, isDatasetName, type DatasetName } from './datasets.js'
import { DataspaceError } from './errors.js'

export type ProtectionLevel = 'anonymised' | 'pseudonymised' | 'aggregated' | 'statistical'
/** `aggregated`: per-encounter binned summaries (aggregate.ts); `statistical`: aggregate queries only (statistics.ts), never rows or the live stream. */
export const LEVELS: readonly ProtectionLevel[] = ['anonymised', 'pseudonymised', 'aggregated', 'statistical']

export interface Permit {
  /** Permit id (`jti`). */
  id: string
  /** Researcher (a user with role researcher) the permit was issued to (`sub`). */
  researcher: string
  /** That researcher's account id (`aid`), never reused: a re-created user is another account. null on permits issued before accounts had ids (refused). */
  accountId: string | null
  datasets: DatasetName[]
  /** Granted fields per dataset. */
  fields: Partial<Record<DatasetName, string[]>>
  /** The window of data the permit covers, Unix ms: [from, to). */
  fromMs: number
  toMs: number
  purpose: string
  level: ProtectionLevel
  issuedAtMs: number
  expiresAtMs: number
}

const HEADER = { alg: 'EdDSA', typ: 'JWT', cty: 'ambulink-permit+v1' } as const
const HEADER_B64 = Buffer.from(JSON.stringify(HEADER)).toString('base64url')
/** Longest token accepted: bounds what an unauthenticated client can make us parse. */
export const MAX_PERMIT_BYTES = 16 * 1024
const MAX_PURPOSE_CHARS = 1000

interface Claims {
  jti: string
  sub: string
  aid?: string
  iat: number
  exp: number
  datasets: string[]
  fields: Record<string, string[]>
  window: { from: string, to: string }
  purpose: string
  level: string
}

export interface PermitRequest {
  researcher: string
  accountId: string
  datasets: DatasetName[]
  /** Per dataset; a dataset left out gets every grantable field. */
  fields?: Partial<Record<DatasetName, string[]>>
  fromMs: number
  toMs: number
  purpose: string
  level: ProtectionLevel
  expiresAtMs: number
  nowMs?: number
}

function bad (message: string): DataspaceError {
  return new DataspaceError('AMB_ERR_PERMIT_BAD_GRANT', message)
}

/** Checks a request and fills in its defaults; throws AMB_ERR_PERMIT_BAD_GRANT. */
export function normalisePermitRequest (r: PermitRequest): Permit {
  const now = r.nowMs ?? Date.now()
  if (r.datasets.length === 0) throw bad(`--datasets must name at least one of ${DATASET_NAMES.join(', ')}`)
  for (const d of r.datasets) if (!isDatasetName(d)) throw bad(`unknown dataset ${JSON.stringify(d)}; datasets are ${DATASET_NAMES.join(', ')}`)
  const aggregated = r.level === 'aggregated'
  const problem = aggregated ? aggregatedGrantProblem(r.datasets, r.fields) : null
  if (problem !== null) throw bad(problem)
  const fields: Partial<Record<DatasetName, string[]>> = {}
  for (const d of r.datasets) {
    const allowed = grantableFields(d)
    const asked = r.fields?.[d] ?? (aggregated ? aggregatedDefaultFields() : [...allowed])
    for (const f of asked) if (!allowed.includes(f)) throw bad(`dataset ${d} has no field ${JSON.stringify(f)}; fields are ${allowed.join(', ')}`)
    if (asked.length === 0) throw bad(`no field granted on ${d}`)
    fields[d] = [...new Set(asked)]
  }
  if (!Number.isFinite(r.fromMs) || !Number.isFinite(r.toMs) || r.fromMs >= r.toMs) throw bad('the window needs --from before --to')
  if (!Number.isFinite(r.expiresAtMs) || r.expiresAtMs <= now) throw bad('--expires must be a time in the future')
  const purpose = r.purpose.trim()
  if (purpose === '' || purpose.length > MAX_PURPOSE_CHARS) throw bad(`--purpose must be 1..${MAX_PURPOSE_CHARS} characters`)
  if (!LEVELS.includes(r.level)) throw bad(`--level must be one of ${LEVELS.join(', ')}`)
  return {
    id: randomUUID(),
    researcher: r.researcher,
    accountId: r.accountId,
    datasets: [...new Set(r.datasets)],
    fields,
    fromMs: r.fromMs,
    toMs: r.toMs,
    purpose,
    level: r.level,
    issuedAtMs: now,
    expiresAtMs: r.expiresAtMs
  }
}

/** Signs a permit into its token. */
export function signPermit (p: Permit, privateKey: KeyObject): string {
  const claims: Claims = {
    jti: p.id,
    sub: p.researcher,
    ...(p.accountId !== null ? { aid: p.accountId } : {}),
    iat: Math.floor(p.issuedAtMs / 1000),
    exp: Math.floor(p.expiresAtMs / 1000),
    datasets: p.datasets,
    fields: p.fields as Record<string, string[]>,
    window: { from: new Date(p.fromMs).toISOString(), to: new Date(p.toMs).toISOString() },
    purpose: p.purpose,
    level: p.level
  }
  const signingInput = `${HEADER_B64}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  const sig = sign(null, Buffer.from(signingInput), privateKey)
  return `${signingInput}.${sig.toString('base64url')}`
}

function invalid (message: string): DataspaceError {
  return new DataspaceError('AMB_ERR_PERMIT_INVALID', message)
}

const B64URL = /^[A-Za-z0-9_-]+$/

/**
 * Checks a token's signature and shape and returns the permit. Expiry and revocation are the
 * caller's (they depend on the clock and on state); a permit whose signature verifies but
 * whose claims are not what we issue is refused as invalid all the same.
 */
export function verifyPermitToken (token: string, publicKey: KeyObject): Permit {
  if (token.length > MAX_PERMIT_BYTES) throw invalid('permit too long')
  const parts = token.split('.')
  if (parts.length !== 3 || !parts.every(p => B64URL.test(p))) throw invalid('not a compact JWS')
  const [h, c, s] = parts as [string, string, string]
  // Only our exact header: no algorithm negotiation ("alg": "none" and key confusion attacks).
  if (h !== HEADER_B64) throw invalid('unexpected JWS header')
  if (!verify(null, Buffer.from(`${h}.${c}`), publicKey, Buffer.from(s, 'base64url'))) throw invalid('signature does not verify')
  let claims: Claims
  try {
    claims = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as Claims
  } catch {
    throw invalid('claims are not JSON')
  }
  return claimsToPermit(claims)
}

function claimsToPermit (c: Claims): Permit {
  const str = (v: unknown): v is string => typeof v === 'string' && v !== ''
  if (!str(c.jti) || !str(c.sub) || !str(c.purpose)) throw invalid('claims lack jti, sub or purpose')
  if (!Number.isSafeInteger(c.iat) || !Number.isSafeInteger(c.exp)) throw invalid('claims lack iat or exp')
  if (!LEVELS.includes(c.level as ProtectionLevel)) throw invalid('unknown level')
  if (!Array.isArray(c.datasets) || c.datasets.length === 0) throw invalid('no datasets')
  const fields: Partial<Record<DatasetName, string[]>> = {}
  const datasets: DatasetName[] = []
  for (const d of c.datasets) {
    if (typeof d !== 'string' || !isDatasetName(d)) throw invalid('unknown dataset in claims')
    datasets.push(d)
    const f = c.fields?.[d]
    const allowed = grantableFields(d)
    if (!Array.isArray(f) || !f.every(x => typeof x === 'string' && allowed.includes(x))) throw invalid(`bad fields for ${d}`)
    fields[d] = f
  }
  const fromMs = Date.parse(c.window?.from ?? '')
  const toMs = Date.parse(c.window?.to ?? '')
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || fromMs >= toMs) throw invalid('bad window')
  return {
    id: c.jti,
    researcher: c.sub,
    accountId: typeof c.aid === 'string' && c.aid !== '' ? c.aid : null,
    datasets,
    fields,
    fromMs,
    toMs,
    purpose: c.purpose,
    level: c.level as ProtectionLevel,
    issuedAtMs: c.iat * 1000,
    expiresAtMs: c.exp * 1000
  }
}

/**
 * The permit id a token claims, without trusting it: for the audit log of a refused access.
 * Only an id-shaped value is returned, so a forged token cannot write arbitrary text there.
 */
export function claimedPermitId (token: string): string | null {
  const c = token.split('.')[1]
  if (c === undefined || c.length > MAX_PERMIT_BYTES || !B64URL.test(c)) return null
  try {
    const jti = (JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as { jti?: unknown }).jti
    return typeof jti === 'string' && /^[0-9a-f-]{36}$/.test(jti) ? jti : null
  } catch {
    return null
  }
}
