// Issue #10, items 5-10 and 16: a determined researcher (and a stranger on the public
// catalogue) against a running gateway with a real InfluxDB, frames sent over real MQTT. Each
// test performs the attack as it was done before the fix and checks it no longer works.
import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeFrame, type FrameInit } from '../decoders/index.js'
import { runPermitCli } from '../cli/dataspace.js'
import { DATASET_NAMES } from '../streams/dataspace/index.js'
import { addUser, revokeUser } from '../gateway/credentials.js'
import { get, openLive, type HttpResult } from '../testkit/dataspace-client.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { waitFor } from '../testkit/proc.js'

const DB = 'amb_reident'
const HOUR = 3_600_000
const T0 = Math.floor(Date.now() / 1000) * 1000 - HOUR
const UNIT = 'AMB-REID-01'
const WINDOW = { from: T0 - HOUR, to: T0 + 3 * HOUR }
const iso = (ms: number): string => new Date(ms).toISOString()

/**
 * Ten patients whose age bands (5 + 5) and sexes (5 + 5) each form classes of k = 5, but whose
 * combinations do not (4, 1, 4, 1): the join of an age extract and a sex extract would single
 * out the 70-year-old woman and the 60-year-old man.
 */
const PATIENTS: Array<{ age: number, sex: string }> = [
  { age: 71, sex: 'M' }, { age: 72, sex: 'M' }, { age: 74, sex: 'M' }, { age: 76, sex: 'M' }, { age: 78, sex: 'F' },
  { age: 61, sex: 'F' }, { age: 62, sex: 'F' }, { age: 64, sex: 'F' }, { age: 66, sex: 'F' }, { age: 68, sex: 'M' }
]
const FRAMES = 3
const hr = (p: number, i: number): number => 40 + p * 4 + i
const start = (p: number): number => T0 + p * 30_000 + 123 // not on a whole second: the sub-second part must not survive

function frame (p: number, i: number, seq: number, encounter = `ENC-REID-${1000 + p}`, at = start(p) + i * 2000): Uint8Array {
  const init: FrameInit = {
    unitId: UNIT, bootId: 'boot-reid', seq, capturedAtMs: at, encounterId: encounter,
    numerics: [{ sign: 1, value: hr(p, i), offsetMs: 0 }, { sign: 3, value: 97, offsetMs: 0 }],
    position: { latitude: 45.7501, longitude: 4.8501, speedMps: 13.7 + i, headingDeg: 93 + i, offsetMs: 0 },
    ...(i === 0 ? { assessment: { stemiSuspected: false, lamsScore: 1, fastPositive: false, lastKnownWellMs: at - HOUR, ageYears: PATIENTS[p]!.age, sex: PATIENTS[p]!.sex } } : {}),
    ...(i === 1 ? { alarms: [{ code: 'VF-ALARM-77', priority: 3, text: 'free text that must not leave', offsetMs: 0 }] } : {})
  }
  return encodeFrame(init)
}

let influx: InfluxServer
let proxy: { url: string, server: Server, countQueries: () => number }
let tg: TestGateway
let token: string
let seq = 1

/** A counting proxy in front of InfluxDB: how many catalogue count scans reach it. */
async function countingProxy (target: string): Promise<typeof proxy> {
  let counts = 0
  const t = new URL(target)
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => { chunks.push(c) })
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      if (req.url?.startsWith('/query') === true && decodeURIComponent(body.toString().replace(/\+/g, ' ')).includes('SELECT count(*)')) counts++
      const up = httpRequest({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers }, r => {
        res.writeHead(r.statusCode ?? 502, r.headers)
        r.pipe(res)
      })
      up.on('error', () => { res.destroy() })
      up.end(body)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, countQueries: () => counts }
}

async function publish (frames: Uint8Array[]): Promise<void> {
  const client = await mqtt.connectAsync(tg.mqttUrl, { username: UNIT, password: token, clientId: UNIT, reconnectPeriod: 0 })
  try {
    for (const f of frames) await client.publishAsync(`units/${UNIT}/telemetry`, Buffer.from(f), { qos: 1 })
  } finally {
    await client.endAsync()
  }
}

