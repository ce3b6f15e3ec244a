// The Dataspace Protocol 2025-1, end to end: a consumer written from the specification
// (testkit/dsp-consumer.ts, no gateway code) discovers the version, reads the catalogue, negotiates
// an agreement with a data permit issued by an access body (a key pair held by this test, its JWKS
// and revocation list served here), starts an HTTP-pull transfer, pulls the anonymised extract
// from a real gateway reading a real InfluxDB filled with frames over MQTT, and is cut off when
// the access body revokes the permit mid-transfer. Every message either side sends is validated
// against the official DSP 2025-1 JSON schemas and expanded with the official JSON-LD context.
//
// InfluxDB is reached through a TCP relay of this test that can hold traffic: a pull waiting on
// InfluxDB is what "an open pull" is on demand (a real InfluxDB cannot be told to stall).
import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, request, type Server } from 'node:http'
import { connect, createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose'
import jsonld from 'jsonld'
import { DataFactory, Parser, Store } from 'n3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { UNITS, VITALS_PER_ENCOUNTER, identifiers, publishSeed, seedEncounters, type SeedEncounter } from '../testkit/dataspace-seed.js'
import { DSP_CONTEXT, DspConsumer, assertDsp, expandDsp, type Received } from '../testkit/dsp-consumer.js'
import { freePort } from '../testkit/ports.js'
import { waitFor } from '../testkit/proc.js'
import { runPermitCli } from '../cli/dataspace.js'

const DB = 'amb_dsp'
const HOUR = 3_600_000
const T0 = Math.floor(Date.now() / 1000) * 1000 - HOUR
const ISS = 'https://hdab.example/dsp'
const RESEARCHER = 'urn:hdab:researcher:0042'

let influx: InfluxServer
let relay: HoldingRelay
let tg: TestGateway
let dir: string
let hdab: Server
let key: { privateKey: CryptoKey, jwk: JWK }
let encounters: SeedEncounter[]
const revoked: string[] = []
let base: string
let consumer: DspConsumer

/** A TCP relay to InfluxDB; while `hold` is set it forwards nothing towards InfluxDB. */
class HoldingRelay {
  hold = false
  /** Bytes that arrived while holding (a pull is waiting on InfluxDB). */
  heldBytes = 0
  private readonly sockets = new Set<Socket>()
  private constructor (private readonly server: TcpServer, readonly port: number) {}
  static async start (target: number): Promise<HoldingRelay> {
    let self: HoldingRelay | null = null
    const server = createTcpServer(client => {
      const upstream = connect(target, '127.0.0.1')
      self!.sockets.add(client).add(upstream)
      const held: Buffer[] = []
      const flush = (): void => { while (held.length > 0 && !self!.hold) upstream.write(held.shift()!) }
      const timer = setInterval(flush, 20)
      client.on('data', (c: Buffer) => { if (self!.hold) { self!.heldBytes += c.length; held.push(c) } else { flush(); upstream.write(c) } })
      upstream.on('data', (c: Buffer) => client.write(c))
      const end = (): void => { clearInterval(timer); client.destroy(); upstream.destroy(); self!.sockets.delete(client); self!.sockets.delete(upstream) }
      client.on('close', end).on('error', end)
      upstream.on('close', end).on('error', end)
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    self = new HoldingRelay(server, (server.address() as AddressInfo).port)
    return self
  }
  async close (): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>(resolve => { this.server.close(() => { resolve() }) })
  }
}

async function permit (o: { datasets?: string[], level?: string, exp?: number } = {}): Promise<{ token: string, jti: string }> {
  const jti = randomUUID()
  const token = await new SignJWT({
    organisation: 'Institut de recherche cardiologique',
    purpose: 'Pre-hospital STEMI triage study',
    datasets: o.datasets ?? ['vitals'],
    period: { from: new Date(T0 - HOUR).toISOString(), to: new Date(T0 + 3 * HOUR).toISOString() },
    level: o.level ?? 'anonymised'
  }).setProtectedHeader({ alg: 'EdDSA', kid: 'hdab-1', typ: 'JWT' }).setIssuer(ISS).setSubject(RESEARCHER).setJti(jti).setIssuedAt()
    .setExpirationTime(o.exp ?? Math.floor(Date.now() / 1000) + 3600).sign(key.privateKey)
  return { token, jti }
}

/** GET with node:http so that a cut connection shows as an error, not a short body. */
function pull (url: string, token: string): Promise<{ status: number, body: string, headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}` } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const ctx = { '@context': [DSP_CONTEXT] }

/** Runs catalogue → negotiation → FINALIZED for `offerId` with the consumer's permit; returns the agreement. */
async function negotiate (c: DspConsumer, offerId: string, target: string): Promise<{ providerPid: string, consumerPid: string, agreement: Record<string, unknown> }> {
  const consumerPid = c.newPid()
  const req = { ...ctx, '@type': 'ContractRequestMessage', consumerPid, offer: { '@id': offerId, '@type': 'Offer', target, permission: [{ action: 'use' }] }, callbackAddress: c.callbackAddress }
  const ack = await c.call('POST', '/negotiations/request', req)
  expect(ack.status, JSON.stringify(ack.body)).toBe(201)
  assertDsp('ContractNegotiation', ack.body)
  expect(ack.body).toMatchObject({ consumerPid, state: 'REQUESTED' })
  const providerPid = ack.body!.providerPid as string
  const agreed = await c.waitFor(r => r.type === 'ContractAgreementMessage' && r.body.consumerPid === consumerPid)
  expect(agreed.path).toBe(`/callback/negotiations/${encodeURIComponent(consumerPid)}/agreement`)
  await waitFor(async () => (await c.call('GET', `/negotiations/${encodeURIComponent(providerPid)}`)).body?.state === 'AGREED' ? true : undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'AGREED' })
  const verify = await c.call('POST', `/negotiations/${encodeURIComponent(providerPid)}/agreement/verification`, { ...ctx, '@type': 'ContractAgreementVerificationMessage', providerPid, consumerPid })
  expect(verify.status, JSON.stringify(verify.body)).toBe(200)
  await c.waitFor(r => r.type === 'ContractNegotiationEventMessage' && r.body.consumerPid === consumerPid && r.body.eventType === 'FINALIZED')
  await waitFor(async () => (await c.call('GET', `/negotiations/${encodeURIComponent(providerPid)}`)).body?.state === 'FINALIZED' ? true : undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'FINALIZED' })
  return { providerPid, consumerPid, agreement: agreed.body.agreement as Record<string, unknown> }
}

/** Requests a pull transfer under an agreement and waits for the start message; returns its endpoint and token. */
async function startTransfer (c: DspConsumer, agreementId: string): Promise<{ providerPid: string, consumerPid: string, endpoint: string, token: string, start: Received }> {
  const consumerPid = c.newPid()
  const ack = await c.call('POST', '/transfers/request', { ...ctx, '@type': 'TransferRequestMessage', consumerPid, agreementId, format: 'HttpData-PULL', callbackAddress: c.callbackAddress })
  expect(ack.status, JSON.stringify(ack.body)).toBe(201)
  assertDsp('TransferProcess', ack.body)
  const start = await c.waitFor(r => r.type === 'TransferStartMessage' && r.body.consumerPid === consumerPid)
  const addr = start.body.dataAddress as { endpoint: string, endpointProperties: Array<{ name: string, value: string }> }
  const prop = (n: string): string => addr.endpointProperties.find(p => p.name === n)!.value
  expect(prop('authType')).toBe('bearer')
  return { providerPid: ack.body!.providerPid as string, consumerPid, endpoint: addr.endpoint, token: prop('authorization'), start }
}

beforeAll(async () => {
  const kp = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  key = { privateKey: kp.privateKey, jwk: { ...(await exportJWK(kp.publicKey)), kid: 'hdab-1', alg: 'EdDSA', use: 'sig' } }
  hdab = createServer((req, res) => {
    res.setHeader('content-type', 'application/json')
    if (req.url === '/jwks.json') res.end(JSON.stringify({ keys: [key.jwk] }))
    else if (req.url === '/revoked.json') res.end(JSON.stringify({ revoked }))
    else { res.statusCode = 404; res.end() }
  })
  await new Promise<void>(resolve => hdab.listen(0, '127.0.0.1', resolve))
  const hdabUrl = `http://127.0.0.1:${(hdab.address() as AddressInfo).port}`
  dir = await mkdtemp(join(tmpdir(), 'amb-dsp-'))
  await writeFile(join(dir, 'issuers.json'), JSON.stringify({ issuers: [{ iss: ISS, jwks: `${hdabUrl}/jwks.json`, revocations: `${hdabUrl}/revoked.json`, researchers: { [RESEARCHER]: 'dr-ana' } }] }))
  influx = await startInfluxDB()
  relay = await HoldingRelay.start(Number(new URL(influx.url).port))
  // The public URL is configuration: the port is chosen first so the gateway can be told it.
  // A server of a test file running in parallel may bind that port first: then choose again.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    try {
      tg = await startTestGateway({
        httpPort: port,
        dataspacePublicUrl: `http://127.0.0.1:${port}`,
        influxUrl: `http://127.0.0.1:${relay.port}`,
        influxApi: 'v1',
        influxDb: DB,
        dataspacePermitIssuers: join(dir, 'issuers.json'),
        dataspaceIssuerPollMs: 200,
        dataspaceHdabName: 'Health Data Access Body (test)',
        dataspaceHdabUrl: 'https://hdab.example/',
        dataspaceCountry: 'FRA',
        dataspacePublisher: 'Hôpital test',
        dataspaceContact: 'data@hospital.example'
      })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw err
    }
  }
  const tokens: Record<string, string> = {}
  for (const u of UNITS) tokens[u] = await tg.addDevice(u)
  await tg.addUser('dr-ana', 'researcher')
  encounters = seedEncounters(T0)
  await publishSeed(tg.mqttUrl, tokens, encounters, T0)
  await waitFor(async () => (await influx.count(DB, 'vitals', 'heart_rate')) >= encounters.length * VITALS_PER_ENCOUNTER + 2 ? true : undefined,
    { timeoutMs: 15_000, intervalMs: 100, what: 'seed in InfluxDB' })
  const version = await (await fetch(`${tg.httpUrl}/.well-known/dspace-version`)).json() as { protocolVersions: Array<{ version: string, path: string }> }
  assertDsp('VersionResponse', version)
  base = `${tg.httpUrl}${version.protocolVersions.find(v => v.version === '2025-1')!.path}`
  consumer = await DspConsumer.start(base, (await permit()).token)
}, 120_000)

