// FHIR R4 for every dataset, against a real InfluxDB 1.x and a real gateway fed over MQTT: every
// resource of every dataset, at both row-level protection levels, validates against the official
// FHIR R4 JSON schema (test/fixtures/fhir/), carries the codes docs/dataspace.md promises, and
// holds no identifier or free text of the seed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runPermitCli } from '../cli/dataspace.js'
import { DATASET_NAMES } from '../streams/dataspace/index.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { get } from '../testkit/dataspace-client.js'
import {
  ECG_LEADS, ECG_SAMPLES, FRAMES_PER_ENCOUNTER, UNITS, VITALS_PER_ENCOUNTER, identifiers, publishSeed, seedEncounters, type SeedEncounter
} from '../testkit/dataspace-seed.js'
import { waitFor } from '../testkit/proc.js'
import { fhirErrors, fhirValidator } from './fhir-schema.js'
import { alertIssue, ecgObservations } from '../streams/dataspace/fhir-resources.js'

const DB = 'amb_dataspace_fhir'
const HOUR = 3_600_000
const T0 = Math.floor(Date.now() / 1000) * 1000 - HOUR
const WINDOW = { from: T0 - HOUR, to: T0 + 3 * HOUR }
const CODES = 'https://codes.hospital.example/fhir/CodeSystem/ambulink'
const iso = (ms: number): string => new Date(ms).toISOString()

type Resource = Record<string, unknown> & { resourceType: string, id?: string }
interface Bundle extends Resource { type: string, meta: { security: Array<{ code: string }> }, entry: Array<{ fullUrl: string, resource: Resource }> }

let influx: InfluxServer
let tg: TestGateway
let encounters: SeedEncounter[]
const outputs: string[] = []
const tokens: Record<'anonymised' | 'pseudonymised', string> = { anonymised: '', pseudonymised: '' }

async function grant (level: string): Promise<string> {
  let stdout = ''
  let stderr = ''
  const code = await runPermitCli(['grant', '--researcher', 'dr-ana', '--datasets', DATASET_NAMES.join(','), '--level', level,
    '--purpose', 'Pre-hospital STEMI triage study', '--from', iso(WINDOW.from), '--to', iso(WINDOW.to), '--expires', iso(Date.now() + HOUR)],
  { stdout: t => { stdout += t }, stderr: t => { stderr += t } }, tg.gw.config)
  expect(code, stderr).toBe(0)
  return stdout.trim()
}

async function bundle (level: 'anonymised' | 'pseudonymised', dataset: string): Promise<Bundle> {
  const r = await get(`${tg.httpUrl}/dataspace/extract?${new URLSearchParams({ dataset, format: 'fhir' }).toString()}`, tokens[level])
  outputs.push(r.body, JSON.stringify(r.headers), JSON.stringify(r.trailers))
  expect(r.status, r.body).toBe(200)
  expect(r.headers['content-type']).toMatch(/^application\/fhir\+json/)
  return JSON.parse(r.body) as Bundle
}

function expectValid (b: Bundle): void {
  expect(fhirErrors(b), JSON.stringify(fhirErrors(b).slice(0, 3))).toEqual([])
  for (const e of b.entry) {
    const errors = fhirErrors(e.resource)
    expect(errors, `${e.resource.resourceType}: ${JSON.stringify(errors.slice(0, 3))} in ${JSON.stringify(e.resource).slice(0, 400)}`).toEqual([])
    expect(e.fullUrl).toBe(`urn:uuid:${String(e.resource.id)}`)
  }
}

const of = (b: Bundle, type: string): Resource[] => b.entry.map(e => e.resource).filter(r => r.resourceType === type)
const codings = (r: Resource): Array<{ system: string, code: string }> => (r.code as { coding: Array<{ system: string, code: string }> }).coding

beforeAll(async () => {
  // The schema is large (680 definitions): compiled once, before the servers start.
  fhirValidator()
  influx = await startInfluxDB()
  tg = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: DB, dataspaceFhirCodeSystem: CODES })
  const devices: Record<string, string> = {}
  for (const u of UNITS) devices[u] = await tg.addDevice(u)
  await tg.addUser('dr-ana', 'researcher')
  encounters = seedEncounters(T0)
  await publishSeed(tg.mqttUrl, devices, encounters, T0)
  await waitFor(async () => (await influx.count(DB, 'vitals', 'heart_rate')) >= encounters.length * VITALS_PER_ENCOUNTER + 2 &&
    (await influx.count(DB, 'alerts', 'message')) > 0 && (await influx.count(DB, 'assessment', 'lams_score')) >= encounters.length ? true : undefined,
  { timeoutMs: 20_000, intervalMs: 100, what: 'seed in InfluxDB' })
  tokens.anonymised = await grant('anonymised')
  tokens.pseudonymised = await grant('pseudonymised')
}, 120_000)

afterAll(async () => {
  await tg?.close()
  await influx?.stop()
})

