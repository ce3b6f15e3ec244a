// Questions that travel instead of data: the `statistical` permit level and /dataspace/statistics,
// against a real InfluxDB 1.x and real gateways fed over MQTT. k suppression, the Laplace noise and
// its budget (spent, refused when exhausted, still after a restart), the audit entries, refusal
// of row-level access, and a re-identifier's differencing attack, with noise and without.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runPermitCli } from '../cli/dataspace.js'
import { DATASPACE_DEFAULTS, Extractor, InfluxReader, PrivacyBudget, Protector, StatisticsEngine, auditLogPath, isoWeek, laplace, quantileOf, readAudit, weeksOf, type AuditEntry } from '../streams/dataspace/index.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { get, openLive } from '../testkit/dataspace-client.js'
import { UNITS, VITALS_PER_ENCOUNTER, identifiers, publishSeed, seedEncounters, type SeedEncounter } from '../testkit/dataspace-seed.js'
import { waitFor } from '../testkit/proc.js'
import type { Config } from '../gateway/config.js'

const DB = 'amb_dataspace_stats'
const HOUR = 3_600_000
const T0 = Math.floor(Date.now() / 1000) * 1000 - HOUR
const WINDOW = { from: T0 - HOUR, to: T0 + 3 * HOUR }
const iso = (ms: number): string => new Date(ms).toISOString()

interface Cell { age_band?: string, sex?: string, week?: string, suppressed: boolean, count?: number, mean?: number | null, histogram?: Array<number | null>, quantiles?: Record<string, number | null> }
interface Answer { cells: Cell[], suppressedCells: number, k: number, noise: { mechanism: string, epsilon: number, scale: Record<string, number> } | null, budget: { limit: number, spent: number, left: number } | null }

describe('pure parts', () => {
  it('ISO weeks (UTC), including the year boundaries ISO 8601 moves', () => {
    const cases: Array<[string, string]> = [
      ['2025-01-01T00:00:00Z', '2025-W01'], ['2024-12-30T00:00:00Z', '2025-W01'], ['2024-12-29T23:59:59Z', '2024-W52'],
      ['2021-01-03T12:00:00Z', '2020-W53'], ['2026-12-01T17:00:00Z', '2026-W49'], ['1970-01-05T00:00:00Z', '1970-W02']
    ]
    for (const [t, w] of cases) expect(isoWeek(Date.parse(t)), t).toBe(w)
    // A window from a Sunday to the next Tuesday touches two ISO weeks.
    expect(weeksOf(Date.parse('2025-06-01T10:00:00Z'), Date.parse('2025-06-03T00:00:00Z'))).toEqual(['2025-W22', '2025-W23'])
  })

  it('Laplace by inverse transform: median 0, symmetric, P(|X| > b ln 2) = 1/2', () => {
    expect(laplace(10, 0.5)).toBe(-0)
    expect(laplace(10, 0.75)).toBeCloseTo(10 * Math.log(2), 12)
    expect(laplace(10, 0.25)).toBeCloseTo(-10 * Math.log(2), 12)
    expect(laplace(3, 1 - 1e-9)).toBeGreaterThan(3 * 20)
  })

  it('the budget file: concurrent spends from two objects on one file let exactly the budget through, and it is read back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ambulink-budget-'))
    try {
      const path = join(dir, 'privacy-budget.json')
      const a = new PrivacyBudget(path, 1)
      const b = new PrivacyBudget(path, 1)
      const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).spend('permit-1', 0.1)))
      expect(results.filter(r => r.status === 'fulfilled')).toHaveLength(10)
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      expect(refused.every(r => (r.reason as { code: string }).code === 'AMB_ERR_DATASPACE_BUDGET_EXHAUSTED')).toBe(true)
      expect(await new PrivacyBudget(path, 1).spent('permit-1')).toBeCloseTo(1, 9)
      expect(await a.spent('permit-2')).toBe(0)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('refuses before touching InfluxDB: more than 20 000 cells (TOO_LARGE); a statistical permit in the extractor itself (LEVEL_FORBIDDEN)', async () => {
    // Nothing listens on port 1: a query that reached InfluxDB would fail with another code.
    const reader = new InfluxReader({ url: 'http://127.0.0.1:1', db: 'none', chunkRows: 10, timeoutMs: 1000 })
    const engine = new StatisticsEngine(reader, DATASPACE_DEFAULTS, 'laplace')
    const tenYears = { fromMs: Date.parse('2015-01-01T00:00:00Z'), toMs: Date.parse('2025-01-01T00:00:00Z') }
    const query = { sign: 'heart_rate', statistic: 'count' as const, by: ['age_band' as const, 'sex' as const, 'week' as const], ...tenYears, lo: 0, hi: 350, bins: 10, quantiles: [0.5], epsilon: 0.1 }
    await expect(engine.run(query)).rejects.toMatchObject({ code: 'AMB_ERR_DATASPACE_TOO_LARGE' })
    const permit = { id: 'p-1', level: 'statistical' as const }
    const extractor = new Extractor(reader, new Protector(Buffer.alloc(32, 1), permit, 'extract', DATASPACE_DEFAULTS), DATASPACE_DEFAULTS)
    await expect(extractor.plan({ dataset: 'vitals', fields: ['heart_rate'], ...tenYears })).rejects.toMatchObject({ code: 'AMB_ERR_DATASPACE_LEVEL_FORBIDDEN' })
  })

  it('quantiles read off a histogram, linear within the bin', () => {
    expect(quantileOf([0, 10, 0], 0.5, 0, 10)).toBe(15)
    expect(quantileOf([5, 5], 0.25, 100, 50)).toBe(125)
    expect(quantileOf([0, 0], 0.5, 0, 1)).toBeNull()
  })
})

