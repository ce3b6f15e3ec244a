// The dataspace end to end, against a real InfluxDB 1.x and a real gateway: seed frames from
// ambulances over MQTT (mqtt.js), then read them back as a researcher holding a data permit —
// extracts in every format, the live stream — and check what must never leave does not, what
// the permit does not cover is refused, and every access lands in a tamper-evident audit log.
import { spawn } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FrameDecoder, VITAL_SIGNS, encodeFrame } from '../decoders/index.js'
import { runAuditCli, runPermitCli } from '../cli/dataspace.js'
import { loadConfig } from '../gateway/config.js'
import { addUser } from '../gateway/credentials.js'
import { DATASETS, normalisePermitRequest, openKeys, readAudit, signPermit, auditLogPath, type AuditEntry } from '../streams/dataspace/index.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { get, openLive, type HttpResult } from '../testkit/dataspace-client.js'
import {
  ALARM_TEXT, ECG_LEADS, ECG_SAMPLES, FRAMES_PER_ENCOUNTER, UNITS, VITALS_PER_ENCOUNTER,
  frameTime, heartRate, identifiers, publishSeed, seedEncounters, type SeedEncounter
} from '../testkit/dataspace-seed.js'
import { waitFor } from '../testkit/proc.js'

const DB = 'amb_dataspace'
const HOUR = 3_600_000
const T0 = Math.floor(Date.now() / 1000) * 1000 - HOUR
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

let influx: InfluxServer
let tg: TestGateway
let encounters: SeedEncounter[]
/** Every body, header and live message any test received: the identifier scan reads them all. */
const outputs: string[] = []
/** Identifiers the live tests add to the seed's. */
const extraIdentifiers: string[] = []

function record (r: HttpResult): HttpResult {
  outputs.push(r.body, JSON.stringify(r.headers), JSON.stringify(r.trailers))
  return r
}

async function cli (run: typeof runPermitCli, args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await run(args, { stdout: t => { stdout += t }, stderr: t => { stderr += t } }, tg.gw.config)
  return { code, stdout, stderr }
}

const iso = (ms: number): string => new Date(ms).toISOString()
const WINDOW = { from: T0 - HOUR, to: T0 + 3 * HOUR }

async function grant (researcher: string, extra: string[] = []): Promise<string> {
  const r = await cli(runPermitCli, ['grant', '--researcher', researcher, '--datasets', 'vitals,ecg,alerts,position,assessment',
    '--purpose', 'Pre-hospital STEMI triage study', '--from', iso(WINDOW.from), '--to', iso(WINDOW.to), '--expires', iso(Date.now() + HOUR), ...extra])
  expect(r.code, r.stderr).toBe(0)
  expect(r.stdout.trim().split('\n')).toHaveLength(1)
  return r.stdout.trim()
}

function extractUrl (params: Record<string, string>): string {
  return `${tg.httpUrl}/dataspace/extract?${new URLSearchParams(params).toString()}`
}

async function extract (token: string | undefined, params: Record<string, string>): Promise<HttpResult> {
  return record(await get(extractUrl(params), token))
}

function ndjson (body: string): Array<Record<string, unknown>> {
  return body.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Record<string, unknown>)
}

/** RFC 3339 with µs → Unix µs. */
function parseUs (s: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)\.(\d{6})Z$/.exec(s)
  if (m === null) throw new Error(`not a µs timestamp: ${s}`)
  return Date.parse(m[1]! + 'Z') * 1000 + Number(m[2])
}

/** Which seed encounter and frame a heart rate came from (heart rates are unique per frame). */
function fromHeartRate (hr: number): { enc: SeedEncounter, frame: number } {
  for (const enc of encounters) {
    for (let i = 0; i < FRAMES_PER_ENCOUNTER; i++) if (Math.floor(hr) === heartRate(enc.index, i)) return { enc, frame: i }
  }
  throw new Error(`unknown heart rate ${hr}`)
}

beforeAll(async () => {
  influx = await startInfluxDB()
  // Tiny chunks: every extract spans many InfluxDB chunks, with series split across them.
  tg = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: DB, dataspaceLiveMaxBufferBytes: 64 * 1024, dataspaceChunkRows: 7 })
  const tokens: Record<string, string> = {}
  for (const u of UNITS) tokens[u] = await tg.addDevice(u)
  for (const r of ['dr-ana', 'dr-bo', 'dr-eve']) await tg.addUser(r, 'researcher')
  await tg.addUser('nurse-cy', 'clinician')
  encounters = seedEncounters(T0)
  await publishSeed(tg.mqttUrl, tokens, encounters, T0)
  const expected = encounters.length * VITALS_PER_ENCOUNTER + 2
  await waitFor(async () => (await influx.count(DB, 'vitals', 'heart_rate')) >= expected && (await influx.count(DB, 'alerts', 'message')) > 0 ? true : undefined,
    { timeoutMs: 15_000, intervalMs: 100, what: 'seed in InfluxDB' })
})