afterAll(async () => {
  await consumer?.close()
  await tg?.close()
  await relay?.close()
  await influx?.stop()
  await new Promise<void>(resolve => { if (hdab === undefined) resolve(); else hdab.close(() => { resolve() }) })
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

describe('DSP 2025-1 provider, end to end', () => {
  it('catalogue → negotiation → transfer → pull → revocation mid-transfer cuts the pull and terminates the transfer', async () => {
    const { token: permitToken, jti } = await permit()
    consumer.permit = permitToken

    // Catalogue: every dataset carries offers; the consumer picks vitals at level anonymised.
    const cat = await consumer.call('POST', '/catalog/request', { ...ctx, '@type': 'CatalogRequestMessage' }, { token: null })
    expect(cat.status).toBe(200)
    assertDsp('Catalog', cat.body)
    await expandDsp(cat.body!)
    const datasets = cat.body!.dataset as Array<Record<string, unknown>>
    expect(datasets.map(d => d['dct:identifier'])).toEqual(['vitals', 'ecg', 'alerts', 'position', 'assessment'])
    const vitals = datasets.find(d => d['dct:identifier'] === 'vitals')!
    const offers = vitals.hasPolicy as Array<{ '@id': string, permission: Array<{ action: string, constraint: Array<{ leftOperand: string, rightOperand: unknown }> }>, prohibition: Array<{ action: string }> }>
    for (const o of offers) {
      expect(o.permission[0]!.action).toBe('use')
      expect(o.permission[0]!.constraint.map(c => c.leftOperand)).toContain('purpose')
      expect(o.prohibition.map(p => p.action)).toContain('urn:ambulink:odrl:reidentify')
    }
    const anon = offers.find(o => o.permission[0]!.constraint.some(c => c.leftOperand === 'urn:ambulink:odrl:protectionLevel' && c.rightOperand === 'anonymised'))!
    const one = await consumer.call('GET', `/catalog/datasets/${encodeURIComponent(vitals['@id'] as string)}`, undefined, { token: null })
    expect(one.status).toBe(200)
    assertDsp('Dataset', one.body)

    // Negotiation with the access body's permit: an agreement bound to the permit.
    const { agreement } = await negotiate(consumer, anon['@id'], vitals['@id'] as string)
    const expanded = JSON.stringify(await expandDsp({ ...ctx, '@type': 'ContractAgreementMessage', providerPid: 'urn:x', consumerPid: 'urn:y', agreement }))
    expect(expanded).toContain('http://www.w3.org/ns/odrl/2/Agreement')
    expect(agreement.target).toBe(vitals['@id'])
    const perm = (agreement.permission as Array<{ constraint: Array<{ leftOperand: string, rightOperand: unknown }> }>)[0]!.constraint
    expect(perm).toContainEqual({ leftOperand: 'urn:ambulink:odrl:dataPermit', operator: 'eq', rightOperand: jti })
    expect(perm).toContainEqual({ leftOperand: 'purpose', operator: 'eq', rightOperand: 'Pre-hospital STEMI triage study' })

    // Transfer: the start message carries the endpoint and a token for the agreement's dataset.
    const tr = await startTransfer(consumer, agreement['@id'] as string)
    expect(tr.endpoint).toBe(`${tg.httpUrl}/dataspace/extract?dataset=vitals`)
    const got = await pull(`${tr.endpoint}&format=ndjson`, tr.token)
    expect(got.status, got.body).toBe(200)
    expect(got.headers['ambulink-protection']).toBe('anonymised')
    expect(got.headers['ambulink-permit']).toBe(jti)
    const rows = got.body.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Record<string, unknown>)
    expect(rows.length).toBeGreaterThan(0)
    for (const id of identifiers(encounters)) expect(got.body).not.toContain(id)
    // The token serves the agreement's dataset only, and never the live stream.
    expect((await pull(`${tg.httpUrl}/dataspace/extract?dataset=alerts`, tr.token)).status).toBe(403)
    const live = await pull(`${tg.httpUrl}/dataspace/stream?dataset=vitals`, tr.token)
    expect(live.status).toBe(403)
    expect(JSON.parse(live.body)).toMatchObject({ code: 'AMB_ERR_DSP_TRANSFER_ONLY_PULL' })

    // Revocation mid-transfer: a pull waits on InfluxDB; the access body lists the permit.
    relay.hold = true
    const heldBefore = relay.heldBytes
    const open = pull(`${tr.endpoint}&format=ndjson`, tr.token).then(r => ({ ok: r }), (err: unknown) => ({ err: err as Error }))
    try {
      await waitFor(async () => relay.heldBytes > heldBefore ? true : undefined, { timeoutMs: 10_000, intervalMs: 20, what: 'pull waiting on InfluxDB' })
      revoked.push(jti)
      const term = await consumer.waitFor(r => r.type === 'TransferTerminationMessage' && r.body.consumerPid === tr.consumerPid)
      expect(term.body.code).toBe('AMB_ERR_PERMIT_REVOKED')
      const outcome = await open
      // Cut: the connection was destroyed, no complete answer came.
      expect('err' in outcome ? outcome.err.message : `status ${outcome.ok.status}`).toMatch(/socket hang up|ECONNRESET|aborted/)
    } finally {
      relay.hold = false
    }
    const state = await consumer.call('GET', `/transfers/${encodeURIComponent(tr.providerPid)}`)
    // The permit itself is revoked now: the provider refuses it (401) rather than describe the transfer.
    expect(state.status).toBe(401)
    assertDsp('TransferError', state.body)
    expect(state.body!.code).toBe('AMB_ERR_PERMIT_REVOKED')
    // The provider's durable state says so (what a restart would read back).
    const saved = JSON.parse(await readFile(join(tg.dataDir, 'dataspace', 'dsp-state.json'), 'utf8')) as { transfers: Array<{ providerPid: string, state: string, code: string, tokenHash: string | null }> }
    expect(saved.transfers.find(t => t.providerPid === tr.providerPid)).toMatchObject({ state: 'TERMINATED', code: 'AMB_ERR_PERMIT_REVOKED', tokenHash: null })
    expect(JSON.stringify(saved)).not.toContain(tr.token)
    const again = await pull(`${tr.endpoint}&format=ndjson`, tr.token)
    expect(again.status).toBe(401)
    expect(JSON.parse(again.body)).toMatchObject({ code: 'AMB_ERR_DSP_TRANSFER_TOKEN' })
    // Every callback the provider sent validated against the official schemas.
    expect(consumer.received.filter(r => r.type === 'INVALID')).toEqual([])
  })

  it('the permit\'s expiry bounds the pull token and terminates the transfer when it comes', async () => {
    // Expires in a few seconds: long enough to negotiate, short enough to wait for.
    const expS = Math.floor(Date.now() / 1000) + 15
    consumer.permit = (await permit({ exp: expS })).token
    const { agreement } = await negotiate(consumer, 'urn:ambulink:offer:vitals:anonymised', 'urn:ambulink:dataset:vitals')
    const tr = await startTransfer(consumer, agreement['@id'] as string)
    const expiresAt = (tr.start.body.dataAddress as { endpointProperties: Array<{ name: string, value: string }> }).endpointProperties.find(p => p.name === 'expiresAt')!.value
    // The token never outlives the permit (DATASPACE_DSP_TOKEN_TTL_MS is 10 min here).
    expect(Date.parse(expiresAt)).toBe(expS * 1000)
    const term = await consumer.waitFor(r => r.type === 'TransferTerminationMessage' && r.body.consumerPid === tr.consumerPid, 40_000)
    expect(term.body.code).toBe('AMB_ERR_PERMIT_EXPIRED')
    const after = await pull(`${tr.endpoint}&format=ndjson`, tr.token)
    expect(after.status).toBe(401)
    expect(JSON.parse(after.body)).toMatchObject({ code: 'AMB_ERR_DSP_TRANSFER_TOKEN' })
    // The agreement and the transfer are in the audit log.
    const log = await readFile(join(tg.dataDir, 'dataspace', 'audit.log'), 'utf8')
    expect(log).toMatch(/"kind":"dsp\.negotiation"[^\n]*"outcome":"granted"/)
    expect(log).toMatch(/"kind":"dsp\.transfer"[^\n]*"outcome":"closed"[^\n]*AMB_ERR_PERMIT_EXPIRED/)
  })

  it('a local permit (`ambulink permit grant`) negotiates and pulls too, the agreement assigned to the local researcher', async () => {
    let out = ''
    const code = await runPermitCli(['grant', '--researcher', 'dr-ana', '--datasets', 'vitals', '--purpose', 'Local DSP check',
      '--from', new Date(T0 - HOUR).toISOString(), '--to', new Date(T0 + HOUR).toISOString(), '--expires', new Date(Date.now() + HOUR).toISOString()],
    { stdout: t => { out += t }, stderr: () => {} }, tg.gw.config)
    expect(code).toBe(0)
    consumer.permit = out.trim()
    const { agreement } = await negotiate(consumer, 'urn:ambulink:offer:vitals:anonymised', 'urn:ambulink:dataset:vitals')
    expect(agreement.assignee).toBe('urn:ambulink:researcher:dr-ana')
    const tr = await startTransfer(consumer, agreement['@id'] as string)
    const got = await pull(`${tr.endpoint}&format=csv`, tr.token)
    expect(got.status, got.body).toBe(200)
    expect(got.body.split('\n')[0]).toMatch(/^subject,time/)
  })

  it('a permit that does not cover the offer ends the negotiation TERMINATED with a reason', async () => {
    consumer.permit = (await permit({ datasets: ['vitals'], level: 'anonymised' })).token
    const consumerPid = consumer.newPid()
    const ack = await consumer.call('POST', '/negotiations/request', {
      ...ctx, '@type': 'ContractRequestMessage', consumerPid, callbackAddress: consumer.callbackAddress,
      offer: { '@id': 'urn:ambulink:offer:vitals:pseudonymised', '@type': 'Offer', target: 'urn:ambulink:dataset:vitals', permission: [{ action: 'use' }] }
    })
    expect(ack.status).toBe(201)
    const term = await consumer.waitFor(r => r.type === 'ContractNegotiationTerminationMessage' && r.body.consumerPid === consumerPid)
    expect(term.body.code).toBe('AMB_ERR_DSP_OFFER_NOT_COVERED')
    expect((term.body.reason as string[])[0]).toMatch(/level pseudonymised/)
    const st = await consumer.call('GET', `/negotiations/${encodeURIComponent(ack.body!.providerPid as string)}`)
    assertDsp('ContractNegotiation', st.body)
    expect(st.body!.state).toBe('TERMINATED')
    // And a dataset the permit does not name.
    const pid2 = consumer.newPid()
    await consumer.call('POST', '/negotiations/request', {
      ...ctx, '@type': 'ContractRequestMessage', consumerPid: pid2, callbackAddress: consumer.callbackAddress,
      offer: { '@id': 'urn:ambulink:offer:ecg:anonymised', '@type': 'Offer', target: 'urn:ambulink:dataset:ecg', permission: [{ action: 'use' }] }
    })
    expect((await consumer.waitFor(r => r.type === 'ContractNegotiationTerminationMessage' && r.body.consumerPid === pid2)).body.code).toBe('AMB_ERR_DSP_OFFER_NOT_COVERED')
    const log = await readFile(join(tg.dataDir, 'dataspace', 'audit.log'), 'utf8')
    expect(log).toMatch(/"kind":"dsp\.negotiation"[^\n]*"outcome":"refused"[^\n]*AMB_ERR_DSP_OFFER_NOT_COVERED/)
  })

  it('refuses bad messages with schema-valid DSP errors, hides other permits\' processes, and enforces the state machine', async () => {
    consumer.permit = (await permit()).token
    // Not JSON; JSON that fails the schema (no consumerPid); an unknown offer; no permit at all.
    const notJson = await consumer.call('POST', '/negotiations/request', undefined, { raw: '{"@type":' })
    expect(notJson.status).toBe(400)
    assertDsp('ContractNegotiationError', notJson.body)
    expect(notJson.body!.code).toBe('AMB_ERR_DSP_BAD_MESSAGE')
    const noPid = await fetch(`${base}/negotiations/request`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${consumer.permit}` }, body: JSON.stringify({ ...ctx, '@type': 'ContractRequestMessage', offer: { '@id': 'x', '@type': 'Offer' }, callbackAddress: consumer.callbackAddress }) })
    const noPidBody = await noPid.json() as Record<string, unknown>
    expect(noPid.status).toBe(400)
    assertDsp('ContractNegotiationError', noPidBody)
    expect(noPidBody.code).toBe('AMB_ERR_DSP_BAD_MESSAGE')
    expect(JSON.stringify(noPidBody.reason)).toContain('consumerPid')
    const badCat = await consumer.call('POST', '/catalog/request', undefined, { raw: JSON.stringify({ '@type': 'CatalogRequestMessage' }), token: null })
    expect(badCat.status).toBe(400)
    assertDsp('CatalogError', badCat.body)
    const unknown = await consumer.call('POST', '/negotiations/request', { ...ctx, '@type': 'ContractRequestMessage', consumerPid: consumer.newPid(), callbackAddress: consumer.callbackAddress, offer: { '@id': 'urn:ambulink:offer:vitals:raw', '@type': 'Offer', target: 'urn:ambulink:dataset:vitals', permission: [{ action: 'use' }] } })
    expect(unknown.status).toBe(400)
    expect(unknown.body!.code).toBe('AMB_ERR_DSP_UNKNOWN_OFFER')
    const anonymous = await consumer.call('POST', '/negotiations/request', { ...ctx, '@type': 'ContractRequestMessage', consumerPid: consumer.newPid(), callbackAddress: consumer.callbackAddress, offer: { '@id': 'urn:ambulink:offer:vitals:anonymised', '@type': 'Offer', target: 'urn:ambulink:dataset:vitals', permission: [{ action: 'use' }] } }, { token: null })
    expect(anonymous.status).toBe(401)
    assertDsp('ContractNegotiationError', anonymous.body)
    expect(anonymous.body!.code).toBe('AMB_ERR_PERMIT_MISSING')
    const ftp = await consumer.call('POST', '/negotiations/request', { ...ctx, '@type': 'ContractRequestMessage', consumerPid: consumer.newPid(), callbackAddress: 'ftp://127.0.0.1/cb', offer: { '@id': 'urn:ambulink:offer:vitals:anonymised', '@type': 'Offer', target: 'urn:ambulink:dataset:vitals', permission: [{ action: 'use' }] } })
    expect(ftp.body!.code).toBe('AMB_ERR_DSP_CALLBACK')

    // A finalised agreement; another permit sees 404 for it; verifying twice is a state error.
    const { providerPid, consumerPid, agreement } = await negotiate(consumer, 'urn:ambulink:offer:vitals:anonymised', 'urn:ambulink:dataset:vitals')
    const other = (await permit()).token
    const hidden = await consumer.call('GET', `/negotiations/${encodeURIComponent(providerPid)}`, undefined, { token: other })
    expect(hidden.status).toBe(404)
    const twice = await consumer.call('POST', `/negotiations/${encodeURIComponent(providerPid)}/agreement/verification`, { ...ctx, '@type': 'ContractAgreementVerificationMessage', providerPid, consumerPid })
    expect(twice.status).toBe(400)
    assertDsp('ContractNegotiationError', twice.body)
    expect(twice.body!.code).toBe('AMB_ERR_DSP_STATE')
    const stranger = await consumer.call('POST', '/transfers/request', { ...ctx, '@type': 'TransferRequestMessage', consumerPid: consumer.newPid(), agreementId: agreement['@id'] as string, format: 'HttpData-PULL', callbackAddress: consumer.callbackAddress }, { token: other })
    expect(stranger.status).toBe(404)
    assertDsp('TransferError', stranger.body)

    // Suspension voids the token; restarting sends a new start message with a fresh one.
    const tr = await startTransfer(consumer, agreement['@id'] as string)
    expect((await pull(`${tr.endpoint}&format=ndjson`, tr.token)).status).toBe(200)
    const sus = await consumer.call('POST', `/transfers/${encodeURIComponent(tr.providerPid)}/suspension`, { ...ctx, '@type': 'TransferSuspensionMessage', providerPid: tr.providerPid, consumerPid: tr.consumerPid, reason: ['pausing'] })
    expect(sus.status).toBe(200)
    expect((await consumer.call('GET', `/transfers/${encodeURIComponent(tr.providerPid)}`)).body!.state).toBe('SUSPENDED')
    expect((await pull(`${tr.endpoint}&format=ndjson`, tr.token)).status).toBe(401)
    const before = consumer.received.filter(r => r.type === 'TransferStartMessage' && r.body.consumerPid === tr.consumerPid).length
    const restart = await consumer.call('POST', `/transfers/${encodeURIComponent(tr.providerPid)}/start`, { ...ctx, '@type': 'TransferStartMessage', providerPid: tr.providerPid, consumerPid: tr.consumerPid })
    expect(restart.status).toBe(200)
    const second = await consumer.waitFor(r => r.type === 'TransferStartMessage' && r.body.consumerPid === tr.consumerPid && consumer.received.filter(x => x.type === 'TransferStartMessage' && x.body.consumerPid === tr.consumerPid).indexOf(r) === before)
    const token2 = ((second.body.dataAddress as { endpointProperties: Array<{ name: string, value: string }> }).endpointProperties.find(p => p.name === 'authorization'))!.value
    expect(token2).not.toBe(tr.token)
    expect((await pull(`${tr.endpoint}&format=ndjson`, token2)).status).toBe(200)
    const done = await consumer.call('POST', `/transfers/${encodeURIComponent(tr.providerPid)}/completion`, { ...ctx, '@type': 'TransferCompletionMessage', providerPid: tr.providerPid, consumerPid: tr.consumerPid })
    expect(done.status).toBe(200)
    expect((await consumer.call('GET', `/transfers/${encodeURIComponent(tr.providerPid)}`)).body!.state).toBe('COMPLETED')
    expect((await pull(`${tr.endpoint}&format=ndjson`, token2)).status).toBe(401)
    expect(consumer.received.filter(r => r.type === 'INVALID')).toEqual([])
  })
})

describe('DSP 2025-1 provider: the rest of the state machines', () => {
  it('answers application/ld+json too, refuses catalogue filters, lets the consumer terminate, and ends a process whose callback does not acknowledge', async () => {
    consumer.permit = (await permit()).token
    const ld = await consumer.call('POST', '/catalog/request', undefined, { raw: JSON.stringify({ ...ctx, '@type': 'CatalogRequestMessage' }), type: 'application/ld+json', token: null })
    expect(ld.status).toBe(200)
    assertDsp('Catalog', ld.body)
    const filtered = await consumer.call('POST', '/catalog/request', { ...ctx, '@type': 'CatalogRequestMessage', filter: [{ 'dct:identifier': 'vitals' }] }, { token: null })
    expect(filtered.status).toBe(400)
    assertDsp('CatalogError', filtered.body)
    const missing = await consumer.call('GET', `/catalog/datasets/${encodeURIComponent('urn:ambulink:dataset:patients')}`, undefined, { token: null })
    expect(missing.status).toBe(404)
    assertDsp('CatalogError', missing.body)

    // The consumer terminates an AGREED negotiation; accepting an offer the provider never made is a state error.
    const consumerPid = consumer.newPid()
    const offer = { '@id': 'urn:ambulink:offer:vitals:anonymised', '@type': 'Offer', target: 'urn:ambulink:dataset:vitals', permission: [{ action: 'use' }] }
    const ack = await consumer.call('POST', '/negotiations/request', { ...ctx, '@type': 'ContractRequestMessage', consumerPid, offer, callbackAddress: consumer.callbackAddress })
    const providerPid = ack.body!.providerPid as string
    await consumer.waitFor(r => r.type === 'ContractAgreementMessage' && r.body.consumerPid === consumerPid)
    await waitFor(async () => (await consumer.call('GET', `/negotiations/${encodeURIComponent(providerPid)}`)).body?.state === 'AGREED' ? true : undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'AGREED' })
    const accept = await consumer.call('POST', `/negotiations/${encodeURIComponent(providerPid)}/events`, { ...ctx, '@type': 'ContractNegotiationEventMessage', providerPid, consumerPid, eventType: 'ACCEPTED' })
    expect(accept.status).toBe(400)
    expect(accept.body!.code).toBe('AMB_ERR_DSP_STATE')
    const stop = await consumer.call('POST', `/negotiations/${encodeURIComponent(providerPid)}/termination`, { ...ctx, '@type': 'ContractNegotiationTerminationMessage', providerPid, consumerPid, code: 'CHANGED_MIND', reason: ['no longer needed'] })
    expect(stop.status).toBe(200)
    expect((await consumer.call('GET', `/negotiations/${encodeURIComponent(providerPid)}`)).body!.state).toBe('TERMINATED')

    // The consumer terminates a started transfer: its token stops working.
    const { agreement } = await negotiate(consumer, offer['@id'], offer.target)
    const tr = await startTransfer(consumer, agreement['@id'] as string)
    const end = await consumer.call('POST', `/transfers/${encodeURIComponent(tr.providerPid)}/termination`, { ...ctx, '@type': 'TransferTerminationMessage', providerPid: tr.providerPid, consumerPid: tr.consumerPid })
    expect(end.status).toBe(200)
    expect((await consumer.call('GET', `/transfers/${encodeURIComponent(tr.providerPid)}`)).body!.state).toBe('TERMINATED')
    expect((await pull(`${tr.endpoint}&format=ndjson`, tr.token)).status).toBe(401)

    // A callback address nobody answers at: the agreement is not acknowledged, the negotiation ends.
    const closed = await freePort()
    const lost = await consumer.call('POST', '/negotiations/request', { ...ctx, '@type': 'ContractRequestMessage', consumerPid: consumer.newPid(), offer, callbackAddress: `http://127.0.0.1:${closed}/cb` })
    expect(lost.status).toBe(201)
    await waitFor(async () => (await consumer.call('GET', `/negotiations/${encodeURIComponent(lost.body!.providerPid as string)}`)).body?.state === 'TERMINATED' ? true : undefined, { timeoutMs: 15_000, intervalMs: 100, what: 'TERMINATED after a lost callback' })
  })
})

describe('HealthDCAT-AP catalogue for a national harvester', () => {
  const NS = {
    rdf: 'http://www.w3.org/1999/02/22-rdf-syntax-ns#',
    dcat: 'http://www.w3.org/ns/dcat#',
    dct: 'http://purl.org/dc/terms/',
    dcatap: 'http://data.europa.eu/r5r/',
    hd: 'http://healthdataportal.eu/ns/health#',
    dpv: 'https://w3id.org/dpv#',
    foaf: 'http://xmlns.com/foaf/0.1/',
    xsd: 'http://www.w3.org/2001/XMLSchema#'
  }
  const nn = DataFactory.namedNode

  /** The properties a harvester needs (DCAT-AP 3 and HealthDCAT-AP mandatory, plus the ones the EHDS catalogue shows). */
  function checkGraph (store: Store, label: string): void {
    const catalogs = store.getSubjects(nn(NS.rdf + 'type'), nn(NS.dcat + 'Catalog'), null)
    expect(catalogs, label).toHaveLength(1)
    const datasets = store.getObjects(catalogs[0]!, nn(NS.dcat + 'dataset'), null)
    expect(datasets, label).toHaveLength(5)
    const one = (s: Parameters<Store['getObjects']>[0], p: string): ReturnType<Store['getObjects']> => store.getObjects(s, nn(p), null)
    for (const d of datasets) {
      expect(store.has(DataFactory.quad(d as never, nn(NS.rdf + 'type'), nn(NS.dcat + 'Dataset'))), label).toBe(true)
      const id = one(d, NS.dct + 'identifier')[0]?.value
      for (const p of [NS.dct + 'title', NS.dct + 'description', NS.dct + 'publisher', NS.dct + 'identifier', NS.dct + 'issued', NS.dct + 'modified',
        NS.dcat + 'distribution', NS.dcat + 'contactPoint', NS.dct + 'accessRights', NS.dct + 'spatial', NS.dct + 'temporal', NS.dcat + 'theme', NS.dcat + 'keyword',
        NS.hd + 'healthCategory', NS.hd + 'numberOfRecords', NS.hd + 'numberOfUniqueIndividuals', NS.hd + 'hdab', NS.dpv + 'hasPurpose', NS.dpv + 'hasLegalBasis',
        NS.dcatap + 'applicableLegislation', NS.dct + 'provenance', NS.hd + 'hasStructuredData']) {
        expect(one(d, p).length, `${label}: ${String(id)} lacks ${p}`).toBeGreaterThan(0)
      }
      expect(one(d, NS.dct + 'accessRights')[0]!.value).toBe('http://publications.europa.eu/resource/authority/access-right/RESTRICTED')
      expect(one(d, NS.dcat + 'theme')[0]!.value).toBe('http://publications.europa.eu/resource/authority/data-theme/HEAL')
      expect(one(d, NS.dct + 'spatial')[0]!.value).toBe('http://publications.europa.eu/resource/authority/country/FRA')
      expect(store.getObjects(one(d, NS.hd + 'hdab')[0]!, nn(NS.foaf + 'name'), null)[0]?.value).toBe('Health Data Access Body (test)')
      const records = one(d, NS.hd + 'numberOfRecords')[0]!
      expect((records as { datatype?: { value: string } }).datatype?.value).toBe(NS.xsd + 'nonNegativeInteger')
      const dists = one(d, NS.dcat + 'distribution')
      for (const dist of dists) {
        const url = store.getObjects(dist, nn(NS.dcat + 'accessURL'), null)[0]?.value ?? ''
        // Public URLs from configuration only.
        expect(url.startsWith(tg.httpUrl) || url.startsWith(tg.httpUrl.replace('http', 'ws')), url).toBe(true)
        expect(store.getObjects(dist, nn(NS.dcatap + 'applicableLegislation'), null).length).toBeGreaterThan(0)
      }
      expect(dists.some(x => store.getObjects(x, nn(NS.dcat + 'mediaType'), null).length > 0), label).toBe(true)
      expect(dists.some(x => store.getObjects(x, nn(NS.dcat + 'accessURL'), null)[0]?.value === `${tg.httpUrl}/dsp/2025-1`), label).toBe(true)
    }
    const vitals = datasets.find(d => one(d, NS.dct + 'identifier')[0]?.value === 'vitals')!
    expect(Number(one(vitals, NS.hd + 'numberOfRecords')[0]!.value)).toBe(encounters.length * VITALS_PER_ENCOUNTER + 2)
    expect(Number(one(vitals, NS.hd + 'numberOfUniqueIndividuals')[0]!.value)).toBe(encounters.length)
  }

  it('serves JSON-LD and Turtle by content negotiation; both parse as the same RDF with every property a harvester needs', async () => {
    const asJsonLd = await fetch(`${tg.httpUrl}/dataspace/catalog`, { headers: { accept: 'application/ld+json' } })
    expect(asJsonLd.headers.get('content-type')).toMatch(/^application\/ld\+json/)
    expect(asJsonLd.headers.get('vary')).toMatch(/accept/i)
    const doc = await asJsonLd.json() as object
    const nquads = await jsonld.toRDF(doc as jsonld.JsonLdDocument, { format: 'application/n-quads' }) as unknown as string
    const fromJsonLd = new Store(new Parser({ format: 'N-Quads' }).parse(nquads))
    checkGraph(fromJsonLd, 'JSON-LD')

    const asTurtle = await fetch(`${tg.httpUrl}/dataspace/catalog`, { headers: { accept: 'application/ld+json;q=0.5, text/turtle' } })
    expect(asTurtle.status).toBe(200)
    expect(asTurtle.headers.get('content-type')).toMatch(/^text\/turtle/)
    const ttl = await asTurtle.text()
    expect(ttl).toMatch(/@prefix healthdcatap: <http:\/\/healthdataportal\.eu\/ns\/health#>/)
    const fromTurtle = new Store(new Parser({ format: 'text/turtle' }).parse(ttl))
    checkGraph(fromTurtle, 'Turtle')
    // The same graph (blank nodes aside).
    const ground = (s: Store): number => s.getQuads(null, null, null, null).filter(q => q.subject.termType !== 'BlankNode' && q.object.termType !== 'BlankNode').length
    expect(ground(fromTurtle)).toBe(ground(fromJsonLd))
    expect(fromTurtle.size).toBe(fromJsonLd.size)

    // A client that asks for nothing in particular gets JSON-LD.
    expect((await fetch(`${tg.httpUrl}/dataspace/catalog`)).headers.get('content-type')).toMatch(/^application\/ld\+json/)
  })
})
