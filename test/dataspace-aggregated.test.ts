// Issue #10, item 7: level aggregated against a running gateway with a real InfluxDB, frames
// sent over real MQTT. The attacks: a researcher holding an anonymised permit (exact values) and
// an aggregated one tries to link the summaries to the exact sequences; two aggregated extracts
// of one permit try to single out the rare patients; small groups must be withheld.
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeFrame, type FrameInit } from '../decoders/index.js'
import { runPermitCli } from '../cli/dataspace.js'
import { BIN_WIDTHS, COUNT_BIN, binDown } from '../streams/dataspace/aggregate.js'
import { get, openLive, type HttpResult } from '../testkit/dataspace-client.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { waitFor } from '../testkit/proc.js'

const DB = 'amb_aggregated'
const HOUR = 3_600_000
const T0 = Math.floor(Date.now() / 1000) * 1000 - HOUR
const UNIT = 'AMB-AGG-01'
const WINDOW = { from: T0 - HOUR, to: T0 + 3 * HOUR }
const ISS = 'https://hdab.agg.example'
const K = 5
const iso = (ms: number): string => new Date(ms).toISOString()

/**
 * Ten "common" patients whose exact heart rates all differ (every sequence is a fingerprint) but
 * whose binned summaries are identical (all within 70-75 bpm, SpO2 96-98 %), and three rare ones:
 * two at ~130 bpm (a group of 2) and one at ~100 bpm (alone). All are 70-79 years old.
 */
const COMMON = 10
const PATIENTS = 13
const FRAMES = 4
function heartRate (p: number, i: number): number {
  if (p < COMMON) return 70.1 + p * 0.4 + i * 0.05
  if (p < 12) return 130.3 + (p - COMMON) * 0.7 + i * 0.1
  return 100.2 + i * 0.1
}
const spo2 = (p: number, i: number): number => 96.2 + ((p + i) % 3) * 0.5
const sexOf = (p: number): string => p % 2 === 0 ? 'F' : 'M'

function frame (p: number, i: number, seq: number): Uint8Array {
  const at = T0 + p * 60_000 + i * 2000 + 321
  const init: FrameInit = {
    unitId: UNIT, bootId: 'boot-agg', seq, capturedAtMs: at, encounterId: `ENC-AGG-${2000 + p}`,
    numerics: [{ sign: 1, value: heartRate(p, i), offsetMs: 0 }, { sign: 3, value: spo2(p, i), offsetMs: 0 }],
    ...(i === 0 ? { assessment: { stemiSuspected: false, lamsScore: 0, fastPositive: false, lastKnownWellMs: at - HOUR, ageYears: 71 + (p % 8), sex: sexOf(p) } } : {})
  }
  return encodeFrame(init)
}

let influx: InfluxServer
let tg: TestGateway
let dir: string
let hdab: { privateKey: CryptoKey }

async function grant (researcher: string, extra: string[]): Promise<{ code: number, token: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  try {
    const code = await runPermitCli(['grant', '--researcher', researcher, '--purpose', 'aggregated test',
      '--from', iso(WINDOW.from), '--to', iso(WINDOW.to), '--expires', iso(Date.now() + HOUR), ...extra], { stdout: t => { stdout += t }, stderr: t => { stderr += t } }, tg.gw.config)
    return { code, token: stdout.trim(), stderr }
  } catch (err) {
    // A refused grant throws its coded error (bin/ambulink.js prints it and exits 2).
    return { code: 2, token: '', stderr: `${(err as { code?: string }).code ?? ''}: ${(err as Error).message}` }
  }
}

async function permit (level: string, extra: string[] = []): Promise<string> {
  const g = await grant('dr-agg', ['--datasets', 'vitals', '--level', level, ...extra])
  expect(g.code, g.stderr).toBe(0)
  return g.token
}

const extract = async (token: string, params: Record<string, string>): Promise<HttpResult> => await get(`${tg.httpUrl}/dataspace/extract?${new URLSearchParams(params).toString()}`, token)
const ndjson = (body: string): Array<Record<string, unknown>> => body.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Record<string, unknown>)
const code = (r: HttpResult): string | undefined => (JSON.parse(r.body) as { code?: string }).code

/** What the attacker computes from an exact sequence: the published summarising rules. */
function summaryOf (values: number[], field: string): string {
  const s = [...values].sort((a, b) => a - b)
  const m = s.length >> 1
  const median = s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
  const w = BIN_WIDTHS[field]!
  return JSON.stringify([binDown(s.length, COUNT_BIN), binDown(s[0]!, w), binDown(median, w), binDown(s[s.length - 1]!, w)])
}
const rowSummary = (r: Record<string, unknown>, field: string): string => JSON.stringify([r[`${field}_count`], r[`${field}_min`], r[`${field}_median`], r[`${field}_max`]])