afterAll(async () => {
  for (const d of pinDirs) await rm(d, { recursive: true, force: true })
  await tg?.close()
  await influx?.stop()
})

describe('catalogue', () => {
  it('is public DCAT-AP / HealthDCAT-AP JSON-LD with one dataset per measurement, counts and coverage from InfluxDB', async () => {
    const r = record(await get(`${tg.httpUrl}/dataspace/catalog`))
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toMatch(/application\/ld\+json/)
    const doc = JSON.parse(r.body) as Record<string, unknown>
    expect(doc['@type']).toBe('dcat:Catalog')
    expect((doc['@context'] as Record<string, string>).healthdcatap).toBe('http://healthdataportal.eu/ns/health#')
    const datasets = doc['dcat:dataset'] as Array<Record<string, unknown>>
    expect(datasets.map(d => d['dct:identifier'])).toEqual(['vitals', 'ecg', 'alerts', 'position', 'assessment'])
    for (const d of datasets) {
      expect(d['@type']).toBe('dcat:Dataset')
      for (const p of ['dct:title', 'dct:description', 'dcat:keyword', 'dct:accessRights', 'dpv:hasPurpose', 'dpv:hasLegalBasis', 'dcat:contactPoint', 'dct:publisher', 'dcat:distribution', 'dct:temporal', 'healthdcatap:numberOfRecords']) {
        expect(d, `${String(d['dct:identifier'])} lacks ${p}`).toHaveProperty([p])
      }
      expect((d['dct:accessRights'] as { '@id': string })['@id']).toMatch(/access-right\/RESTRICTED$/)
    }
    const vitals = datasets[0]!
    expect(Number((vitals['healthdcatap:numberOfRecords'] as { '@value': string })['@value'])).toBe(encounters.length * VITALS_PER_ENCOUNTER + 2)
    const temporal = vitals['dct:temporal'] as Record<string, { '@value': string }>
    expect(temporal['dcat:startDate']!['@value']).toBe(iso(T0 - 60_000).slice(0, 10))
    const urls = (vitals['dcat:distribution'] as Array<Record<string, { '@id': string }>>).map(d => d['dcat:accessURL']!['@id'])
    expect(urls.some(u => u.includes('format=fhir'))).toBe(true)
    // No DATASPACE_PUBLIC_URL: relative URLs, never a host taken from the request.
    expect(urls.every(u => u.startsWith('/dataspace/'))).toBe(true)
  })

  it('refuses Turtle without DATASPACE_PUBLIC_URL (RDF needs absolute IRIs), and still serves JSON-LD', async () => {
    const r = await fetch(`${tg.httpUrl}/dataspace/catalog`, { headers: { accept: 'text/turtle' } })
    expect(r.status).toBe(400)
    expect(await r.json()).toMatchObject({ code: 'AMB_ERR_DATASPACE_FORMAT' })
    expect((await fetch(`${tg.httpUrl}/dataspace/catalog`, { headers: { accept: 'application/ld+json' } })).status).toBe(200)
  })
})