let influx: InfluxServer
let encounters: SeedEncounter[]
const dirs: string[] = []
const gateways: TestGateway[] = []
const outputs: string[] = []
/** ε large enough that noise cannot move a count across k in these tests (scale 0.02), and a budget of three of them plus 0.3. */
const BIG_EPS = 50
const BUDGET = 3 * BIG_EPS + 0.3

async function gateway (overrides: Partial<Config>, dataDir: string): Promise<TestGateway> {
  const tg = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: DB, ...overrides }, { dataDir })
  gateways.push(tg)
  return tg
}

async function grant (tg: TestGateway, level: string, datasets = 'vitals', fields?: string): Promise<string> {
  let stdout = ''
  let stderr = ''
  const code = await runPermitCli(['grant', '--researcher', 'dr-ana', '--datasets', datasets, '--level', level, ...(fields !== undefined ? ['--fields', fields] : []),
    '--purpose', 'Regional STEMI heart-rate statistics', '--from', iso(WINDOW.from), '--to', iso(WINDOW.to), '--expires', iso(Date.now() + HOUR)],
  { stdout: t => { stdout += t }, stderr: t => { stderr += t } }, tg.gw.config)
  expect(code, stderr).toBe(0)
  return stdout.trim()
}

async function stats (tg: TestGateway, token: string, params: Record<string, string>): Promise<{ status: number, body: Answer & { code?: string } }> {
  const r = await get(`${tg.httpUrl}/dataspace/statistics?${new URLSearchParams(params).toString()}`, token)
  outputs.push(r.body, JSON.stringify(r.headers))
  return { status: r.status, body: JSON.parse(r.body) as Answer & { code?: string } }
}

const cell = (a: Answer, age: string, sex: string): Cell => a.cells.find(c => c.age_band === age && c.sex === sex)!

async function audit (tg: TestGateway): Promise<AuditEntry[]> {
  const out: AuditEntry[] = []
  for await (const e of readAudit(auditLogPath(tg.dataDir))) out.push(e)
  return out
}