async function grant (researcher: string, extra: string[] = []): Promise<string> {
  let stdout = ''
  let stderr = ''
  const code = await runPermitCli(['grant', '--researcher', researcher, '--datasets', 'vitals,alerts,position', '--purpose', 're-identification test',
    '--from', iso(WINDOW.from), '--to', iso(WINDOW.to), '--expires', iso(Date.now() + HOUR), ...extra], { stdout: t => { stdout += t }, stderr: t => { stderr += t } }, tg.gw.config)
  expect(code, stderr).toBe(0)
  return stdout.trim()
}

const extract = async (permit: string, params: Record<string, string>): Promise<HttpResult> => await get(`${tg.httpUrl}/dataspace/extract?${new URLSearchParams(params).toString()}`, permit)
const ndjson = (body: string): Array<Record<string, unknown>> => body.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Record<string, unknown>)
function parseUs (s: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)\.(\d{6})Z$/.exec(s)
  if (m === null) throw new Error(`not a µs timestamp: ${s}`)
  return Date.parse(m[1]! + 'Z') * 1000 + Number(m[2])
}
const patientOf = (heartRate: number): { p: number, i: number } => {
  for (let p = 0; p < PATIENTS.length; p++) for (let i = 0; i < FRAMES; i++) if (hr(p, i) === heartRate) return { p, i }
  throw new Error(`unknown heart rate ${heartRate}`)
}

beforeAll(async () => {
  influx = await startInfluxDB()
  proxy = await countingProxy(influx.url)
  tg = await startTestGateway({ influxUrl: proxy.url, influxApi: 'v1', influxDb: DB, dataspacePublicUrl: 'https://data.hospital.example' })
  token = await tg.addDevice(UNIT)
  for (const r of ['dr-ana', 'dr-bo', 'dr-x']) await tg.addUser(r, 'researcher')
  const frames: Uint8Array[] = []
  for (let p = 0; p < PATIENTS.length; p++) for (let i = 0; i < FRAMES; i++) frames.push(frame(p, i, seq++))
  await publish(frames)
  await waitFor(async () => (await influx.count(DB, 'vitals', 'heart_rate')) >= PATIENTS.length * FRAMES && (await influx.count(DB, 'position', 'latitude')) >= PATIENTS.length * FRAMES ? true : undefined,
    { timeoutMs: 20_000, intervalMs: 100, what: 'seed in InfluxDB' })
})

afterAll(async () => {
  await tg?.close()
  if (proxy !== undefined) { proxy.server.closeAllConnections(); await new Promise(resolve => proxy.server.close(resolve)) }
  await influx?.stop()
})

describe('5: the time shift', () => {
  it('a 1-second window in real time no longer yields anyone\'s shift; shifts have a random sub-second part; no count below k', async () => {
    const anon = await grant('dr-ana')
    const all = await extract(anon, { dataset: 'vitals', fields: 'heart_rate' })
    expect(all.status, all.body).toBe(200)
    const shifts = new Map<number, number>()
    for (const r of ndjson(all.body)) {
      const { p, i } = patientOf(r.heart_rate as number)
      shifts.set(p, parseUs(r.time as string) - (start(p) + i * 2000) * 1000)
    }
    expect(shifts.size).toBe(PATIENTS.length)
    // The shift is random to the µs: the real instants' sub-second part (123 ms) does not survive.
    expect([...shifts.values()].filter(s => s % 1_000_000 !== 0).length).toBeGreaterThan(PATIENTS.length / 2)
    for (let p = 0; p < PATIENTS.length; p++) {
      // The attack: a 1-second window around a known real capture time.
      const t = start(p)
      const r = await extract(anon, { dataset: 'vitals', fields: 'heart_rate', from: iso(t), to: iso(t + 1000) })
      expect(r.status, r.body).toBe(200)
      const rows = ndjson(r.body)
      // Windows are shifted time: whatever comes back lies in the window as shown, so output − real
      // time is not the shift, and the targeted patient is not singled out by real time.
      for (const row of rows) expect(patientOf(row.heart_rate as number).p === p && Math.abs(shifts.get(p)!) > 3_600_000_000).toBe(false)
      expect(rows.every(row => shifts.has(patientOf(row.heart_rate as number).p))).toBe(true)
      for (const h of ['ambulink-encounters', 'ambulink-suppressed-encounters']) {
        const v = String(r.headers[h])
        expect(v === '0' || v === '<5' || Number(v) >= 5, `${h}: ${v}`).toBe(true)
      }
      expect(r.trailers['ambulink-suppressed-rows']).toBeUndefined()
    }
  })
})

