/**
 * Permits issued by a health data access body (EHDS Art. 68): trusted issuers, each with its
 * public keys as a JWKS (a file, or a URL fetched and cached) and, optionally, a revocation list
 * polled for changes. Tokens are checked with `jose`, never by hand.
 *
 * The issuers file (DATASPACE_PERMIT_ISSUERS) is JSON:
 *
 *   { "issuers": [ { "iss": "https://hdab.example",
 *                    "jwks": "https://hdab.example/jwks.json" | "hdab-jwks.json",
 *                    "revocations": "https://hdab.example/revoked.json" | "revoked.json",
 *                    "researchers": { "<sub in the permit>": "<local researcher user name>" } } ] }
 *
 * Relative paths are read from the issuers file's directory. A revocation list is JSON
 * `{ "revoked": ["<permit id>", ...] }`.
 *
 * An access-body permit names its researcher in `sub` as the access body knows them; the gateway
 * serves it only when the issuer's `researchers` map binds that `sub` to a local user who holds
 * the researcher role (what the gateway authorises is always a local account).
 */
import { EventEmitter } from 'node:events'
import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JSONWebKeySet } from 'jose'
import { grantableFields, isDatasetName, type DatasetName } from './datasets.js'
import { DataspaceError } from './errors.js'
import { LEVELS, MAX_PERMIT_BYTES, type Permit, type ProtectionLevel } from './permit.js'

/** Algorithms an access body may sign with (RFC 8037 Ed25519, RFC 7518 P-256); nothing else, never `none`. */
export const ISSUER_ALGORITHMS = ['EdDSA', 'ES256'] as const

export interface IssuerConfig {
  iss: string
  jwks: string
  revocations?: string
  researchers: Record<string, string>
}

export interface IssuerOptions {
  /** How often revocation lists are polled, ms (0 = only at open and on refresh()). */
  pollMs: number
  /** Least time between two JWKS fetches for an unknown `kid` (bounds refetching), ms. */
  jwksCooldownMs: number
  /** Bound on one fetch, ms. */
  fetchTimeoutMs: number
}

interface Issuer {
  config: IssuerConfig
  keys: JWTVerifyGetKey
  revoked: Set<string>
  /** Consecutive failed revocation fetches: the next poll waits 2^n polls (backoff). */
  failures: number
  skip: number
}

export interface IssuerEvents {
  /** Permit ids newly revoked by an issuer. */
  revoked: [ids: string[]]
  error: [err: Error]
}

/** The permit an access body issued: a local Permit plus who issued it and for whom. */
export interface ExternalPermit extends Permit {
  issuer: string
  organisation: string
}

function invalid (message: string): DataspaceError { return new DataspaceError('AMB_ERR_PERMIT_INVALID', message) }