beforeAll(async () => {
  influx = await startInfluxDB()
  // The seed goes in through one gateway; the others read the same InfluxDB.
  const dir = await mkdtemp(join(tmpdir(), 'ambulink-stats-seed-'))
  dirs.push(dir)
  const seeder = await gateway({}, dir)
  const devices: Record<string, string> = {}
  for (const u of UNITS) devices[u] = await seeder.addDevice(u)
  encounters = seedEncounters(T0)
  await publishSeed(seeder.mqttUrl, devices, encounters, T0)
  await waitFor(async () => (await influx.count(DB, 'vitals', 'heart_rate')) >= encounters.length * VITALS_PER_ENCOUNTER + 2 &&
    (await influx.count(DB, 'assessment', 'age_years')) >= encounters.length ? true : undefined,
  { timeoutMs: 20_000, intervalMs: 100, what: 'seed in InfluxDB' })
  await seeder.close()
}, 120_000)

afterAll(async () => {
  for (const g of gateways) await g.close()
  await influx?.stop()
  for (const d of dirs) await rm(d, { recursive: true, force: true })
})

// Seed: men 71-79 (6 encounters, 70-79), women 61-68 (5, 60-69), one woman of 97 (90+). Each
// encounter's heart rates are 50+5e+i and 50.5+5e+i for frames i = 0..3: its mean is 51.75+5e.
const MEN_MEAN = (6 * 51.75 + 5 * (0 + 1 + 2 + 3 + 4 + 5)) / 6 // 64.25