describe('6: k-anonymity over everything a permit released', () => {
  it('age in one extract, sex in another, joined on the subject: no class below k', async () => {
    const permit = await grant('dr-ana', ['--fields', 'heart_rate,age,sex,alerts.kind,position.latitude,position.longitude'])
    const a = await extract(permit, { dataset: 'vitals', fields: 'heart_rate,age' })
    const b = await extract(permit, { dataset: 'vitals', fields: 'heart_rate,sex' })
    expect(a.status, a.body).toBe(200)
    expect(b.status, b.body).toBe(200)
    const ages = new Map(ndjson(a.body).map(r => [r.subject as string, r.age_band as string]))
    expect(new Set(ages.values())).toEqual(new Set(['70-79', '60-69'])) // ages alone: two classes of 5
    const joined = new Map<string, number>()
    for (const r of ndjson(b.body)) {
      const age = ages.get(r.subject as string)
      if (age === undefined) continue
      const key = `${age}/${String(r.sex)}`
      joined.set(key, (joined.get(key) ?? 0) + 1)
    }
    // Before the fix: 70-79/male 4, 70-79/female 1, 60-69/female 4, 60-69/male 1.
    for (const [cls, n] of joined) expect(n, cls).toBeGreaterThanOrEqual(5)
  })
})

describe('7: the live stream is unlinkable to extracts', () => {
  it('a live pseudonym or time never equals an extract\'s for the same record', async () => {
    for (const level of ['anonymised', 'pseudonymised']) {
      const permit = await grant('dr-bo', ['--level', level])
      const live = await openLive(`${tg.httpUrl.replace('http', 'ws')}/dataspace/stream?dataset=vitals`, permit)
      const p = 3
      const enc = `ENC-REID-LIVE-${level}`
      const now = Date.now()
      try {
        await publish([0, 1, 2].map(i => frame(p, i, seq++, enc, now + i * 1000 - 5000)))
        await live.waitFor(m => m.length >= 3)
      } finally {
        live.ws.close()
      }
      const liveMsgs = live.messages.map(m => JSON.parse(m) as { subject: string, records: Array<{ time: string }> })
      await waitFor(async () => (await influx.count(DB, 'vitals', 'heart_rate', `"encounter" = '${enc}'`)) >= 3 ? true : undefined, { timeoutMs: 10_000, intervalMs: 100, what: 'live frames stored' })
      const ex = ndjson((await extract(permit, { dataset: 'vitals', fields: 'heart_rate' })).body)
      const fromLive = ex.filter(r => Math.floor(r.heart_rate as number) === hr(p, 0) || Math.floor(r.heart_rate as number) === hr(p, 1))
      const liveSubjects = new Set(liveMsgs.map(m => m.subject))
      for (const r of ex) expect(liveSubjects.has(r.subject as string), level).toBe(false)
      if (level === 'anonymised') {
        const liveTimes = new Set(liveMsgs.flatMap(m => m.records.map(x => x.time)))
        for (const r of ex) expect(liveTimes.has(r.time as string)).toBe(false)
      }
      expect(fromLive.length).toBeGreaterThan(0)
    }
  })
})