function isUrl (s: string): boolean { return /^https?:\/\//.test(s) }

async function fetchJson (location: string, base: string, timeoutMs: number): Promise<unknown> {
  if (isUrl(location)) {
    const res = await fetch(location, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' })
    if (!res.ok) throw new Error(`${location}: HTTP ${res.status}`)
    return await res.json()
  }
  return JSON.parse(await readFile(resolve(base, location), 'utf8'))
}

export class TrustedIssuers extends EventEmitter<IssuerEvents> {
  private timer: NodeJS.Timeout | null = null
  private polling: Promise<void> | null = null

  private constructor (private readonly issuers: Map<string, Issuer>, private readonly base: string, private readonly o: IssuerOptions) { super() }

  static async open (file: string, o: IssuerOptions): Promise<TrustedIssuers> {
    const path = resolve(file)
    const base = dirname(path)
    let doc: { issuers?: unknown }
    try {
      doc = JSON.parse(await readFile(path, 'utf8')) as { issuers?: unknown }
    } catch (err) {
      throw new DataspaceError('AMB_ERR_DATASPACE_KEYS', `DATASPACE_PERMIT_ISSUERS ${path}: ${(err as Error).message}`, { cause: err })
    }
    if (!Array.isArray(doc.issuers)) throw new DataspaceError('AMB_ERR_DATASPACE_KEYS', `DATASPACE_PERMIT_ISSUERS ${path}: needs an "issuers" array`)
    const issuers = new Map<string, Issuer>()
    for (const c of doc.issuers as IssuerConfig[]) {
      if (typeof c?.iss !== 'string' || c.iss === '' || typeof c.jwks !== 'string') throw new DataspaceError('AMB_ERR_DATASPACE_KEYS', `DATASPACE_PERMIT_ISSUERS ${path}: every issuer needs "iss" and "jwks"`)
      let keys: JWTVerifyGetKey
      if (isUrl(c.jwks)) {
        // jose caches the set, refetches it when a token names an unknown kid (key rotation),
        // at most once per cooldown, and a fetch is bounded by its timeout.
        keys = createRemoteJWKSet(new URL(c.jwks), { cooldownDuration: o.jwksCooldownMs, timeoutDuration: o.fetchTimeoutMs, cacheMaxAge: 10 * 60_000 })
      } else {
        try {
          keys = createLocalJWKSet(await fetchJson(c.jwks, base, o.fetchTimeoutMs) as JSONWebKeySet)
        } catch (err) {
          throw new DataspaceError('AMB_ERR_DATASPACE_KEYS', `issuer ${c.iss}: JWKS ${c.jwks}: ${(err as Error).message}`, { cause: err })
        }
      }
      issuers.set(c.iss, { config: { ...c, researchers: c.researchers ?? {} }, keys, revoked: new Set(), failures: 0, skip: 0 })
    }
    const t = new TrustedIssuers(issuers, base, o)
    await t.refresh()
    if (o.pollMs > 0) {
      t.timer = setInterval(() => { void t.refresh() }, o.pollMs)
      t.timer.unref()
    }
    return t
  }

  /** Polls every issuer's revocation list (one poll at a time; failures back off). */
  refresh (): Promise<void> {
    this.polling ??= this.poll().finally(() => { this.polling = null })
    return this.polling
  }

  private async poll (): Promise<void> {
    for (const i of this.issuers.values()) {
      if (i.config.revocations === undefined) continue
      if (i.skip > 0) { i.skip--; continue }
      try {
        const doc = await fetchJson(i.config.revocations, this.base, this.o.fetchTimeoutMs) as { revoked?: unknown }
        if (!Array.isArray(doc.revoked)) throw new Error('no "revoked" array')
        const ids = doc.revoked.filter((x): x is string => typeof x === 'string')
        // A list only grows: an id missing from a later answer stays revoked here.
        const added = ids.filter(id => !i.revoked.has(id))
        for (const id of added) i.revoked.add(id)
        i.failures = 0
        if (added.length > 0) this.emit('revoked', added)
      } catch (err) {
        i.failures++
        i.skip = Math.min(2 ** i.failures - 1, 32)
        this.emit('error', new Error(`issuer ${i.config.iss}: revocation list: ${(err as Error).message}`))
      }
    }
  }

  /** Whether the token names an issuer (`iss`): such tokens are access-body permits. */
  static claimsIssuer (token: string): boolean {
    try {
      return typeof decodeJwt(token).iss === 'string'
    } catch {
      return false
    }
  }

  isRevoked (issuer: string, id: string): boolean { return this.issuers.get(issuer)?.revoked.has(id) ?? false }

  /** The local researcher the issuer's `sub` stands for, or null. */
  researcherFor (issuer: string, sub: string): string | null {
    const r = this.issuers.get(issuer)?.config.researchers
    return r !== undefined && Object.hasOwn(r, sub) ? r[sub]! : null
  }

  /**
   * Verifies an access-body permit: known issuer, allowed algorithm, signature with the
   * issuer's key, `nbf`/`exp` against `nowMs`, and the permit's content. Revocation and the
   * researcher binding are the caller's.
   */
  async verify (token: string, nowMs: number): Promise<ExternalPermit> {
    if (token.length > MAX_PERMIT_BYTES) throw invalid('permit too long')
    let iss: unknown
    let alg: unknown
    try {
      iss = decodeJwt(token).iss
      alg = decodeProtectedHeader(token).alg
    } catch {
      throw invalid('not a compact JWS')
    }
    const issuer = typeof iss === 'string' ? this.issuers.get(iss) : undefined
    if (issuer === undefined) throw new DataspaceError('AMB_ERR_PERMIT_UNKNOWN_ISSUER', `permit issuer ${JSON.stringify(String(iss)).slice(0, 200)} is not trusted`)
    if (!(ISSUER_ALGORITHMS as readonly unknown[]).includes(alg)) throw new DataspaceError('AMB_ERR_PERMIT_ALGORITHM', `permit algorithm ${JSON.stringify(String(alg)).slice(0, 40)} is not accepted (${ISSUER_ALGORITHMS.join(', ')})`)
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(token, issuer.keys, {
        issuer: issuer.config.iss,
        algorithms: [...ISSUER_ALGORITHMS],
        currentDate: new Date(nowMs),
        requiredClaims: ['jti', 'sub', 'iat', 'exp']
      }))
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new DataspaceError('AMB_ERR_PERMIT_EXPIRED', 'the permit has expired')
      if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'nbf') throw new DataspaceError('AMB_ERR_PERMIT_NOT_YET_VALID', 'the permit is not valid yet (nbf)')
      if (err instanceof errors.JOSEAlgNotAllowed) throw new DataspaceError('AMB_ERR_PERMIT_ALGORITHM', 'permit algorithm not accepted')
      if (err instanceof errors.JWKSTimeout || (err instanceof Error && err.name === 'TypeError')) {
        throw new DataspaceError('AMB_ERR_PERMIT_ISSUER_UNAVAILABLE', `the issuer's keys could not be fetched: ${err.message.slice(0, 200)}`, { retryAfterMs: this.o.jwksCooldownMs })
      }
      throw invalid(`permit does not verify: ${(err as Error).message.slice(0, 200)}`)
    }
    return payloadToPermit(payload, issuer.config.iss)
  }

  close (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }
}

