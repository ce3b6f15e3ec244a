// Permits issued by a health data access body, end to end: the test holds two key pairs of its
// own that play the access body (one EdDSA issuer whose JWKS and revocation list are served by a
// node:http server here, one ES256 issuer whose JWKS is a file), a real gateway and a real
// InfluxDB. Valid permits extract; unknown issuer, wrong algorithm, bad signature, expired,
// not-yet-valid, unbound researcher and revoked permits are refused with their codes, and a
// revocation in the issuer's polled list closes an open live stream.
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT, exportJWK, generateKeyPair, importJWK, jwtVerify, createLocalJWKSet, type CryptoKey, type JWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { get, openLive } from '../testkit/dataspace-client.js'
import { UNITS, VITALS_PER_ENCOUNTER, publishSeed, seedEncounters, type SeedEncounter } from '../testkit/dataspace-seed.js'
import { runPermitCli } from '../cli/dataspace.js'
import { waitFor } from '../testkit/proc.js'
import { TrustedIssuers } from '../streams/dataspace/index.js'

const DB = 'amb_issuers'
const HOUR = 3_600_000
const T0 = Math.floor(Date.now() / 1000) * 1000 - HOUR
const ED_ISS = 'https://hdab.example/ed'
const EC_ISS = 'https://hdab.example/ec'

let influx: InfluxServer
let tg: TestGateway
let dir: string
let server: Server
let encounters: SeedEncounter[]
let ed: { privateKey: CryptoKey, jwk: JWK }
let ec: { privateKey: CryptoKey, jwk: JWK }
/** The access body's revocation list, as its server answers it now. */
const revoked: string[] = []
let jwksFetches = 0
/** Keys the access body's JWKS URL serves now (rotation adds one). */
const servedKeys: JWK[] = []
/** The revocation list answers 500 while this is set (a unit test of the backoff). */
let revocationsDown = false
let revocationFetches = 0

async function keyPair (alg: 'EdDSA' | 'ES256', kid: string): Promise<{ privateKey: CryptoKey, jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) })
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } }
}

interface Claims { [k: string]: unknown }

function permitClaims (over: Claims = {}): Claims {
  return {
    organisation: 'Institut de recherche cardiologique',
    purpose: 'Pre-hospital STEMI triage study',
    datasets: ['vitals', 'alerts'],
    period: { from: new Date(T0 - HOUR).toISOString(), to: new Date(T0 + 3 * HOUR).toISOString() },
    level: 'anonymised',
    ...over
  }
}

async function sign (key: CryptoKey, alg: string, kid: string, iss: string, opts: { sub?: string, exp?: number, nbf?: number, claims?: Claims, jti?: string } = {}): Promise<{ token: string, jti: string }> {
  const jti = opts.jti ?? randomUUID()
  let b = new SignJWT(permitClaims(opts.claims)).setProtectedHeader({ alg, kid, typ: 'JWT' }).setIssuer(iss).setSubject(opts.sub ?? 'urn:hdab:researcher:4711')
    .setJti(jti).setIssuedAt().setExpirationTime(opts.exp ?? Math.floor(Date.now() / 1000) + 3600)
  if (opts.nbf !== undefined) b = b.setNotBefore(opts.nbf)
  return { token: await b.sign(key), jti }
}

const edPermit = async (o: Parameters<typeof sign>[4] = {}): Promise<{ token: string, jti: string }> => await sign(ed.privateKey, 'EdDSA', 'ed-1', ED_ISS, o)
const ecPermit = async (o: Parameters<typeof sign>[4] = {}): Promise<{ token: string, jti: string }> => await sign(ec.privateKey, 'ES256', 'ec-1', EC_ISS, o)

async function extractStatus (token: string): Promise<{ status: number, code: string | undefined, body: string }> {
  const r = await get(`${tg.httpUrl}/dataspace/extract?dataset=vitals&format=ndjson`, token)
  let code: string | undefined
  try { code = (JSON.parse(r.body) as { code?: string }).code } catch { code = undefined }
  return { status: r.status, code, body: r.body }
}