beforeAll(async () => {
  // An access body whose Ed25519 key the gateway trusts (a local JWKS file).
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
  hdab = { privateKey }
  dir = await mkdtemp(join(tmpdir(), 'amb-agg-'))
  await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'agg-1', alg: 'EdDSA', use: 'sig' }] }))
  await writeFile(join(dir, 'issuers.json'), JSON.stringify({ issuers: [{ iss: ISS, jwks: 'jwks.json', researchers: { 'urn:hdab:r:9': 'dr-agg' } }] }))
  influx = await startInfluxDB()
  tg = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: DB, dataspaceK: K, dataspacePermitIssuers: join(dir, 'issuers.json') })
  const token = await tg.addDevice(UNIT)
  await tg.addUser('dr-agg', 'researcher')
  const client = await mqtt.connectAsync(tg.mqttUrl, { username: UNIT, password: token, clientId: UNIT, reconnectPeriod: 0 })
  try {
    let seq = 1
    for (let p = 0; p < PATIENTS; p++) for (let i = 0; i < FRAMES; i++) await client.publishAsync(`units/${UNIT}/telemetry`, Buffer.from(frame(p, i, seq++)), { qos: 1 })
  } finally {
    await client.endAsync()
  }
  await waitFor(async () => (await influx.count(DB, 'vitals', 'heart_rate')) >= PATIENTS * FRAMES ? true : undefined, { timeoutMs: 20_000, intervalMs: 100, what: 'seed in InfluxDB' })
})