describe.each(['anonymised', 'pseudonymised'] as const)('FHIR R4 at level %s', level => {
  // 90+ patient withheld by k-anonymity at level anonymised only.
  const released = (): number => level === 'anonymised' ? encounters.length - 1 : encounters.length
  const label = level === 'anonymised' ? 'ANONYED' : 'PSEUDED'

  it('vitals: the Bundle and every resource validate against the R4 schema', async () => {
    const b = await bundle(level, 'vitals')
    expect(b.meta.security[0]!.code).toBe(label)
    expectValid(b)
    expect(of(b, 'Patient')).toHaveLength(released())
  })

  it('ecg: one Observation per run of samples, LOINC 34534-8 and MDC codes, SampledData per lead; all valid', async () => {
    const b = await bundle(level, 'ecg')
    expectValid(b)
    const obs = of(b, 'Observation').filter(o => codings(o).some(c => c.code === '34534-8'))
    // Each frame is a 20 ms run of 10 samples; frames 2 s apart start new runs.
    expect(obs).toHaveLength(released() * FRAMES_PER_ENCOUNTER)
    for (const o of obs) {
      expect(codings(o)).toEqual(expect.arrayContaining([
        expect.objectContaining({ system: 'http://loinc.org', code: '34534-8' }),
        expect.objectContaining({ system: 'urn:oid:2.16.840.1.113883.6.24', code: '131328' })
      ]))
      const components = o.component as Array<{ code: { coding: Array<{ code: string, system: string }> }, valueSampledData: { origin: { value: number, code: string }, period: number, factor: number, dimensions: number, data: string } }>
      expect(components.map(c => c.code.coding[0]!.code)).toEqual(['131329', '131330', '131389'].slice(0, ECG_LEADS))
      for (const c of components) {
        expect(c.code.coding[0]!.system).toBe('urn:oid:2.16.840.1.113883.6.24')
        expect(c.valueSampledData).toMatchObject({ origin: { value: 0, code: 'uV' }, period: 2, factor: 1, dimensions: 1 })
        const data = c.valueSampledData.data.split(' ').map(Number)
        expect(data).toHaveLength(ECG_SAMPLES)
        expect(data.every(v => Number.isInteger(v) && v >= -100 && v < 100)).toBe(true)
      }
      const p = o.effectivePeriod as { start: string, end: string }
      expect(Date.parse(p.end) - Date.parse(p.start)).toBe((ECG_SAMPLES - 1) * 2)
    }
  })

  it('alerts: DetectedIssue with severity, the event as a tag, kinds coded in the configured CodeSystem; all valid', async () => {
    const b = await bundle(level, 'alerts')
    expectValid(b)
    const issues = of(b, 'DetectedIssue')
    expect(issues.length).toBeGreaterThan(0)
    expect(b.entry.every(e => ['Patient', 'Observation', 'DetectedIssue'].includes(e.resource.resourceType))).toBe(true)
    const device = issues.filter(i => codings(i).some(c => c.system === CODES && c.code === 'alert-device_alarm'))
    expect(device.length).toBeGreaterThan(0)
    expect(device.every(i => i.severity === 'high')).toBe(true)
    for (const i of issues) {
      expect((i.patient as { reference: string }).reference).toMatch(/^urn:uuid:/)
      expect((i.meta as { tag: Array<{ system: string, code: string }> }).tag[0]!.system).toBe(CODES)
      expect(i.identifiedDateTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
      if (i.contained !== undefined) expect((i.evidence as Array<{ detail: Array<{ reference: string }> }>)[0]!.detail[0]!.reference).toBe('#value')
    }
  })

  it('position: Observations with latitude/longitude components at the level\'s resolution; all valid', async () => {
    const b = await bundle(level, 'position')
    expectValid(b)
    const obs = of(b, 'Observation').filter(o => codings(o).some(c => c.code === 'position'))
    const lat = obs.map(o => (o.component as Array<{ code: { coding: Array<{ code: string }> }, valueQuantity: { value: number, code: string } }>)
      .find(c => c.code.coding[0]!.code === 'latitude')!.valueQuantity)
    expect(lat.every(q => q.code === 'deg')).toBe(true)
    if (level === 'anonymised') {
      // Cells of 0.01°: every latitude is a cell centre, and the two out-of-town positions
      // (a cell of 2 < k encounters) are withheld.
      expect(obs).toHaveLength(released() * FRAMES_PER_ENCOUNTER - 2)
      expect(new Set(lat.map(q => q.value))).toEqual(new Set([45.755]))
    } else {
      expect(obs).toHaveLength(encounters.length * FRAMES_PER_ENCOUNTER)
      expect(lat.some(q => q.value === 45.7501)).toBe(true)
    }
  })

  it('assessment: LAMS, FAST, suspected STEMI (SNOMED CT 401303003) and last known well, shifted at level anonymised; all valid', async () => {
    const b = await bundle(level, 'assessment')
    expectValid(b)
    const obs = of(b, 'Observation')
    const find = (code: string): Resource[] => obs.filter(o => codings(o).some(c => c.code === code))
    expect(find('lams')).toHaveLength(released())
    expect(find('lams').every(o => o.valueInteger === 2)).toBe(true)
    expect(find('fast').every(o => o.valueBoolean === false)).toBe(true)
    const stemi = find('401303003')
    expect(stemi).toHaveLength(released())
    // Seed: every fourth encounter (0, 4, 8) is a suspected STEMI; the withheld 90+ one is not.
    expect(stemi.filter(o => o.valueBoolean === true)).toHaveLength(3)
    const lkw = find('last-known-well')
    expect(lkw).toHaveLength(released())
    for (const o of lkw) {
      // The seed's last known well is one hour before the encounter's first frame, in the same
      // (shifted or real) time as the observation itself.
      expect(Date.parse(o.effectiveDateTime as string) - Date.parse(o.valueDateTime as string)).toBe(HOUR)
      const real = encounters.some(e => Date.parse(o.valueDateTime as string) === e.startMs - HOUR)
      expect(real).toBe(level === 'pseudonymised')
    }
  })
})

describe('mappings on their own', () => {
  const rec = (timeUs: number, values: Array<number | string | null>, subject = '00000000-0000-8000-8000-000000000001'): { subject: string, timeUs: number, age: null, sex: null, values: Array<number | string | null> } =>
    ({ subject, timeUs, age: null, sex: null, values })

  it('ecg: a gap starts a new run, a lone sample takes its encounter\'s last interval, a missing sample is E; all valid', () => {
    const t = 1_700_000_000_000_000
    const records = [rec(t, [10, 1]), rec(t + 4000, [20, null]), rec(t + 8000, [30, 3]), rec(t + 1_000_000, [40, 4])]
    const obs = ecgObservations(records, ['i', 'v1'], new Map())
    expect(obs).toHaveLength(2)
    const sd = (o: Record<string, unknown>, lead: number): { period: number, data: string } =>
      (o.component as Array<{ valueSampledData: { period: number, data: string } }>)[lead]!.valueSampledData
    expect(sd(obs[0]!, 0)).toMatchObject({ period: 4, data: '10 20 30' })
    expect(sd(obs[0]!, 1)).toMatchObject({ period: 4, data: '1 E 3' })
    expect(sd(obs[1]!, 0)).toMatchObject({ period: 4, data: '40' })
    expect((obs[0]!.component as Array<{ code: { coding: Array<{ code: string }> } }>).map(c => c.code.coding[0]!.code)).toEqual(['131329', '131331'])
    // No interval known for the encounter yet: the contract's 500 Hz.
    expect(sd(ecgObservations([rec(t, [5, null])], ['i', 'v1'], new Map())[0]!, 0).period).toBe(2)
    for (const o of obs) expect(fhirErrors(o)).toEqual([])
  })

  it('alerts: STEMI and stroke pre-notifications carry SNOMED CT, a threshold alert its value as LOINC-coded evidence; all valid', () => {
    const cols = ['event', 'kind', 'key', 'priority', 'value']
    const stemi = alertIssue(rec(1e15, ['raised', 'stemi', null, 'high', null]), cols, CODES)
    expect((stemi.code as { coding: Array<{ system: string, code: string }> }).coding).toEqual(expect.arrayContaining([expect.objectContaining({ system: 'http://snomed.info/sct', code: '401303003' })]))
    const stroke = alertIssue(rec(1e15, ['raised', 'stroke', null, 'medium', null]), cols, CODES)
    expect((stroke.code as { coding: Array<{ code: string }> }).coding.map(c => c.code)).toContain('230690007')
    expect(stroke.severity).toBe('moderate')
    const hr = alertIssue(rec(1e15, ['escalated', 'threshold', 'heart_rate', 'high', 152]), cols, CODES)
    const contained = (hr.contained as Array<Record<string, unknown>>)[0]!
    expect(contained.valueQuantity).toEqual({ value: 152, unit: 'bpm', system: 'http://unitsofmeasure.org', code: '/min' })
    expect((contained.code as { coding: Array<{ code: string }> }).coding[0]!.code).toBe('8867-4')
    expect((hr.meta as { tag: Array<{ code: string }> }).tag[0]!.code).toBe('event-escalated')
    const odd = alertIssue(rec(1e15, ['other', 'other', 'other', 'low', 3]), cols, CODES)
    for (const r of [stemi, stroke, hr, odd]) expect(fhirErrors(r), JSON.stringify(r)).toEqual([])
  })
})

describe('protection', () => {
  it('no identifier or free text of the seed appears in any FHIR output', () => {
    expect(outputs.length).toBeGreaterThanOrEqual(2 * 5 * 3)
    const lower = outputs.join('\n').toLowerCase()
    for (const id of identifiers(encounters)) expect(lower.includes(id.toLowerCase()), `${id} leaked`).toBe(false)
  })
})