beforeAll(async () => {
  ed = await keyPair('EdDSA', 'ed-1')
  ec = await keyPair('ES256', 'ec-1')
  servedKeys.push(ed.jwk)
  server = createServer((req, res) => {
    if (req.url === '/jwks.json') {
      jwksFetches++
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ keys: servedKeys }))
    } else if (req.url === '/revoked-unit.json') {
      revocationFetches++
      if (revocationsDown) { res.statusCode = 500; res.end(); return }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ revoked: ['11111111-1111-4111-8111-111111111111'] }))
    } else if (req.url === '/revoked.json') {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ revoked }))
    } else {
      res.statusCode = 404
      res.end()
    }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  dir = await mkdtemp(join(tmpdir(), 'amb-issuers-'))
  await writeFile(join(dir, 'ec-jwks.json'), JSON.stringify({ keys: [ec.jwk] }))
  await writeFile(join(dir, 'issuers.json'), JSON.stringify({
    issuers: [
      { iss: ED_ISS, jwks: `${base}/jwks.json`, revocations: `${base}/revoked.json`, researchers: { 'urn:hdab:researcher:4711': 'dr-ana' } },
      { iss: EC_ISS, jwks: 'ec-jwks.json', researchers: { 'urn:hdab:researcher:4711': 'dr-ana' } }
    ]
  }))
  influx = await startInfluxDB()
  tg = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: DB, dataspacePermitIssuers: join(dir, 'issuers.json'), dataspaceIssuerPollMs: 200, dataspaceJwksCooldownMs: 1000 })
  const tokens: Record<string, string> = {}
  for (const u of UNITS) tokens[u] = await tg.addDevice(u)
  await tg.addUser('dr-ana', 'researcher')
  await tg.addUser('nurse-cy', 'clinician')
  encounters = seedEncounters(T0)
  await publishSeed(tg.mqttUrl, tokens, encounters, T0)
  const expected = encounters.length * VITALS_PER_ENCOUNTER + 2
  await waitFor(async () => (await influx.count(DB, 'vitals', 'heart_rate')) >= expected ? true : undefined,
    { timeoutMs: 15_000, intervalMs: 100, what: 'seed in InfluxDB' })
})

afterAll(async () => {
  await tg?.close()
  await influx?.stop()
  await new Promise<void>(resolve => { if (server === undefined) resolve(); else server.close(() => { resolve() }) })
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

describe('revocation list polling', () => {
  it('backs off while the list fails (1, 3, 7 … polls skipped) and keeps what it listed', async () => {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const file = join(dir, 'issuers-unit.json')
    await writeFile(file, JSON.stringify({ issuers: [{ iss: 'https://unit.example', jwks: 'ec-jwks.json', revocations: `${base}/revoked-unit.json`, researchers: {} }] }))
    const t = await TrustedIssuers.open(file, { pollMs: 0, jwksCooldownMs: 1000, fetchTimeoutMs: 2000 })
    const errors: Error[] = []
    t.on('error', e => { errors.push(e) })
    try {
      expect(t.isRevoked('https://unit.example', '11111111-1111-4111-8111-111111111111')).toBe(true)
      revocationsDown = true
      const start = revocationFetches
      // 12 polls: fetch (fail), skip 1, fetch (fail), skip 3, fetch (fail), skip 7 → 3 fetches.
      for (let i = 0; i < 12; i++) await t.refresh()
      expect(revocationFetches - start).toBe(3)
      expect(errors).toHaveLength(3)
      expect(t.isRevoked('https://unit.example', '11111111-1111-4111-8111-111111111111')).toBe(true)
    } finally {
      revocationsDown = false
      t.close()
    }
  })
})

describe('issuer keys unreachable', () => {
  it('a JWKS URL that cannot be fetched refuses the permit as AMB_ERR_PERMIT_ISSUER_UNAVAILABLE (retry later)', async () => {
    // A port that was just free and is closed again: the connection is refused.
    const probe = createServer()
    await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve))
    const port = (probe.address() as AddressInfo).port
    await new Promise<void>(resolve => { probe.close(() => { resolve() }) })
    const file = join(dir, 'issuers-down.json')
    await writeFile(file, JSON.stringify({ issuers: [{ iss: ED_ISS, jwks: `http://127.0.0.1:${port}/jwks.json`, researchers: {} }] }))
    const t = await TrustedIssuers.open(file, { pollMs: 0, jwksCooldownMs: 1000, fetchTimeoutMs: 2000 })
    try {
      const err = await t.verify((await edPermit()).token, Date.now()).then(() => null, (e: unknown) => e as { code?: string, statusCode?: number, retryAfter?: () => number | null })
      expect(err?.code).toBe('AMB_ERR_PERMIT_ISSUER_UNAVAILABLE')
      expect(err?.statusCode).toBe(503)
      expect(err?.retryAfter?.()).toBe(1000)
    } finally {
      t.close()
    }
  })
})