describe('with differential privacy (the default)', () => {
  let tg: TestGateway
  let dir: string
  let token: string
  const overrides: Partial<Config> = { dataspaceStatsBudget: BUDGET }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ambulink-stats-dp-'))
    dirs.push(dir)
    tg = await gateway(overrides, dir)
    await tg.addUser('dr-ana', 'researcher')
    token = await grant(tg, 'statistical', 'vitals', 'heart_rate,age,sex')
  })

  it('a statistical permit gets no extract in any format and no live stream (coded refusals, audited)', async () => {
    for (const format of ['ndjson', 'csv', 'fhir']) {
      const r = await get(`${tg.httpUrl}/dataspace/extract?dataset=vitals&format=${format}`, token)
      expect(r.status, r.body).toBe(403)
      expect((JSON.parse(r.body) as { code: string }).code).toBe('AMB_ERR_DATASPACE_LEVEL_FORBIDDEN')
    }
    const live = await openLive(`${tg.httpUrl.replace('http', 'ws')}/dataspace/stream?dataset=vitals`, token).then(() => 0, (err: { status?: number, body?: string }) => {
      expect(err.body ?? '').toContain('AMB_ERR_DATASPACE_LEVEL_FORBIDDEN')
      return err.status
    })
    expect(live).toBe(403)
    // And a row-level permit gets no statistics: the budget is what bounds the answers.
    const anon = await grant(tg, 'anonymised')
    const r = await stats(tg, anon, { sign: 'heart_rate' })
    expect(r.status).toBe(403)
    expect(r.body.code).toBe('AMB_ERR_DATASPACE_LEVEL_FORBIDDEN')
    const refused = (await audit(tg)).filter(e => e.outcome === 'refused' && e.code === 'AMB_ERR_DATASPACE_LEVEL_FORBIDDEN')
    expect(refused.map(e => e.kind).sort()).toEqual(['extract', 'extract', 'extract', 'statistics', 'stream'])
  })

  it('counts by age band and sex over every cell of the domain; cells under k suppressed; budget spent', async () => {
    const r = await stats(tg, token, { sign: 'heart_rate', statistic: 'count', by: 'age_band,sex', epsilon: String(BIG_EPS) })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    const a = r.body
    // Ten 10-year bands, 90+ and unknown, times four sexes: the domain, not the data, decides the cells.
    expect(a.cells).toHaveLength(11 * 4)
    expect(a.noise).toEqual({ mechanism: 'laplace', epsilon: BIG_EPS, scale: { count: 1 / BIG_EPS } })
    expect(cell(a, '70-79', 'male')).toEqual({ age_band: '70-79', sex: 'male', suppressed: false, count: 6 })
    expect(cell(a, '60-69', 'female')).toEqual({ age_band: '60-69', sex: 'female', suppressed: false, count: 5 })
    // The lone 90+ woman: suppressed, like every empty cell (a noisy count cannot tell 0 from 1).
    expect(cell(a, '90+', 'female')).toEqual({ age_band: '90+', sex: 'female', suppressed: true })
    expect(a.suppressedCells).toBe(42)
    expect(a.budget).toEqual({ limit: BUDGET, spent: BIG_EPS, left: BUDGET - BIG_EPS })
  })

  it('means (noisy sum over noisy count, values clamped) and histogram quantiles, each spending its epsilon', async () => {
    const m = await stats(tg, token, { sign: 'heart_rate', statistic: 'mean', by: 'age_band,sex', epsilon: String(BIG_EPS) })
    expect(m.status, JSON.stringify(m.body)).toBe(200)
    expect(m.body.noise!.scale).toEqual({ count: 2 / BIG_EPS, sum: 2 * 350 / BIG_EPS })
    // Sum noise of scale 14 on a sum of 385.5: the mean is off by more than 30 with p < 1e-5.
    expect(Math.abs(cell(m.body, '70-79', 'male').mean! - MEN_MEAN)).toBeLessThan(30)
    expect(cell(m.body, '90+', 'female').suppressed).toBe(true)

    const q = await stats(tg, token, { sign: 'heart_rate', statistic: 'quantiles', by: 'sex', lo: '40', hi: '120', bins: '8', q: '0.5', epsilon: String(BIG_EPS) })
    expect(q.status, JSON.stringify(q.body)).toBe(200)
    // Men's encounter means 51.75 .. 76.75 in bins of 10 from 40: the median lies in 60..70.
    const median = q.body.cells.find(c => c.sex === 'male')!.quantiles!['0.5']!
    expect(median).toBeGreaterThanOrEqual(60)
    expect(median).toBeLessThanOrEqual(70)
    expect(q.body.budget!.left).toBeCloseTo(0.3, 9)
  })

  it('refuses a query the budget cannot pay, spending nothing; the budget survives a restart', async () => {
    const ok = await stats(tg, token, { sign: 'heart_rate', epsilon: '0.2' })
    expect(ok.status).toBe(200)
    expect(ok.body.budget!.left).toBeCloseTo(0.1, 9)
    const over = await stats(tg, token, { sign: 'heart_rate', epsilon: '0.2' })
    expect(over.status).toBe(403)
    expect(over.body.code).toBe('AMB_ERR_DATASPACE_BUDGET_EXHAUSTED')

    await tg.stop()
    tg = await gateway(overrides, dir)
    const after = await stats(tg, token, { sign: 'heart_rate', epsilon: '0.2' })
    expect(after.status).toBe(403)
    expect(after.body.code).toBe('AMB_ERR_DATASPACE_BUDGET_EXHAUSTED')
    const last = await stats(tg, token, { sign: 'heart_rate', epsilon: '0.1' })
    expect(last.status, JSON.stringify(last.body)).toBe(200)
    expect(last.body.budget!.left).toBeCloseTo(0, 9)
    // The default epsilon (DATASPACE_STATS_EPSILON, 0.1) is refused now too.
    expect((await stats(tg, token, { sign: 'heart_rate' })).body.code).toBe('AMB_ERR_DATASPACE_BUDGET_EXHAUSTED')
  })

  it('audits every query with what it asked and cost, never a patient identifier', async () => {
    const entries = (await audit(tg)).filter(e => e.kind === 'statistics')
    const granted = entries.filter(e => e.outcome === 'granted')
    expect(granted).toHaveLength(5)
    expect(granted.map(e => e.statistics!.epsilon)).toEqual([BIG_EPS, BIG_EPS, BIG_EPS, 0.2, 0.1])
    expect(granted[0]!.statistics).toMatchObject({ sign: 'heart_rate', statistic: 'count', by: ['age_band', 'sex'], cells: 44, suppressedCells: 42, budgetLeft: BUDGET - BIG_EPS })
    expect(granted.every(e => e.level === 'statistical' && e.researcher === 'dr-ana' && e.fields?.[0] === 'heart_rate')).toBe(true)
    expect(entries.filter(e => e.code === 'AMB_ERR_DATASPACE_BUDGET_EXHAUSTED')).toHaveLength(3)
    const text = JSON.stringify(entries) + outputs.join('\n')
    for (const id of identifiers(encounters)) expect(text.includes(id), id).toBe(false)
  })

  it('a differencing attack (two windows differing by one encounter) sees suppression or noise, never the encounter\'s value', async () => {
    const fresh = await grant(tg, 'statistical', 'vitals', 'heart_rate,age,sex')
    // Encounter 0 (a man of 71, mean heart rate 51.75) has its frames in T0 .. T0+7 s; the next starts at T0+20 s.
    const ask = async (from: number): Promise<Cell> => {
      const r = await stats(tg, fresh, { sign: 'heart_rate', statistic: 'mean', by: 'age_band,sex', from: iso(from), to: iso(WINDOW.to), epsilon: '0.1' })
      expect(r.status, JSON.stringify(r.body)).toBe(200)
      expect(r.body.noise).toEqual({ mechanism: 'laplace', epsilon: 0.1, scale: { count: 20, sum: 7000 } })
      return cell(r.body, '70-79', 'male')
    }
    const a = await ask(WINDOW.from)
    const b = await ask(T0 + 10_000)
    // Noise scale 20 on counts and 7000 on sums: a cell is either suppressed or its mean is noise.
    if (!a.suppressed && !b.suppressed && a.mean !== null && b.mean !== null) {
      const estimate = 6 * a.mean! - 5 * b.mean!
      expect(estimate).not.toBe(51.75)
    } else {
      expect(a.suppressed || b.suppressed || a.mean === null || b.mean === null).toBe(true)
    }
  })
})

