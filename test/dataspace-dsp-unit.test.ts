// The DSP provider's pure parts: the vendored schemas (the product's runtime copy equals the
// fixtures, the official examples validate, broken messages do not), every offer and agreement
// the provider builds against the official schemas, and the durable state across a restart.
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  DSP_CONTEXT, DspState, agreement, allOffers, dspCatalog, dspDataset, notCovered, parseOfferId, productDspValidator, type DspMessageType, type Negotiation, type Permit, type Transfer
} from '../streams/dataspace/index.js'
import { assertDsp, expandDsp } from '../testkit/dsp-consumer.js'
import { preferredCatalog } from '../gateway/dataspace/catalog-route.js'
import { Catalog, InfluxReader } from '../streams/dataspace/index.js'
import { startInfluxDB } from '../testkit/influxdb.js'

const FIXTURES = new URL('./fixtures/dsp/', import.meta.url)
const RUNTIME = new URL('../streams/dataspace/dsp/schemas/', import.meta.url)

const permit: Permit = {
  id: '6f1c2d8e-0b7a-4d5e-9f3a-2c1b0a998877', researcher: 'dr-ana', accountId: 'acc-1', datasets: ['vitals', 'alerts'],
  fields: { vitals: ['heart_rate'], alerts: ['kind'] }, fromMs: 0, toMs: 1e12, purpose: 'STEMI triage study', level: 'anonymised', issuedAtMs: 0, expiresAtMs: 2e12
}

describe('vendored DSP 2025-1 schemas', () => {
  it('the product validates with exactly the official files the tests use', async () => {
    const runtime = (await readdir(RUNTIME)).filter(f => f.endsWith('.json')).sort()
    expect(runtime.length).toBe(25)
    for (const f of runtime) {
      const dir = f.startsWith('catalog') || f.startsWith('dataset') ? 'catalog' : f.startsWith('contract') ? 'negotiation' : f.startsWith('transfer') || f.startsWith('data-address') ? 'transfer' : 'common'
      expect(await readFile(new URL(f, RUNTIME), 'utf8'), f).toBe(await readFile(new URL(`${dir}/${f}`, FIXTURES), 'utf8'))
    }
    expect(await readFile(new URL('LICENSE', RUNTIME), 'utf8')).toBe(await readFile(new URL('LICENSE', FIXTURES), 'utf8'))
    expect(await readFile(new URL('LICENSE', FIXTURES), 'utf8')).toMatch(/Apache License\s+Version 2\.0/)
    // Draft 2019-09, which is why ajv's Ajv2019 compiles them.
    for (const f of runtime) expect((JSON.parse(await readFile(new URL(f, RUNTIME), 'utf8')) as { $schema: string }).$schema, f).toBe('https://json-schema.org/draft/2019-09/schema')
  })

  it.each([
    ['catalog.json', 'Catalog'], ['dataset.json', 'Dataset'], ['catalog-request-message.json', 'CatalogRequestMessage'],
    ['contract-request-message_initial.json', 'ContractRequestMessage'], ['contract-agreement-message.json', 'ContractAgreementMessage'],
    ['contract-negotiation.json', 'ContractNegotiation'], ['contract-negotiation-termination-message.json', 'ContractNegotiationTerminationMessage'],
    ['transfer-request-message.json', 'TransferRequestMessage'], ['transfer-start-message.json', 'TransferStartMessage'],
    ['transfer-termination-message.json', 'TransferTerminationMessage'], ['transfer-error.json', 'TransferError'], ['protocol-version.json', 'VersionResponse']
  ] as const)('the official example %s validates as %s, in the product and in the tests', async (file, type) => {
    const ex = JSON.parse(await readFile(new URL(`examples/${file}`, FIXTURES), 'utf8')) as unknown
    expect(productDspValidator().errors(type, ex)).toBeNull()
    assertDsp(type, ex)
  })

  it.each([
    ['ContractRequestMessage', { '@context': [DSP_CONTEXT], '@type': 'ContractRequestMessage', offer: { '@id': 'x', '@type': 'Offer', permission: [{ action: 'use' }] }, callbackAddress: 'https://c' }],
    ['ContractRequestMessage', { '@context': ['https://example.org/other.jsonld'], '@type': 'ContractRequestMessage', consumerPid: 'a', offer: { '@id': 'x', '@type': 'Offer', permission: [{ action: 'use' }] }, callbackAddress: 'https://c' }],
    ['TransferTerminationMessage', { '@context': [DSP_CONTEXT], '@type': 'TransferTerminationMessage', providerPid: 'a' }],
    ['TransferRequestMessage', { '@context': [DSP_CONTEXT], '@type': 'TransferRequestMessage', consumerPid: 'a', agreementId: 'b', callbackAddress: 'https://c' }],
    ['ContractAgreementVerificationMessage', { '@context': [DSP_CONTEXT], '@type': 'ContractAgreementMessage', providerPid: 'a', consumerPid: 'b' }]
  ] as Array<[DspMessageType, unknown]>)('refuses a broken %s', (type, msg) => {
    expect(productDspValidator().errors(type, msg)).not.toBeNull()
    expect(() => { assertDsp(type, msg) }).toThrow()
  })
})