describe('access-body permits', () => {
  it('a valid EdDSA permit (JWKS fetched from the issuer URL) extracts, bound to the local researcher', async () => {
    const { token, jti } = await edPermit()
    const r = await get(`${tg.httpUrl}/dataspace/extract?dataset=vitals&format=ndjson`, token)
    expect(r.status, r.body).toBe(200)
    expect(r.headers['ambulink-permit']).toBe(jti)
    expect(r.headers['ambulink-protection']).toBe('anonymised')
    expect(r.body.split('\n').filter(l => l !== '').length).toBeGreaterThan(0)
    expect(jwksFetches).toBeGreaterThanOrEqual(1)
  })

  it('a valid ES256 permit (JWKS from a file) extracts', async () => {
    const { token } = await ecPermit()
    const r = await extractStatus(token)
    expect(r.status, r.body).toBe(200)
  })

  it('refuses an unknown issuer, a wrong or absent algorithm, a bad signature, expired and not-yet-valid permits, and an unbound researcher, with their codes', async () => {
    const other = await keyPair('EdDSA', 'x-1')
    expect(await extractStatus((await sign(other.privateKey, 'EdDSA', 'x-1', 'https://elsewhere.example')).token)).toMatchObject({ status: 401, code: 'AMB_ERR_PERMIT_UNKNOWN_ISSUER' })
    // Signed by another key under the trusted issuer's name and kid: the signature fails.
    expect(await extractStatus((await sign(other.privateKey, 'EdDSA', 'ed-1', ED_ISS)).token)).toMatchObject({ status: 401, code: 'AMB_ERR_PERMIT_INVALID' })
    // HS256 with the issuer's public key as the secret (the key-confusion attack), and alg none.
    const hs = await new SignJWT(permitClaims()).setProtectedHeader({ alg: 'HS256', kid: 'ed-1' }).setIssuer(ED_ISS).setSubject('urn:hdab:researcher:4711')
      .setJti(randomUUID()).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(JSON.stringify(ed.jwk)))
    expect(await extractStatus(hs)).toMatchObject({ status: 401, code: 'AMB_ERR_PERMIT_ALGORITHM' })
    const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
    const none = `${b64({ alg: 'none' })}.${b64({ ...permitClaims(), iss: ED_ISS, sub: 'urn:hdab:researcher:4711', jti: randomUUID(), iat: 1, exp: 4e9 })}.`
    expect(await extractStatus(none)).toMatchObject({ status: 401, code: 'AMB_ERR_PERMIT_ALGORITHM' })
    const nowS = Math.floor(Date.now() / 1000)
    expect(await extractStatus((await edPermit({ exp: nowS - 10 })).token)).toMatchObject({ status: 401, code: 'AMB_ERR_PERMIT_EXPIRED' })
    expect(await extractStatus((await ecPermit({ nbf: nowS + 3600 })).token)).toMatchObject({ status: 401, code: 'AMB_ERR_PERMIT_NOT_YET_VALID' })
    expect(await extractStatus((await edPermit({ sub: 'urn:hdab:researcher:9999' })).token)).toMatchObject({ status: 401, code: 'AMB_ERR_PERMIT_RESEARCHER_UNBOUND' })
    expect(await extractStatus((await edPermit({ claims: { level: 'raw' } })).token)).toMatchObject({ status: 401, code: 'AMB_ERR_PERMIT_INVALID' })
  })

  it('a permit in the issuer\'s polled revocation list is refused, and its open live stream is closed (4401)', async () => {
    const { token, jti } = await edPermit()
    const live = await openLive(`${tg.httpUrl.replace('http', 'ws')}/dataspace/stream?dataset=vitals`, token)
    revoked.push(jti)
    expect(await live.closed).toBe(4401)
    expect(await extractStatus(token)).toMatchObject({ status: 401, code: 'AMB_ERR_PERMIT_REVOKED' })
    // Another permit of the same issuer is unaffected.
    expect((await extractStatus((await edPermit()).token)).status).toBe(200)
  })

  it('key rotation: a permit under a new kid makes the gateway refetch the JWKS and is accepted', async () => {
    const ed2 = await keyPair('EdDSA', 'ed-2')
    servedKeys.push(ed2.jwk)
    const before = jwksFetches
    const token = (await sign(ed2.privateKey, 'EdDSA', 'ed-2', ED_ISS)).token
    // The cooldown (1 s here) bounds refetching: retry until it has passed, never more often.
    await waitFor(async () => (await extractStatus(token)).status === 200 ? true : undefined, { timeoutMs: 10_000, intervalMs: 300, what: 'rotated key accepted' })
    expect(jwksFetches).toBeGreaterThan(before)
    // Fewer fetches than attempts would need without the cooldown: at most one per second.
    expect(jwksFetches - before).toBeLessThanOrEqual(12)
  })

  it('the local issuer\'s key is published as a JWKS that verifies `ambulink permit grant` permits', async () => {
    let out = ''
    const code = await runPermitCli(['grant', '--researcher', 'dr-ana', '--datasets', 'vitals', '--purpose', 'JWKS check',
      '--from', new Date(T0 - HOUR).toISOString(), '--to', new Date(T0 + HOUR).toISOString(), '--expires', new Date(Date.now() + HOUR).toISOString()],
    { stdout: t => { out += t }, stderr: () => {} }, tg.gw.config)
    expect(code).toBe(0)
    const r = await get(`${tg.httpUrl}/dataspace/jwks.json`)
    expect(r.status).toBe(200)
    const jwks = JSON.parse(r.body) as { keys: JWK[] }
    expect(jwks.keys).toHaveLength(1)
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' })
    expect(jwks.keys[0]).not.toHaveProperty('d')
    await importJWK(jwks.keys[0]!, 'EdDSA')
    const { payload } = await jwtVerify(out.trim(), createLocalJWKSet(jwks), { algorithms: ['EdDSA'] })
    expect(payload.sub).toBe('dr-ana')
    // And the gateway still accepts it (local permits carry no `iss`).
    expect((await extractStatus(out.trim())).status).toBe(200)
  })
})