describe('extracts', () => {
  let anon: string
  let pseudo: string
  beforeAll(async () => {
    anon = await grant('dr-ana')
    pseudo = await grant('dr-ana', ['--level', 'pseudonymised'])
  })

  it('ndjson at level anonymised: k-anonymity suppresses the lone 90+ patient and says so; times shifted per encounter with intervals kept; ages banded', async () => {
    const r = await extract(anon, { dataset: 'vitals', format: 'ndjson' })
    expect(r.status, r.body).toBe(200)
    expect(r.headers['ambulink-protection']).toBe('anonymised')
    expect(r.headers['ambulink-k-anonymity']).toBe('5')
    // Encounters released; the one withheld is a count below k, so it is not said exactly.
    expect(r.headers['ambulink-encounters']).toBe(String(encounters.length - 1))
    expect(r.headers['ambulink-suppressed-encounters']).toBe('<5')
    expect(r.headers['ambulink-suppressed-classes']).toBe('1/3')
    expect(r.trailers['ambulink-rows']).toBe(String(11 * VITALS_PER_ENCOUNTER))
    expect(r.trailers['ambulink-suppressed-rows']).toBeUndefined()
    expect(r.trailers['ambulink-unassigned-rows']).toBeUndefined()
    expect(r.trailers['ambulink-complete']).toBe('true')
    const rows = ndjson(r.body)
    expect(rows).toHaveLength(11 * VITALS_PER_ENCOUNTER)
    expect(new Set(rows.map(x => x.age_band))).toEqual(new Set(['70-79', '60-69']))
    expect(new Set(rows.map(x => x.sex))).toEqual(new Set(['male', 'female']))
    expect(rows.every(x => !('age' in x) && !('unit' in x) && !('encounter' in x))).toBe(true)

    const bySubject = new Map<string, Array<Record<string, unknown>>>()
    for (const x of rows) {
      expect(x.subject).toMatch(UUID)
      bySubject.set(x.subject as string, [...(bySubject.get(x.subject as string) ?? []), x])
    }
    expect(bySubject.size).toBe(11)
    const shifts = new Set<number>()
    for (const list of bySubject.values()) {
      // Each subject's rows come from one encounter, with one shift: real time = shown − shift.
      const withHr = list.filter(x => typeof x.heart_rate === 'number')
      const { enc } = fromHeartRate(withHr[0]!.heart_rate as number)
      const shiftsHere = new Set(withHr.map(x => {
        const { enc: e, frame } = fromHeartRate(x.heart_rate as number)
        expect(e.id).toBe(enc.id)
        const real = (frameTime(e, frame) + (Number.isInteger(x.heart_rate) ? 0 : 1000)) * 1000
        return parseUs(x.time as string) - real
      }))
      expect(shiftsHere.size).toBe(1)
      const shift = [...shiftsHere][0]!
      expect(shift).not.toBe(0)
      expect(Math.abs(shift)).toBeLessThanOrEqual(182 * 86_400 * 1e6)
      shifts.add(shift)
    }
    expect(shifts.size).toBe(11)
  })

  it('ndjson at level pseudonymised: real times, exact ages, nobody suppressed', async () => {
    const r = await extract(pseudo, { dataset: 'vitals', fields: 'heart_rate,age,sex' })
    expect(r.status, r.body).toBe(200)
    expect(r.headers['ambulink-k-anonymity']).toBe('none')
    const rows = ndjson(r.body)
    expect(rows).toHaveLength(encounters.length * VITALS_PER_ENCOUNTER)
    for (const x of rows) {
      const { enc, frame } = fromHeartRate(x.heart_rate as number)
      expect(parseUs(x.time as string)).toBe((frameTime(enc, frame) + (Number.isInteger(x.heart_rate) ? 0 : 1000)) * 1000)
      expect(x.age).toBe(enc.age)
      expect(x.sex).toBe(enc.sex === 'M' ? 'male' : 'female')
      expect(Object.keys(x).sort()).toEqual(['age', 'heart_rate', 'sex', 'subject', 'time'])
    }
    expect(new Set(rows.map(x => x.subject)).size).toBe(encounters.length)
  })

  it('csv has a header and one row per record', async () => {
    const r = await extract(anon, { dataset: 'vitals', format: 'csv', fields: 'heart_rate,spo2,age,sex' })
    expect(r.status, r.body).toBe(200)
    expect(r.headers['content-type']).toMatch(/^text\/csv/)
    const lines = r.body.split('\r\n').filter(l => l !== '')
    expect(lines[0]).toBe('subject,time,age_band,sex,heart_rate,spo2')
    expect(lines).toHaveLength(1 + 11 * VITALS_PER_ENCOUNTER)
    for (const l of lines.slice(1)) expect(l).toMatch(/^[0-9a-f-]{36},\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z,(70-79|60-69),(male|female),\d+(\.5)?,(96)?$/)
  })

  it('fhir is a FHIR R4 collection Bundle of vital-signs Observations coded in LOINC with UCUM units and pseudonymous Patient references', async () => {
    const r = await extract(anon, { dataset: 'vitals', format: 'fhir' })
    expect(r.status, r.body).toBe(200)
    expect(r.headers['content-type']).toMatch(/^application\/fhir\+json/)
    const bundle = JSON.parse(r.body) as { resourceType: string, type: string, meta: { security: Array<{ code: string }> }, entry: Array<{ fullUrl: string, resource: Record<string, unknown> }> }
    expect(bundle.resourceType).toBe('Bundle')
    expect(bundle.type).toBe('collection')
    expect(bundle.meta.security[0]!.code).toBe('ANONYED')
    const patients = new Map(bundle.entry.filter(e => e.resource.resourceType === 'Patient').map(e => [e.fullUrl, e.resource]))
    expect(patients.size).toBe(11)
    for (const [url, p] of patients) {
      expect(url).toBe(`urn:uuid:${String(p.id)}`)
      expect(p.id).toMatch(UUID)
      expect(['male', 'female']).toContain(p.gender)
    }
    const loinc = new Map(VITAL_SIGNS.filter(s => s.loinc !== null).map(s => [s.loinc!, s]))
    const observations = bundle.entry.filter(e => e.resource.resourceType === 'Observation')
    const vitalObs = observations.filter(e => (e.resource.meta as { profile?: string[] } | undefined)?.profile?.includes('http://hl7.org/fhir/StructureDefinition/vitalsigns'))
    // Per encounter: 7 numerics per frame, supplemental O2 has no LOINC code → 6 + 1 (HR at +1 s).
    expect(vitalObs).toHaveLength(11 * FRAMES_PER_ENCOUNTER * 6)
    for (const { fullUrl, resource: o } of vitalObs) {
      expect(fullUrl).toMatch(/^urn:uuid:/)
      expect(o.status).toBe('final')
      expect((o.category as Array<{ coding: Array<{ code: string }> }>)[0]!.coding[0]!.code).toBe('vital-signs')
      const coding = (o.code as { coding: Array<{ system: string, code: string }> }).coding[0]!
      expect(coding.system).toBe('http://loinc.org')
      const sign = loinc.get(coding.code)
      expect(sign, coding.code).toBeDefined()
      const q = o.valueQuantity as { value: number, system: string, code: string }
      expect(q.system).toBe('http://unitsofmeasure.org')
      expect(q.code).toBe(sign!.ucum)
      expect(typeof q.value).toBe('number')
      const subject = o.subject as { reference: string, type: string }
      expect(subject.type).toBe('Patient')
      expect(patients.has(subject.reference)).toBe(true)
      expect(o.effectiveDateTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
    }
    const ages = observations.filter(e => (e.resource.code as { coding: Array<{ code: string }> }).coding[0]!.code === '30525-0')
    expect(ages).toHaveLength(11)
    expect(ages.every(a => (a.resource.valueRange as { low: { value: number } }).low.value % 10 === 0)).toBe(true)
  })

  it('ecg keeps the sample instants in µs; position is coarsened to ~1 km cells and cells crossed by fewer than k encounters are withheld; alerts carry no message', async () => {
    const ecg = await extract(anon, { dataset: 'ecg', fields: 'i,ii,iii' })
    expect(ecg.status, ecg.body).toBe(200)
    const samples = ndjson(ecg.body)
    // No demographics asked for, but this permit released age and sex before: its extracts are
    // classified on them still (issue #10, item 6), so the lone 90+ patient stays withheld.
    expect(ecg.headers['ambulink-suppressed-encounters']).toBe('<5')
    expect(samples).toHaveLength((encounters.length - 1) * FRAMES_PER_ENCOUNTER * ECG_SAMPLES)
    const first = samples.filter(s => s.subject === samples[0]!.subject).map(s => parseUs(s.time as string)).sort((a, b) => a - b)
    expect(first[1]! - first[0]!).toBe(2000) // 500 Hz
    expect(Object.keys(samples[0]!).sort()).toEqual(['i', 'ii', 'iii', 'subject', 'time'])
    expect(ECG_LEADS).toBe(3)

    const pos = await extract(anon, { dataset: 'position', fields: 'latitude,longitude,speed_mps' })
    expect(pos.status, pos.body).toBe(200)
    const cells = ndjson(pos.body)
    // The two encounters whose last position is out of town: that cell has 2 < k encounters.
    expect(cells).toHaveLength((encounters.length - 1) * FRAMES_PER_ENCOUNTER - 2)
    expect(new Set(cells.map(c => `${String(c.latitude)},${String(c.longitude)}`)).size).toBe(1)
    expect(Math.abs((cells[0]!.latitude as number) - 45.75)).toBeLessThan(0.01)

    const alerts = await extract(anon, { dataset: 'alerts' })
    expect(alerts.status, alerts.body).toBe(200)
    const rows = ndjson(alerts.body)
    expect(rows.length).toBeGreaterThan(0)
    expect(rows.some(a => a.kind === 'device_alarm' && a.priority === 'high')).toBe(true)
    for (const a of rows) {
      expect(Object.keys(a).every(k => ['subject', 'time', 'age_band', 'sex', ...DATASETS.alerts.valueFields].includes(k)), JSON.stringify(a)).toBe(true)
      if (a.key !== undefined) expect(a.key === 'other' || VITAL_SIGNS.some(s => s.field === a.key)).toBe(true)
    }
  })

  it('two permits see unlinkable pseudonyms for the same encounters', async () => {
    const other = await grant('dr-bo', ['--level', 'pseudonymised'])
    const a = ndjson((await extract(pseudo, { dataset: 'vitals', fields: 'heart_rate' })).body)
    const b = ndjson((await extract(other, { dataset: 'vitals', fields: 'heart_rate' })).body)
    const subjectsA = new Set(a.map(x => x.subject))
    const subjectsB = new Set(b.map(x => x.subject))
    expect(subjectsA.size).toBe(encounters.length)
    expect(subjectsB.size).toBe(encounters.length)
    expect([...subjectsA].filter(s => subjectsB.has(s))).toEqual([])
    // Same permit, same encounter: a stable pseudonym (a researcher can join two extracts).
    const again = new Set(ndjson((await extract(pseudo, { dataset: 'vitals', fields: 'heart_rate' })).body).map(x => x.subject))
    expect(again).toEqual(subjectsA)
  })
})

describe('refusals', () => {
  async function expectRefused (token: string | undefined, params: Record<string, string>, status: number, code: string): Promise<void> {
    const r = await extract(token, params)
    expect(r.status, r.body).toBe(status)
    expect((JSON.parse(r.body) as { code: string }).code).toBe(code)
    if (status === 401) expect(r.headers['www-authenticate']).toMatch(/^Bearer realm="dataspace"/)
  }

  it('401 for a missing, forged, foreign-signed, expired or revoked permit, and for a researcher who lost the role', async () => {
    const token = await grant('dr-ana', ['--datasets', 'vitals'])
    await expectRefused(undefined, { dataset: 'vitals' }, 401, 'AMB_ERR_PERMIT_MISSING')
    await expectRefused('not-a-permit', { dataset: 'vitals' }, 401, 'AMB_ERR_PERMIT_INVALID')

    // Forged: claims rewritten to the pseudonymised level, signature kept.
    const [h, c, s] = token.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as Record<string, unknown>
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, level: 'pseudonymised' })).toString('base64url')}.${s}`
    await expectRefused(forged, { dataset: 'vitals' }, 401, 'AMB_ERR_PERMIT_INVALID')

    // Signed by someone else's key.
    const request = { researcher: 'dr-ana', accountId: 'acc-1', datasets: ['vitals' as const], fromMs: WINDOW.from, toMs: WINDOW.to, purpose: 'x', level: 'anonymised' as const, expiresAtMs: Date.now() + HOUR }
    const foreign = signPermit(normalisePermitRequest(request), generateKeyPairSync('ed25519').privateKey)
    await expectRefused(foreign, { dataset: 'vitals' }, 401, 'AMB_ERR_PERMIT_INVALID')

    // Expired: a genuine signature, an expiry in the past.
    const keys = await openKeys(tg.dataDir)
    const expired = signPermit(normalisePermitRequest({ ...request, nowMs: Date.now() - 2 * HOUR, expiresAtMs: Date.now() - HOUR }), keys.permitPrivateKey!)
    await expectRefused(expired, { dataset: 'vitals' }, 401, 'AMB_ERR_PERMIT_EXPIRED')

    // Revoked with the CLI while the gateway runs: refused from the next request on.
    expect((await extract(token, { dataset: 'vitals', fields: 'heart_rate' })).status).toBe(200)
    const id = claims.jti as string
    const list = await cli(runPermitCli, ['list'])
    expect(list.stdout).toContain(`${id}\tdr-ana\tanonymised\tvitals\t`)
    expect((await cli(runPermitCli, ['revoke', id])).code).toBe(0)
    await expectRefused(token, { dataset: 'vitals' }, 401, 'AMB_ERR_PERMIT_REVOKED')
    expect((await cli(runPermitCli, ['list'])).stdout).toMatch(new RegExp(`${id}\\t.*\\trevoked `))

    // The researcher becomes a clinician: their permits stop working.
    const eve = await grant('dr-eve')
    expect((await extract(eve, { dataset: 'vitals', fields: 'heart_rate' })).status).toBe(200)
    await addUser(tg.dataDir, 'dr-eve', 'clinician')
    await expectRefused(eve, { dataset: 'vitals' }, 401, 'AMB_ERR_PERMIT_REVOKED')
  })

  it('403 with the reason for a dataset, a field or a window outside the permit; 400 for what is malformed', async () => {
    // Pseudonymised: at level anonymised from/to are shifted time and select encounters instead.
    const narrow = await grant('dr-ana', ['--datasets', 'vitals', '--fields', 'heart_rate,age', '--level', 'pseudonymised'])
    await expectRefused(narrow, { dataset: 'ecg' }, 403, 'AMB_ERR_DATASPACE_DATASET_FORBIDDEN')
    await expectRefused(narrow, { dataset: 'vitals', fields: 'heart_rate,spo2' }, 403, 'AMB_ERR_DATASPACE_FIELD_FORBIDDEN')
    await expectRefused(narrow, { dataset: 'vitals', from: iso(WINDOW.from - 1000), to: iso(WINDOW.to) }, 403, 'AMB_ERR_DATASPACE_WINDOW_FORBIDDEN')
    await expectRefused(narrow, { dataset: 'vitals', from: iso(WINDOW.from), to: iso(WINDOW.to + 1000) }, 403, 'AMB_ERR_DATASPACE_WINDOW_FORBIDDEN')
    const r = await extract(narrow, { dataset: 'vitals', fields: 'spo2' })
    expect((JSON.parse(r.body) as { message: string }).message).toMatch(/does not grant spo2 on vitals \(it grants heart_rate, age\)/)
    await expectRefused(narrow, { dataset: 'patients' }, 400, 'AMB_ERR_DATASPACE_BAD_REQUEST')
    await expectRefused(narrow, { dataset: 'vitals', from: 'yesterday' }, 400, 'AMB_ERR_DATASPACE_BAD_REQUEST')
    await expectRefused(narrow, { dataset: 'vitals', format: 'xml' }, 400, 'AMB_ERR_DATASPACE_FORMAT')
    const all = await grant('dr-ana')
    await expectRefused(all, { dataset: 'ecg', format: 'hl7v2' }, 400, 'AMB_ERR_DATASPACE_FORMAT')

    // The live stream refuses at the upgrade, with the same codes.
    const refusedLive = async (token: string | undefined, q: string): Promise<number> => {
      try {
        const c = await openLive(`${tg.httpUrl.replace('http', 'ws')}/dataspace/stream?${q}`, token)
        c.ws.terminate()
        return 101
      } catch (err) {
        outputs.push((err as { body?: string }).body ?? '')
        return (err as { status: number }).status
      }
    }
    expect(await refusedLive(undefined, 'dataset=vitals')).toBe(401)
    expect(await refusedLive(narrow, 'dataset=alerts')).toBe(403)
    expect(await refusedLive(all, 'dataset=ecg')).toBe(400)
    expect((await get(`${tg.httpUrl}/dataspace/stream?dataset=vitals`, all)).status).toBe(426)
  })

  it('the CLI refuses to grant a permit to anyone but a researcher', async () => {
    const r = await cli(runPermitCli, ['grant', '--researcher', 'nurse-cy', '--datasets', 'vitals', '--purpose', 'p', '--from', iso(WINDOW.from), '--to', iso(WINDOW.to), '--expires', iso(Date.now() + HOUR)]).catch((err: Error & { code: string }) => ({ code: err.code, stdout: '', stderr: err.message }))
    expect(r.code).toBe('AMB_ERR_PERMIT_BAD_GRANT')
    expect(r.stderr).toMatch(/nurse-cy has role clinician/)
  })
})

describe('live stream', () => {
  it('streams protected vitals and alerts as they arrive, without identifiers', async () => {
    const token = await grant('dr-bo', ['--datasets', 'vitals,alerts'])
    const base = `${tg.httpUrl.replace('http', 'ws')}/dataspace/stream`
    const vitals = await openLive(`${base}?dataset=vitals&fields=heart_rate,spo2`, token)
    const alerts = await openLive(`${base}?dataset=alerts`, token)
    const token1 = await tg.addDevice('AMB-LYON-31')
    const now = Date.now()
    const decoder = new FrameDecoder()
    for (let i = 0; i < 3; i++) {
      const bytes = encodeFrame({
        unitId: 'AMB-LYON-31', bootId: 'boot-55aa01', seq: i + 1, capturedAtMs: now + i * 500, encounterId: 'ENC-LIVE-7731',
        numerics: [{ sign: 1, value: 140 + i, offsetMs: 0 }, { sign: 3, value: 91, offsetMs: 0 }, { sign: 7, value: 30, offsetMs: 0 }],
        alarms: i === 0 ? [{ code: 'VFIB-ZZ', priority: 3, text: 'VF on patient Paul Martin', offsetMs: 0 }] : []
      })
      expect(decoder.decode(bytes, 'AMB-LYON-31').encounterId).toBe('ENC-LIVE-7731')
      const res = await fetch(`${tg.httpUrl}/api/v1/units/AMB-LYON-31/telemetry`, { method: 'POST', headers: { authorization: `Bearer ${token1}`, 'content-type': 'application/x-protobuf' }, body: Buffer.from(bytes) })
      expect(res.status).toBe(200)
    }
    await vitals.waitFor(m => m.length >= 3)
    await alerts.waitFor(m => m.some(x => x.includes('device_alarm')))
    outputs.push(...vitals.messages, ...alerts.messages)
    const msgs = vitals.messages.map(m => JSON.parse(m) as { type: string, subject: string, records: Array<Record<string, unknown>> })
    expect(new Set(msgs.map(m => m.subject)).size).toBe(1)
    for (const m of msgs) {
      expect(m.type).toBe('vitals')
      expect(m.subject).toMatch(UUID)
      expect(Object.keys(m.records[0]!).sort()).toEqual(['heart_rate', 'spo2', 'time'])
    }
    const alert = JSON.parse(alerts.messages.find(x => x.includes('device_alarm'))!) as Record<string, unknown>
    expect(alert).toMatchObject({ type: 'alert', event: 'raised', kind: 'device_alarm', priority: 'high' })
    expect(alert.subject).toBe(msgs[0]!.subject)
    expect(alert).not.toHaveProperty('message')
    expect(alert).not.toHaveProperty('key')
    vitals.ws.close()
    alerts.ws.close()
    await Promise.all([vitals.closed, alerts.closed])
    extraIdentifiers.push('AMB-LYON-31', 'boot-55aa01', 'ENC-LIVE-7731', 'VFIB-ZZ', 'Paul Martin')
  })

  it('cuts off a client that does not read while ingest goes on, and counts it; a revoked permit closes its stream', async () => {
    const token = await grant('dr-bo', ['--datasets', 'vitals'])
    const base = `${tg.httpUrl.replace('http', 'ws')}/dataspace/stream?dataset=vitals`
    const slow = await openLive(base, token)
    slow.ws.pause()
    const decoder = new FrameDecoder()
    const now = Date.now()
    const frame = decoder.decode(encodeFrame({
      unitId: 'AMB-LYON-07', bootId: 'boot-7f3a91c2', seq: 1, capturedAtMs: now, encounterId: 'ENC-2025-0099999',
      numerics: Array.from({ length: 400 }, (_, i) => ({ sign: 1, value: 60 + (i % 50), offsetMs: i * 10 }))
    }), 'AMB-LYON-07')
    let emitted = 0
    for (; emitted < 2000 && slow.ws.readyState === slow.ws.OPEN; emitted++) {
      tg.gw.ingest.emit('frame', frame, 'test')
      if (emitted % 100 === 99) await new Promise(r => setImmediate(r))
    }
    slow.ws.resume()
    expect(await slow.closed).toBe(1006)
    // What the paused client costs ingest per frame: loadtest/dataspace-live-slow.ts.
    const metrics = await (await fetch(`${tg.httpUrl}/metrics`)).text()
    expect(metrics).toMatch(/ambulink_dataspace_live_cutoffs_total 1/)

    const revoked = await openLive(base, token)
    const id = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti
    expect((await cli(runPermitCli, ['revoke', id])).code).toBe(0)
    expect(await revoked.closed).toBe(4401)
    extraIdentifiers.push('ENC-2025-0099999')
  })
})


describe('protection', () => {
  it('no identifier or free text from the seed appears in any output of any format, nor on the live stream', async () => {
    // One more pass over every dataset in every format and level, so nothing is left out.
    const both = [await grant('dr-ana'), await grant('dr-ana', ['--level', 'pseudonymised'])]
    for (const token of both) {
      // FHIR too for every dataset: ECG SampledData, DetectedIssue alerts, positions, assessment.
      for (const dataset of Object.keys(DATASETS)) {
        for (const format of ['ndjson', 'csv', 'fhir']) {
          const r = await extract(token, { dataset, format })
          expect(r.status, `${dataset} ${format}: ${r.body}`).toBe(200)
        }
      }
    }
    // The scan means something only if the identifiers are in the store to begin with.
    const raw = JSON.stringify(await influx.query('SELECT * FROM "alerts"; SELECT * FROM "vitals" LIMIT 50', DB))
    for (const id of [ALARM_TEXT, encounters[0]!.id, UNITS[0]]) expect(raw).toContain(id)
    const haystack = outputs.join('\n')
    const lower = haystack.toLowerCase()
    expect(haystack.length).toBeGreaterThan(100_000)
    for (const id of identifiers(encounters, extraIdentifiers.filter(x => x !== ''))) {
      expect(lower.includes(id.toLowerCase()), `${id} leaked`).toBe(false)
    }
    // Nor the holder's secret.
    const secret = (await readFile(join(tg.dataDir, 'dataspace', 'holder.secret'), 'utf8')).trim()
    expect(haystack.includes(secret)).toBe(false)
  })
})

/** The audit public key, copied outside DATA_DIR (what an operator pins). */
const pinDirs: string[] = []
async function pinnedCopy (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ambulink-audit-pin-'))
  pinDirs.push(dir)
  const path = join(dir, 'audit-signing.pub')
  await copyFile(join(tg.dataDir, 'dataspace', 'audit-signing.pub'), path)
  return path
}

describe('audit log', () => {
  let entries: AuditEntry[]
  beforeAll(async () => {
    entries = []
    for await (const e of readAudit(auditLogPath(tg.dataDir))) entries.push(e)
  })

  it('holds every access, granted or refused, and every permit change, and verifies', async () => {
    const kinds = new Set(entries.map(e => `${e.kind}/${e.outcome}`))
    for (const k of ['permit.grant/recorded', 'permit.revoke/recorded', 'extract/granted', 'extract/completed', 'extract/refused', 'stream/granted', 'stream/closed', 'stream/refused']) expect(kinds).toContain(k)
    const codes = new Set(entries.filter(e => e.outcome === 'refused').map(e => e.code))
    for (const c of ['AMB_ERR_PERMIT_MISSING', 'AMB_ERR_PERMIT_INVALID', 'AMB_ERR_PERMIT_EXPIRED', 'AMB_ERR_PERMIT_REVOKED', 'AMB_ERR_DATASPACE_DATASET_FORBIDDEN', 'AMB_ERR_DATASPACE_FIELD_FORBIDDEN', 'AMB_ERR_DATASPACE_WINDOW_FORBIDDEN']) expect(codes).toContain(c)
    expect(entries.some(e => e.kind === 'stream' && e.reason === 'slow consumer' && e.code === 'AMB_ERR_DATASPACE_SLOW_CONSUMER')).toBe(true)
    const done = entries.find(e => e.kind === 'extract' && e.outcome === 'completed' && e.suppressedEncounters === 1)
    expect(done?.rows).toBe(11 * VITALS_PER_ENCOUNTER)
    // The log holds no patient identifier either.
    const text = await readFile(auditLogPath(tg.dataDir), 'utf8')
    for (const id of identifiers(encounters)) expect(text.includes(id), id).toBe(false)
    const list = await cli(runAuditCli, [])
    expect(list.stdout.split('\n').length).toBeGreaterThan(entries.length)
    const verify = await cli(runAuditCli, ['verify', '--key', await pinnedCopy()])
    expect(verify.code, verify.stderr).toBe(0)
  })

  describe('tampering is detected', () => {
    const copies: string[] = []
    afterAll(async () => { for (const d of copies) await rm(d, { recursive: true, force: true }) })

    /** A copy of the audit files to tamper with; returns its DATA_DIR and the log's lines. */
    async function copy (): Promise<{ dir: string, log: string, lines: string[] }> {
      const dir = await mkdtemp(join(tmpdir(), 'ambulink-audit-'))
      copies.push(dir)
      await mkdir(join(dir, 'dataspace'), { mode: 0o700 })
      for (const f of ['audit.log', 'audit.head.json', 'audit-signing.pub']) await copyFile(join(tg.dataDir, 'dataspace', f), join(dir, 'dataspace', f))
      const log = join(dir, 'dataspace', 'audit.log')
      return { dir, log, lines: (await readFile(log, 'utf8')).split('\n').filter(l => l !== '') }
    }
    async function verify (dir: string): Promise<{ code: number, stderr: string }> {
      let stderr = ''
      const code = await runAuditCli(['verify', '--key', await pinnedCopy()], { stdout: () => {}, stderr: t => { stderr += t } }, loadConfig({ dataDir: dir }, {}))
      return { code, stderr }
    }

    it('an intact copy verifies', async () => {
      const c = await copy()
      expect((await verify(c.dir)).code).toBe(0)
    })

    it('one edited byte', async () => {
      const c = await copy()
      const text = await readFile(c.log)
      const at = text.indexOf('"rows":') + 7
      text[at] = text[at] === 0x31 ? 0x32 : 0x31
      await writeFile(c.log, text)
      const r = await verify(c.dir)
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/hash does not match its content/)
    })

    it('a deleted line', async () => {
      const c = await copy()
      await writeFile(c.log, [...c.lines.slice(0, 3), ...c.lines.slice(4)].join('\n') + '\n')
      const r = await verify(c.dir)
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/removed or reordered/)
    })

    it('a truncated tail (the chain alone would still look whole: the signed head catches it)', async () => {
      const c = await copy()
      await writeFile(c.log, c.lines.slice(0, -2).join('\n') + '\n')
      const r = await verify(c.dir)
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(/removed from the end/)
    })

    it('`ambulink audit verify` (the real binary) exits non-zero on a tampered log', async () => {
      const c = await copy()
      const key = await pinnedCopy()
      await writeFile(c.log, c.lines.slice(1).join('\n') + '\n')
      const code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(process.execPath, ['bin/ambulink.js', 'audit', 'verify', '--key', key], { env: { ...process.env, DATA_DIR: c.dir }, stdio: 'ignore' })
        child.once('error', reject)
        child.once('exit', resolve)
      })
      expect(code).toBe(1)
    })
  })
})