describe('offers and agreements', () => {
  it('every offer and the catalogue validate, and expand under the official JSON-LD context', async () => {
    const cat = dspCatalog({ participantId: 'https://gw.example', serviceUrl: 'https://gw.example/dsp/2025-1' })
    assertDsp('Catalog', cat)
    const expanded = JSON.stringify(await expandDsp(cat))
    expect(expanded).toContain('http://www.w3.org/ns/dcat#Catalog')
    expect(expanded).toContain('http://www.w3.org/ns/odrl/2/prohibition')
    // anonymised and pseudonymised for each of the five datasets, aggregated for vitals only; never statistical (no pull)
    expect(allOffers()).toHaveLength(11)
    expect(allOffers().some(o => o['@id'].endsWith(':statistical'))).toBe(false)
    assertDsp('Dataset', dspDataset('ecg'))
  })

  it.each([
    [{ dataset: 'vitals', level: 'anonymised' }, null],
    [{ dataset: 'vitals', level: 'pseudonymised' }, /level/],
    [{ dataset: 'ecg', level: 'anonymised' }, /does not name/]
  ] as const)('a permit for vitals+alerts at anonymised and the offer %j', (o, why) => {
    const r = notCovered(permit, o)
    if (why === null) expect(r).toBeNull()
    else expect(r).toMatch(why)
  })

  it('parses only the offers it makes', () => {
    expect(parseOfferId('urn:ambulink:offer:vitals:anonymised')).toEqual({ dataset: 'vitals', level: 'anonymised' })
    expect(parseOfferId('urn:ambulink:offer:vitals:raw')).toBeNull()
    expect(parseOfferId('urn:ambulink:offer:patients:anonymised')).toBeNull()
  })

  it('an agreement is bound to the permit and validates inside a ContractAgreementMessage', () => {
    const a = agreement({ id: 'urn:uuid:1', dataset: 'vitals', permit, assigner: 'https://gw.example', assignee: 'urn:ambulink:researcher:dr-ana', atMs: 1_700_000_000_000 })
    assertDsp('ContractAgreementMessage', { '@context': [DSP_CONTEXT], '@type': 'ContractAgreementMessage', providerPid: 'urn:p', consumerPid: 'urn:c', agreement: a })
    expect(a.permission[0]!.constraint).toContainEqual({ leftOperand: 'urn:ambulink:odrl:dataPermit', operator: 'eq', rightOperand: permit.id })
    expect(a.prohibition).toEqual([{ action: 'urn:ambulink:odrl:reidentify' }])
  })
})