describe('refusals that spend nothing', () => {
  it('InfluxDB cannot answer, a malformed question, a question outside the permit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ambulink-stats-down-'))
    dirs.push(dir)
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const tg = await startTestGateway({ influxUrl: 'http://127.0.0.1:1', influxApi: 'v1', influxDb: DB }, { dataDir: dir })
    gateways.push(tg)
    await tg.addUser('dr-ana', 'researcher')
    const token = await grant(tg, 'statistical', 'vitals', 'heart_rate')
    const r = await stats(tg, token, { sign: 'heart_rate', epsilon: '0.5' })
    expect(r.status).toBeGreaterThanOrEqual(500)
    expect(['AMB_ERR_DATASPACE_QUERY_FAILED', 'AMB_ERR_DATASPACE_STORE_UNAVAILABLE']).toContain(r.body.code)
    const id = (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti
    expect(await PrivacyBudget.forDataDir(dir, 1).spent(id)).toBe(0)

    // Malformed questions are 400, questions outside the permit 403, all before InfluxDB or the budget.
    const cases: Array<[Record<string, string>, number, string]> = [
      [{}, 400, 'AMB_ERR_DATASPACE_BAD_REQUEST'],
      [{ sign: 'unit' }, 400, 'AMB_ERR_DATASPACE_BAD_REQUEST'],
      [{ sign: 'heart_rate', by: 'encounter' }, 400, 'AMB_ERR_DATASPACE_BAD_REQUEST'],
      [{ sign: 'heart_rate', statistic: 'max' }, 400, 'AMB_ERR_DATASPACE_BAD_REQUEST'],
      [{ sign: 'heart_rate', epsilon: '0' }, 400, 'AMB_ERR_DATASPACE_BAD_REQUEST'],
      [{ sign: 'heart_rate', q: '2' }, 400, 'AMB_ERR_DATASPACE_BAD_REQUEST'],
      [{ sign: 'heart_rate', lo: '10', hi: '5' }, 400, 'AMB_ERR_DATASPACE_BAD_REQUEST'],
      [{ sign: 'spo2' }, 403, 'AMB_ERR_DATASPACE_FIELD_FORBIDDEN'],
      [{ sign: 'heart_rate', by: 'age_band' }, 403, 'AMB_ERR_DATASPACE_FIELD_FORBIDDEN'],
      [{ sign: 'heart_rate', from: iso(WINDOW.from - 1) }, 403, 'AMB_ERR_DATASPACE_WINDOW_FORBIDDEN']
    ]
    for (const [q, status, code] of cases) {
      const res = await stats(tg, token, q)
      expect([res.status, res.body.code], JSON.stringify(q)).toEqual([status, code])
    }
    expect(await PrivacyBudget.forDataDir(dir, 1).spent(id)).toBe(0)
  })
})