/** The EHDS permit's content in an access body's token (documented in docs/dataspace.md). */
function payloadToPermit (c: JWTPayload, iss: string): ExternalPermit {
  const str = (v: unknown): v is string => typeof v === 'string' && v !== '' && v.length <= 1000
  const org = (c.organisation ?? c.org) as unknown
  if (!str(c.jti) || !str(c.sub) || !str(c.purpose) || !str(org)) throw invalid('claims lack jti, sub, organisation or purpose')
  if (!LEVELS.includes(c.level as ProtectionLevel)) throw invalid('unknown level')
  if (!Array.isArray(c.datasets) || c.datasets.length === 0) throw invalid('no datasets')
  const fields: Partial<Record<DatasetName, string[]>> = {}
  const datasets: DatasetName[] = []
  const given = (c.fields ?? {}) as Record<string, unknown>
  for (const d of c.datasets as unknown[]) {
    if (typeof d !== 'string' || !isDatasetName(d)) throw invalid('unknown dataset in claims')
    datasets.push(d)
    const allowed = grantableFields(d)
    const f = given[d] ?? [...allowed]
    if (!Array.isArray(f) || f.length === 0 || !f.every(x => typeof x === 'string' && allowed.includes(x))) throw invalid(`bad fields for ${d}`)
    fields[d] = [...new Set(f as string[])]
  }
  const period = (c.period ?? {}) as { from?: unknown, to?: unknown }
  const fromMs = Date.parse(typeof period.from === 'string' ? period.from : '')
  const toMs = Date.parse(typeof period.to === 'string' ? period.to : '')
  if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || fromMs >= toMs) throw invalid('bad period')
  return {
    id: c.jti,
    issuer: iss,
    organisation: org,
    researcher: c.sub,
    accountId: null,
    datasets,
    fields,
    fromMs,
    toMs,
    purpose: c.purpose,
    level: c.level as ProtectionLevel,
    issuedAtMs: c.iat! * 1000,
    expiresAtMs: c.exp! * 1000
  }
}