describe('8: speed and heading fall under the position rule', () => {
  it('alone they are refused at level anonymised; with the cell they are binned and follow the cell rule', async () => {
    const anon = await grant('dr-ana')
    const alone = await extract(anon, { dataset: 'position', fields: 'speed_mps,heading_deg' })
    expect(alone.status).toBe(400)
    const r = await extract(anon, { dataset: 'position', fields: 'latitude,longitude,speed_mps,heading_deg' })
    expect(r.status, r.body).toBe(200)
    const rows = ndjson(r.body)
    expect(rows.length).toBeGreaterThan(0)
    for (const x of rows) {
      expect(typeof x.latitude).toBe('number')
      expect((x.speed_mps as number) % 5).toBe(0)
      expect((x.heading_deg as number) % 45).toBe(0)
    }
    expect(rows.some(x => x.speed_mps === 13.7)).toBe(false)
  })
})

describe('9: the live alerts stream sends only granted fields', () => {
  it('a permit granting alerts.kind receives kind, never key, times of acknowledgement, escalations or events', async () => {
    const permit = await grant('dr-ana', ['--fields', 'heart_rate,alerts.kind,position.latitude,position.longitude'])
    const live = await openLive(`${tg.httpUrl.replace('http', 'ws')}/dataspace/stream?dataset=alerts`, permit)
    try {
      await publish([0, 1].map(i => frame(2, i, seq++, 'ENC-REID-ALERTS', Date.now() + i * 1000 - 3000)))
      await live.waitFor(m => m.length >= 1)
    } finally {
      live.ws.close()
    }
    for (const m of live.messages) {
      const msg = JSON.parse(m) as Record<string, unknown>
      expect(Object.keys(msg).sort(), m).toEqual(['alert', 'kind', 'subject', 'time', 'type'])
      expect(m).not.toMatch(/VF-ALARM|free text/)
    }
  })
})

describe('10: permits are bound to an account, never to a reusable name', () => {
  it('a researcher removed and re-created under the same name does not get the old permits back', async () => {
    const old = await grant('dr-x')
    expect((await extract(old, { dataset: 'vitals', fields: 'heart_rate' })).status).toBe(200)
    await revokeUser(tg.dataDir, 'dr-x')
    await addUser(tg.dataDir, 'dr-x', 'researcher')
    const r = await extract(old, { dataset: 'vitals', fields: 'heart_rate' })
    expect(r.status).toBe(401)
    expect((JSON.parse(r.body) as { code: string }).code).toBe('AMB_ERR_PERMIT_REVOKED')
    expect((await extract(await grant('dr-x'), { dataset: 'vitals', fields: 'heart_rate' })).status).toBe(200)
  })
})

describe('16: the public catalogue', () => {
  it('takes its URLs from configuration, never the Host header, and a burst cannot make InfluxDB scan', async () => {
    const forged = await new Promise<HttpResult>((resolve, reject) => {
      const req = httpRequest(`${tg.httpUrl}/dataspace/catalog`, { headers: { host: 'evil.example' } }, res => {
        let body = ''
        res.on('data', (c: Buffer) => { body += c.toString() })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: {}, body }) })
      })
      req.on('error', reject)
      req.end()
    })
    expect(forged.status).toBe(200)
    expect(forged.body).not.toMatch(/evil\.example/)
    expect(forged.body).toMatch(/"https:\/\/data\.hospital\.example\/dataspace\/extract\?dataset=vitals/)
    expect(forged.body).toMatch(/"wss:\/\/data\.hospital\.example\/dataspace\/stream/)
    const before = proxy.countQueries()
    const burst = await Promise.all(Array.from({ length: 60 }, async () => await get(`${tg.httpUrl}/dataspace/catalog`)))
    expect(burst.every(r => r.status === 200)).toBe(true)
    // Within the cache period, sixty public requests start no count scan at all.
    expect(proxy.countQueries() - before).toBe(0)
    expect(before).toBeLessThanOrEqual(DATASET_NAMES.length) // one load: one count per dataset
  })
})