describe('without noise (DATASPACE_STATS_NOISE=none)', () => {
  let tg: TestGateway
  let token: string

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ambulink-stats-exact-'))
    dirs.push(dir)
    tg = await gateway({ dataspaceStatsNoise: 'none' }, dir)
    await tg.addUser('dr-ana', 'researcher')
    token = await grant(tg, 'statistical', 'vitals', 'heart_rate,age,sex')
  })

  it('exact counts, 0 said as 0, 1..k-1 suppressed; histograms hide bins under k; nothing is spent', async () => {
    const r = await stats(tg, token, { sign: 'heart_rate', statistic: 'count', by: 'age_band,sex' })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    expect(r.body.noise).toBeNull()
    expect(r.body.budget).toBeNull()
    expect(cell(r.body, '70-79', 'male').count).toBe(6)
    expect(cell(r.body, '30-39', 'male')).toEqual({ age_band: '30-39', sex: 'male', suppressed: false, count: 0 })
    expect(cell(r.body, '90+', 'female')).toEqual({ age_band: '90+', sex: 'female', suppressed: true })
    const h = await stats(tg, token, { sign: 'heart_rate', statistic: 'histogram', by: 'sex', lo: '40', hi: '120', bins: '8' })
    // Men's encounter means 51.75, 56.75, 61.75, 66.75, 71.75, 76.75: two per 10-bpm bin from 50, each under k.
    expect(h.body.cells.find(c => c.sex === 'male')!.histogram).toEqual([0, null, null, null, 0, 0, 0, 0])
  })

  it('by ISO week: one cell per week the window touches, each encounter in the week of its first sample', async () => {
    const r = await stats(tg, token, { sign: 'heart_rate', statistic: 'count', by: 'week' })
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    expect(r.body.cells.map(c => c.week)).toEqual(weeksOf(WINDOW.from, WINDOW.to))
    for (const c of r.body.cells) {
      const n = encounters.filter(e => isoWeek(e.startMs) === c.week).length
      expect(c, c.week).toEqual(n > 0 && n < 5 ? { week: c.week, suppressed: true } : { week: c.week, suppressed: false, count: n })
    }
  })

  it('the differencing attack: suppression when the target\'s cell falls under k, but two cells of k or more disclose the difference (documented)', async () => {
    const mean = async (from: number, to: number): Promise<Answer> => (await stats(tg, token, { sign: 'heart_rate', statistic: 'mean', by: 'age_band,sex', from: iso(from), to: iso(to) })).body
    // Women 60-69 are exactly k = 5: leaving out encounter 10 (the last of them, and the 90+ one
    // after it) puts the cell under k: the attacker sees suppression, not the value.
    const all = await mean(WINDOW.from, WINDOW.to)
    const short = await mean(WINDOW.from, T0 + 200_000)
    expect(cell(all, '60-69', 'female').suppressed).toBe(false)
    expect(cell(short, '60-69', 'female').suppressed).toBe(true)
    // Men 70-79 are 6: leaving out encounter 0 leaves 5 ≥ k, and exact answers give it away.
    const late = await mean(T0 + 10_000, WINDOW.to)
    const estimate = 6 * cell(all, '70-79', 'male').mean! - 5 * cell(late, '70-79', 'male').mean!
    // Means are given to 0.1, which blurs the difference by at most 6 × 0.05 + 5 × 0.05.
    expect(Math.abs(estimate - 51.75)).toBeLessThanOrEqual(0.55)
  })
})