afterAll(async () => {
  await tg?.close()
  await influx?.stop()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

describe('level aggregated', () => {
  it('releases per-encounter binned summaries, no time, no exact value, and withholds groups smaller than k', async () => {
    const agg = await permit('aggregated')
    const r = await extract(agg, { dataset: 'vitals', fields: 'heart_rate,spo2' })
    expect(r.status, r.body).toBe(200)
    expect(r.headers['ambulink-protection']).toBe('aggregated')
    expect(r.headers['ambulink-encounters']).toBe(String(COMMON))
    expect(r.headers['ambulink-suppressed-encounters']).toBe('<5') // the three rare patients
    const rows = ndjson(r.body)
    expect(rows).toHaveLength(COMMON)
    for (const row of rows) {
      expect(Object.keys(row).sort()).toEqual(['duration_min', 'heart_rate_count', 'heart_rate_max', 'heart_rate_median', 'heart_rate_min', 'spo2_count', 'spo2_max', 'spo2_median', 'spo2_min', 'subject'])
      expect({ ...row, subject: '' }).toEqual({ ...rows[0], subject: '' })
      expect(row.heart_rate_min).toBe(70)
      expect(row.heart_rate_max).toBe(70)
    }
    // Neither the rare patients' bins nor any exact value leaves.
    expect(r.body).not.toMatch(/"heart_rate_(min|median|max)":(100|130)/)
    // The values released, without the subjects: a random pseudonym may contain any digits.
    const values = JSON.stringify(rows.map(({ subject: _subject, ...rest }) => rest))
    for (let p = 0; p < PATIENTS; p++) for (let i = 0; i < FRAMES; i++) expect(values).not.toContain(String(heartRate(p, i)))
    expect(r.body).not.toMatch(/"time"|T\d\d:\d\d/)
    expect(new Set(rows.map(x => x.subject)).size).toBe(COMMON)

    const csv = await extract(agg, { dataset: 'vitals', fields: 'heart_rate,sex', format: 'csv' })
    expect(csv.status, csv.body).toBe(200)
    const lines = csv.body.trim().split('\r\n')
    expect(lines[0]).toBe('subject,sex,duration_min,heart_rate_count,heart_rate_min,heart_rate_median,heart_rate_max')
    // Classified on (sex, and the spo2 summary released before, and heart rate): 5 women, 5 men.
    expect(lines.slice(1).map(l => l.split(',').slice(1).join(',')).sort()).toEqual([
      ...Array(5).fill('female,0,0,70,70,70'), ...Array(5).fill('male,0,0,70,70,70')
    ])
  })

  it('a researcher with an anonymised and an aggregated permit (or two aggregated) cannot link any summary to one record', async () => {
    const anon = await permit('anonymised')
    const agg = await permit('aggregated')
    const exact = ndjson((await extract(anon, { dataset: 'vitals', fields: 'heart_rate,spo2' })).body)
    const summaries = ndjson((await extract(agg, { dataset: 'vitals', fields: 'heart_rate,spo2' })).body)
    // The attacker's sequences: one per anonymised subject, 13 patients, each unique.
    const bySubject = new Map<string, { hr: number[], spo2: number[] }>()
    for (const row of exact) {
      const s = bySubject.get(row.subject as string) ?? { hr: [], spo2: [] }
      if (typeof row.heart_rate === 'number') s.hr.push(row.heart_rate)
      if (typeof row.spo2 === 'number') s.spo2.push(row.spo2)
      bySubject.set(row.subject as string, s)
    }
    expect(bySubject.size).toBe(PATIENTS)
    expect(new Set([...bySubject.values()].map(s => JSON.stringify(s.hr))).size).toBe(PATIENTS)
    let linkedToGroups = 0
    for (const s of bySubject.values()) {
      const key = summaryOf(s.hr, 'heart_rate') + summaryOf(s.spo2, 'spo2')
      const matches = summaries.filter(r => rowSummary(r, 'heart_rate') + rowSummary(r, 'spo2') === key)
      // The attack: computing the summary from the exact values finds k identical rows or none.
      expect(matches.length === 0 || matches.length >= K, `${matches.length} rows match one sequence`).toBe(true)
      if (matches.length > 0) linkedToGroups++
    }
    expect(linkedToGroups).toBe(COMMON)
    // Two aggregated permits: joined on every released value, each record meets k or none.
    const other = ndjson((await extract(await permit('aggregated'), { dataset: 'vitals', fields: 'heart_rate,spo2' })).body)
    const key = (r: Record<string, unknown>): string => rowSummary(r, 'heart_rate') + rowSummary(r, 'spo2') + String(r.duration_min)
    for (const r of summaries) {
      const n = other.filter(o => key(o) === key(r)).length
      expect(n === 0 || n >= K, `${n} records of the other permit match one`).toBe(true)
      expect(other.some(o => o.subject === r.subject)).toBe(false)
    }
  })

  it('two aggregated extracts of one permit share no subject, and the second is classified on what the first released', async () => {
    const agg = await permit('aggregated')
    const a = ndjson((await extract(agg, { dataset: 'vitals', fields: 'spo2' })).body)
    const b = ndjson((await extract(agg, { dataset: 'vitals', fields: 'spo2' })).body)
    expect(a).toHaveLength(PATIENTS) // SpO2 alone: the rare patients share the common summary
    const subjects = new Set(a.map(r => r.subject))
    for (const r of b) expect(subjects.has(r.subject)).toBe(false)
    // heart_rate now: the two ~130 bpm patients form a group of 2 and the ~100 bpm one is alone.
    const c = ndjson((await extract(agg, { dataset: 'vitals', fields: 'heart_rate' })).body)
    expect(c).toHaveLength(COMMON)
    // And spo2 again: it is now classified on heart rate too (released before), so the rare three,
    // whom "13 minus 10" would otherwise single out, are withheld here as well.
    const d = ndjson((await extract(agg, { dataset: 'vitals', fields: 'spo2' })).body)
    expect(d).toHaveLength(COMMON)
  })

  it('refuses FHIR, the live stream, other datasets and unsummarised fields with AMB_ERR_DATASPACE_LEVEL_UNSUPPORTED', async () => {
    const agg = await permit('aggregated')
    const fhir = await extract(agg, { dataset: 'vitals', format: 'fhir' })
    expect([fhir.status, code(fhir)]).toEqual([403, 'AMB_ERR_DATASPACE_LEVEL_UNSUPPORTED'])
    const live = await openLive(`${tg.httpUrl.replace('http', 'ws')}/dataspace/stream?dataset=vitals`, agg).then(c => { c.ws.close(); return { status: 101, body: '' } }, (err: { status: number, body: string }) => err)
    expect(live.status).toBe(403)
    expect(live.body).toContain('AMB_ERR_DATASPACE_LEVEL_UNSUPPORTED')
    const bad = await grant('dr-agg', ['--datasets', 'vitals,ecg', '--level', 'aggregated'])
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toMatch(/^AMB_ERR_PERMIT_BAD_GRANT: .*summarises vitals only/)
    const temp = await grant('dr-agg', ['--datasets', 'vitals', '--level', 'aggregated', '--fields', 'heart_rate,temperature'])
    expect(temp.code).not.toBe(0)
    expect(temp.stderr).toMatch(/^AMB_ERR_PERMIT_BAD_GRANT: .*no summary of temperature/)
  })

  it('an access body\'s permit at level aggregated is served as summaries, and its other datasets are refused', async () => {
    const token = await new SignJWT({
      organisation: 'Registry of cardiac arrests',
      purpose: 'unlinkable outcome study',
      datasets: ['vitals', 'alerts'],
      period: { from: iso(WINDOW.from), to: iso(WINDOW.to) },
      level: 'aggregated'
    }).setProtectedHeader({ alg: 'EdDSA', kid: 'agg-1', typ: 'JWT' }).setIssuer(ISS).setSubject('urn:hdab:r:9').setJti(randomUUID()).setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + 3600).sign(hdab.privateKey)
    // No fields in the request: the level's summarisable ones among those granted (every field).
    const r = await extract(token, { dataset: 'vitals' })
    expect(r.status, r.body).toBe(200)
    expect(r.headers['ambulink-protection']).toBe('aggregated')
    const rows = ndjson(r.body)
    expect(rows.length).toBeGreaterThan(0)
    expect(rows.every(x => x.time === undefined && typeof x.heart_rate_median === 'number')).toBe(true)
    expect(Object.keys(rows[0]!)).not.toContain('temperature')
    const alerts = await extract(token, { dataset: 'alerts' })
    expect([alerts.status, code(alerts)]).toEqual([403, 'AMB_ERR_DATASPACE_LEVEL_UNSUPPORTED'])
  })
})