describe('durable state', () => {
  let dir: string | undefined
  afterEach(async () => { if (dir !== undefined) await rm(dir, { recursive: true, force: true }); dir = undefined })

  it('keeps agreements and started transfers across a restart, ends what awaited the provider, and stores no token', async () => {
    dir = await mkdtemp(join(tmpdir(), 'amb-dsp-state-'))
    const path = join(dir, 'dataspace', 'dsp-state.json')
    let now = 1_700_000_000_000
    const s = await DspState.open(path, () => now)
    const neg = (pid: string, state: Negotiation['state']): Negotiation => ({
      providerPid: pid, consumerPid: `c-${pid}`, state, callbackAddress: 'https://c/', offerId: 'urn:ambulink:offer:vitals:anonymised', dataset: 'vitals', level: 'anonymised',
      permit, agreement: state === 'FINALIZED' ? agreement({ id: 'urn:uuid:a', dataset: 'vitals', permit, assigner: 'p', assignee: 'c', atMs: now }) : null, code: null, reason: null, updatedAt: ''
    })
    s.negotiations.set('n1', neg('n1', 'FINALIZED'))
    s.negotiations.set('n2', neg('n2', 'REQUESTED'))
    const tr: Transfer = { providerPid: 't1', consumerPid: 'c-t1', state: 'STARTED', callbackAddress: 'https://c/', agreementId: 'urn:uuid:a', dataset: 'vitals', permit, tokenHash: 'ab'.repeat(32), tokenExpiresAtMs: now + 1000, code: null, reason: null, updatedAt: '' }
    s.transfers.set('t1', tr)
    await s.save()
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    now += 5000
    const r = await DspState.open(path, () => now)
    expect(r.negotiations.get('n1')?.state).toBe('FINALIZED')
    expect(r.byAgreement('urn:uuid:a')?.providerPid).toBe('n1')
    expect(r.negotiations.get('n2')).toMatchObject({ state: 'TERMINATED', code: 'AMB_ERR_DSP_STATE' })
    expect(r.byTokenHash('ab'.repeat(32))?.providerPid).toBe('t1')
    // The termination at open was itself written: a third start reads it back.
    expect((await DspState.open(path)).negotiations.get('n2')?.state).toBe('TERMINATED')
  })

  it('a state that cannot be written is refused as AMB_ERR_DSP_STATE_STORE (retry later), so nothing is acknowledged', async () => {
    dir = await mkdtemp(join(tmpdir(), 'amb-dsp-state-'))
    const s = await DspState.open(join(dir, 'dataspace', 'dsp-state.json'))
    // The state's folder becomes a file: every write fails (root ignores file modes, so no chmod here).
    await writeFile(join(dir, 'dataspace'), 'not a folder')
    const err = await s.save().then(() => null, (e: unknown) => e as { code: string, statusCode: number, canRetry: () => boolean })
    expect(err?.code).toBe('AMB_ERR_DSP_STATE_STORE')
    expect(err?.statusCode).toBe(503)
    expect(err?.canRetry()).toBe(true)
    // And a state that cannot be read stops the start with the same code, rather than starting empty.
    await expect(DspState.open(join(dir, 'dataspace', 'dsp-state.json'))).rejects.toMatchObject({ code: 'AMB_ERR_DSP_STATE_STORE' })
  })
})

describe('catalogue content negotiation', () => {
  it.each([
    [undefined, 'jsonld'], ['', 'jsonld'], ['text/turtle', 'turtle'], ['application/ld+json', 'jsonld'], ['*/*', 'jsonld'],
    ['application/ld+json;q=0.5, text/turtle', 'turtle'], ['text/turtle;q=0.2, application/json', 'jsonld'], ['text/turtle;q=0', 'jsonld'], ['text/html', 'jsonld']
  ] as const)('Accept %j → %s', (accept, want) => { expect(preferredCatalog(accept)).toBe(want) })
})

describe('HealthDCAT-AP individuals count on a real InfluxDB', () => {
  it('publishes distinct encounters only when there are none or at least k of them', async () => {
    const influx = await startInfluxDB()
    try {
      await influx.createDatabase('amb_cat')
      const t = Date.now() - 60_000
      await influx.write('amb_cat', [`vitals,unit=U1,encounter=E1 heart_rate=70 ${t}`, `vitals,unit=U1,encounter=E2 heart_rate=71 ${t + 1}`, `vitals,unit=U1 heart_rate=72 ${t + 2}`], 'ms')
      // 30 s: a query timed out on a loaded machine leaves the catalogue without counts (and backs off).
      const reader = new InfluxReader({ url: influx.url, db: 'amb_cat', chunkRows: 100, timeoutMs: 30_000 })
      const info = { baseUrl: 'https://gw.example', publisher: 'p', contactEmail: 'c@example.org' }
      const vitals = async (k: number): Promise<Record<string, unknown>> => ((await new Catalog(reader, 0).document({ ...info, k }))['dcat:dataset'] as Array<Record<string, unknown>>)[0]!
      // Two encounters (the frame without one belongs to nobody): below k = 5, not published.
      expect(await vitals(5)).not.toHaveProperty(['healthdcatap:numberOfUniqueIndividuals'])
      expect((await vitals(2))['healthdcatap:numberOfUniqueIndividuals']).toEqual({ '@value': '2', '@type': 'xsd:nonNegativeInteger' })
      // Nobody at all is said out loud: 0 discloses no one (ecg has no data here).
      const ecg = ((await new Catalog(reader, 0).document({ ...info, k: 5 }))['dcat:dataset'] as Array<Record<string, unknown>>)[1]!
      expect(ecg['healthdcatap:numberOfUniqueIndividuals']).toEqual({ '@value': '0', '@type': 'xsd:nonNegativeInteger' })
    } finally {
      await influx.stop()
    }
  }, 60_000)
})
