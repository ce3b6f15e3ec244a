// The dataspace's pure logic, table-driven: generalisation, pseudonyms and time shifts, k-anonymity,
// permits, scope checks, and the audit log's crash recovery and tamper evidence (on real files).
import { createHash, generateKeyPairSync } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable, Writable } from 'node:stream'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  AuditLog, DATASPACE_DEFAULTS, DATASPACE_ERRORS, DataspaceError, Extractor, InfluxReader, Protector, claimedPermitId,
  createSerializer, formatUs, normalisePermitRequest, signPermit, verifyAudit, verifyPermitToken, type Permit
} from '../streams/dataspace/index.js'
import { CellCounter, classify } from '../streams/dataspace/k-anonymity.js'
import { ageBand, coarsen, normaliseSex } from '../streams/dataspace/protect.js'
import { resolveScope } from '../streams/dataspace/scope.js'
import { waitFor } from '../testkit/proc.js'

const SECRET = Buffer.alloc(32, 7)
const DAY_US = 86_400 * 1e6

function code (fn: () => unknown): string {
  try { fn() } catch (err) { return (err as DataspaceError).code }
  return 'none'
}

describe('generalisation', () => {
  it.each([
    [0, '0-9'], [9, '0-9'], [10, '10-19'], [64, '60-69'], [89, '80-89'], [90, '90+'], [104, '90+']
  ])('age %i → band %s', (age, band) => { expect(ageBand(age, 10, 90)).toBe(band) })

  it.each([
    ['M', 'male'], ['male', 'male'], [' f ', 'female'], ['Female', 'female'], ['', 'unknown'], [null, 'unknown'], ['x', 'other'], ['Jean Dupont', 'other']
  ])('sex %j → %s (free text never passes)', (raw, out) => { expect(normaliseSex(raw)).toBe(out) })

  it('coarsens to cells of about 1.1 km and returns their centre', () => {
    const a = coarsen(45.7501, 4.8501, 0.01)
    expect(coarsen(45.7549, 4.8540, 0.01).key).toBe(a.key)
    expect(coarsen(45.7601, 4.8501, 0.01).key).not.toBe(a.key)
    expect(a.lat).toBe(45.755)
    // The longitude step widens with latitude so the cell stays about square (~1.1 km).
    const lonStepKm = 0.01 / Math.cos(45.755 * Math.PI / 180) * 111.32 * Math.cos(45.755 * Math.PI / 180)
    expect(lonStepKm).toBeCloseTo(1.11, 1)
  })

  it('formats µs timestamps', () => {
    expect(formatUs(1_700_000_000_123_456)).toBe('2023-11-14T22:13:20.123456Z')
    expect(formatUs(1_700_000_000_000_007)).toBe('2023-11-14T22:13:20.000007Z')
  })
})

describe('pseudonyms and time shifts', () => {
  const anon = (id: string, ch: 'extract' | 'live' = 'extract'): Protector => new Protector(SECRET, { id, level: 'anonymised' }, ch, DATASPACE_DEFAULTS)
  const pseudo = (id: string, ch: 'extract' | 'live' = 'extract'): Protector => new Protector(SECRET, { id, level: 'pseudonymised' }, ch, DATASPACE_DEFAULTS)

  it('are stable within a permit and unrelated across permits, channels (at every level) and holders', () => {
    expect(anon('p1').subject('ENC-1')).toBe(anon('p1').subject('ENC-1'))
    expect(anon('p1').subject('ENC-1')).not.toBe(anon('p2').subject('ENC-1'))
    expect(anon('p1').subject('ENC-1')).not.toBe(anon('p1').subject('ENC-2'))
    expect(anon('p1').subject('ENC-1')).not.toBe(anon('p1', 'live').subject('ENC-1'))
    expect(pseudo('p1').subject('ENC-1')).not.toBe(pseudo('p1', 'live').subject('ENC-1'))
    expect(new Protector(Buffer.alloc(32, 8), { id: 'p1', level: 'anonymised' }, 'extract', DATASPACE_DEFAULTS).subject('ENC-1')).not.toBe(anon('p1').subject('ENC-1'))
    expect(anon('p1').subject('ENC-1')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  it('shift to the microsecond within ±maxShiftDays at level anonymised, not at all at pseudonymised', () => {
    const p = anon('p1')
    const shifts = Array.from({ length: 200 }, (_, i) => p.shiftUs(`ENC-${i}`))
    for (const s of shifts) {
      expect(Math.abs(s)).toBeLessThanOrEqual(DATASPACE_DEFAULTS.maxShiftDays * DAY_US)
      expect(Number.isSafeInteger(s)).toBe(true)
    }
    // The sub-second part is random too: a whole-second shift would keep every real instant's.
    expect(new Set(shifts.map(s => ((s % 1e6) + 1e6) % 1e6)).size).toBeGreaterThan(190)
    expect(new Set(shifts).size).toBe(200)
    expect(Math.min(...shifts)).toBeLessThan(-30 * DAY_US)
    expect(Math.max(...shifts)).toBeGreaterThan(30 * DAY_US)
    expect(p.shiftUs('ENC-7')).toBe(anon('p1').shiftUs('ENC-7'))
    expect(anon('p2').shiftUs('ENC-7')).not.toBe(p.shiftUs('ENC-7'))
    expect(pseudo('p1').shiftUs('ENC-7')).toBe(0)
  })

  it('release ages banded at anonymised and exact at pseudonymised; 0 means not entered', () => {
    expect(anon('p').age(73)).toBe('70-79')
    expect(anon('p').age(0)).toBe('unknown')
    expect(anon('p').age(null)).toBe('unknown')
    expect(pseudo('p').age(73)).toBe(73)
    expect(pseudo('p').age(0)).toBeNull()
  })
})

describe('k-anonymity', () => {
  it.each([
    { name: 'all in one class of k', qi: ['a', 'a', 'a'], k: 3, kept: 3, classesBelowK: 0 },
    { name: 'a class below k is suppressed whole', qi: ['a', 'a', 'a', 'b', 'b'], k: 3, kept: 3, classesBelowK: 1 },
    { name: 'too few people overall', qi: ['', '', ''], k: 5, kept: 0, classesBelowK: 1 },
    { name: 'every class below k', qi: ['a', 'b', 'c'], k: 2, kept: 0, classesBelowK: 3 },
    { name: 'nobody', qi: [], k: 5, kept: 0, classesBelowK: 0 }
  ])('$name', ({ qi, k, kept, classesBelowK }) => {
    const c = classify(new Map(qi.map((q, i) => [`E${i}`, q])), k)
    expect(c.kept.size).toBe(kept)
    expect(c.suppressed.size).toBe(qi.length - kept)
    expect(c.classesBelowK).toBe(classesBelowK)
  })

  it('counts distinct encounters per cell, and refuses more cells than its bound', () => {
    const c = new CellCounter(3, 2)
    for (const e of ['E1', 'E1', 'E2', 'E2']) c.add('x', e)
    expect(c.released('x')).toBe(false)
    c.add('x', 'E3')
    expect(c.released('x')).toBe(true)
    c.add('y', 'E1')
    expect(code(() => { c.add('z', 'E1') })).toBe('AMB_ERR_DATASPACE_TOO_LARGE')
  })
})

describe('permits', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const now = Date.UTC(2025, 5, 1)
  const permit = (o: Partial<Parameters<typeof normalisePermitRequest>[0]> = {}): Permit => normalisePermitRequest({
    researcher: 'dr-ana', accountId: 'acc-1', datasets: ['vitals', 'alerts'], fromMs: now - 86_400_000, toMs: now, purpose: 'study', level: 'anonymised', expiresAtMs: now + 3_600_000, nowMs: now, ...o
  })

  it('round-trip through a signed token, with every field granted by default', () => {
    const p = permit()
    const back = verifyPermitToken(signPermit(p, privateKey), publicKey)
    expect(back).toMatchObject({ id: p.id, researcher: 'dr-ana', datasets: ['vitals', 'alerts'], level: 'anonymised', purpose: 'study', fromMs: p.fromMs, toMs: p.toMs })
    expect(back.fields.vitals).toContain('heart_rate')
    expect(back.fields.vitals).toContain('age')
    expect(claimedPermitId(signPermit(p, privateKey))).toBe(p.id)
  })

  it.each([
    ['an altered claim', (t: string) => { const [h, c, s] = t.split('.') as [string, string, string]; return `${h}.${Buffer.from(Buffer.from(c, 'base64url').toString().replace('anonymised', 'pseudonymised')).toString('base64url')}.${s}` }],
    ['alg none', (t: string) => `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${t.split('.')[1]!}.`],
    ['another key', () => signPermit(permit(), generateKeyPairSync('ed25519').privateKey)],
    ['two parts', (t: string) => t.split('.').slice(0, 2).join('.')],
    ['an oversized token', (t: string) => t + 'A'.repeat(20_000)]
  ])('refuse %s', (_name, mutate) => {
    expect(code(() => verifyPermitToken(mutate(signPermit(permit(), privateKey)), publicKey))).toBe('AMB_ERR_PERMIT_INVALID')
  })

  it.each([
    ['no datasets', { datasets: [] }],
    ['an unknown field', { fields: { vitals: ['heart_rate', 'name'] } }],
    ['an empty window', { fromMs: now, toMs: now }],
    ['a past expiry', { expiresAtMs: now - 1 }],
    ['no purpose', { purpose: '  ' }]
  ])('are not granted with %s', (_name, o) => {
    expect(code(() => permit(o as Partial<Parameters<typeof normalisePermitRequest>[0]>))).toBe('AMB_ERR_PERMIT_BAD_GRANT')
  })

  it('scope: defaults to the permit, refuses what it does not cover', () => {
    const p = permit({ fields: { vitals: ['heart_rate', 'age'], alerts: ['kind'] } })
    expect(resolveScope({ dataset: 'vitals' }, p)).toMatchObject({ fields: ['heart_rate', 'age'], fromMs: p.fromMs, toMs: p.toMs, format: 'ndjson', shifted: false })
    // Level anonymised: from/to are shifted time (they select encounters), never refused for the permit's window.
    expect(resolveScope({ dataset: 'vitals', from: String(p.fromMs - 1) }, p, { maxShiftMs: 1000 })).toMatchObject({ shifted: true, fromMs: p.fromMs - 1, toMs: p.toMs + 1000 })
    const pp = { ...p, level: 'pseudonymised' as const }
    const cases: Array<[Record<string, string>, string]> = [
      [{ dataset: 'ecg' }, 'AMB_ERR_DATASPACE_DATASET_FORBIDDEN'],
      [{ dataset: 'vitals', fields: 'spo2' }, 'AMB_ERR_DATASPACE_FIELD_FORBIDDEN'],
      [{ dataset: 'vitals', from: String(p.fromMs - 1) }, 'AMB_ERR_DATASPACE_WINDOW_FORBIDDEN'],
      [{ dataset: 'vitals', to: new Date(p.toMs + 1).toISOString() }, 'AMB_ERR_DATASPACE_WINDOW_FORBIDDEN'],
      [{ dataset: 'vitals', fields: 'unit' }, 'AMB_ERR_DATASPACE_BAD_REQUEST'],
      [{ dataset: 'vitals', from: 'soon' }, 'AMB_ERR_DATASPACE_BAD_REQUEST'],
      [{ dataset: 'vitals', from: String(p.toMs), to: String(p.fromMs) }, 'AMB_ERR_DATASPACE_BAD_REQUEST'],
      [{}, 'AMB_ERR_DATASPACE_BAD_REQUEST'],
      [{ dataset: 'vitals', format: 'parquet' }, 'AMB_ERR_DATASPACE_FORMAT']
    ]
    for (const [q, c] of cases) expect(code(() => resolveScope(q, pp)), JSON.stringify(q)).toBe(c)
    // A statistical permit never gets rows nor the live stream, whatever it asks for.
    const sp = { ...p, level: 'statistical' as const }
    for (const opts of [{}, { live: true }]) expect(code(() => resolveScope({ dataset: 'vitals' }, sp, opts))).toBe('AMB_ERR_DATASPACE_LEVEL_FORBIDDEN')
  })
})

describe('audit log', () => {
  const dirs: string[] = []
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }) })
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')

  interface L { audit: AuditLog, logPath: string, headPath: string, failures: string[], verify: () => ReturnType<typeof verifyAudit>, reopen: () => Promise<AuditLog> }
  async function log (): Promise<L> {
    const dir = await mkdtemp(join(tmpdir(), 'ambulink-audit-unit-'))
    dirs.push(dir)
    const logPath = join(dir, 'audit.log')
    const headPath = join(dir, 'elsewhere', 'audit.head.json')
    const failures: string[] = []
    const open = (): Promise<AuditLog> => AuditLog.open({ logPath, headPath, privateKey, publicKey, onIntegrityFailure: m => { failures.push(m) } })
    return { audit: await open(), logPath, headPath, failures, verify: () => verifyAudit({ logPath, headPath, publicKey }), reopen: open }
  }
  const head = async (l: L): Promise<Record<string, unknown>> => JSON.parse(await readFile(l.headPath, 'utf8')) as Record<string, unknown>

  it('chains concurrent appends in order, signs a growing counter, and verifies', async () => {
    const l = await log()
    await Promise.all(Array.from({ length: 20 }, (_, i) => l.audit.append({ kind: 'extract', outcome: 'granted', rows: i })))
    const r = await l.verify()
    expect(r).toMatchObject({ ok: true, entries: 20, errors: [] })
    expect(r.head?.counter).toBe(20)
    expect((await readFile(l.logPath, 'utf8')).split('\n').filter(x => x !== '').map(x => (JSON.parse(x) as { seq: number }).seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
    await l.audit.close()
    await expect(l.audit.append({ kind: 'extract', outcome: 'granted' })).rejects.toMatchObject({ code: 'AMB_ERR_AUDIT_UNAVAILABLE' })
  })

  it('a crash between the entry and the head update is recovered only because the entry matches the signed pending head', async () => {
    const l = await log()
    await l.audit.append({ kind: 'extract', outcome: 'granted' })
    const h1 = await head(l)
    await l.audit.append({ kind: 'extract', outcome: 'completed' })
    const { v: _v, pending: _p, ...h2 } = await head(l)
    // The state a crash leaves: the head still at entry 1, with entry 2's signed head pending.
    await writeFile(l.headPath, JSON.stringify({ ...h1, pending: h2 }))
    const mid = await l.verify()
    expect(mid.errors).toEqual([])
    expect(mid.notes.join('\n')).toMatch(/pending head/)
    await (await l.reopen()).append({ kind: 'extract', outcome: 'granted' })
    await writeFile(l.logPath, (await readFile(l.logPath, 'utf8')) + '{"seq":9,"at":"2025')
    await l.audit.append({ kind: 'extract', outcome: 'refused' })
    const r = await l.verify()
    expect(r.errors).toEqual([])
    expect(r.notes.join('\n')).toMatch(/crash/)
    expect(r.notes.join('\n')).toMatch(/torn bytes/)
    expect(l.failures).toEqual([])
  })

  it('an entry appended by hand past the head is refused, not blessed; `recover` blesses it explicitly and says so', async () => {
    const l = await log()
    for (let i = 0; i < 3; i++) await l.audit.append({ kind: 'extract', outcome: 'granted' })
    const lines = (await readFile(l.logPath, 'utf8')).split('\n').filter(x => x !== '')
    const last = JSON.parse(lines.at(-1)!) as { seq: number, hash: string }
    const body = JSON.stringify({ seq: last.seq + 1, at: new Date().toISOString(), prev: last.hash, kind: 'extract', outcome: 'granted', researcher: 'nobody' })
    await writeFile(l.logPath, lines.join('\n') + '\n' + body.slice(0, -1) + `,"hash":"${createHash('sha256').update(body).digest('hex')}"}\n`)
    await expect(l.audit.append({ kind: 'extract', outcome: 'granted' })).rejects.toMatchObject({ code: 'AMB_ERR_AUDIT_INTEGRITY', statusCode: 503 })
    expect(l.failures.join('\n')).toMatch(/past its signed head/)
    expect((await l.verify()).errors.join('\n')).toMatch(/signed by nobody/)
    const rec = await l.audit.recover('checked with the researcher: a test entry')
    expect(rec.recorded).toBe('audit.recovered')
    const r = await l.verify()
    expect(r.ok).toBe(true)
    expect(r.notes.join('\n')).toMatch(/operator recovery: entries 4\.\.4 .*a test entry/)
    await l.audit.append({ kind: 'extract', outcome: 'granted' })
  })

  it('removed entries stop appends; `recover` records an anomaly, and verify keeps failing', async () => {
    const l = await log()
    for (let i = 0; i < 5; i++) await l.audit.append({ kind: 'extract', outcome: 'granted' })
    const lines = (await readFile(l.logPath, 'utf8')).split('\n').filter(x => x !== '')
    await writeFile(l.logPath, lines.slice(0, 3).join('\n') + '\n')
    expect((await l.verify()).errors.join('\n')).toMatch(/removed from the end/)
    await expect((await l.reopen()).append({ kind: 'extract', outcome: 'granted' })).rejects.toMatchObject({ code: 'AMB_ERR_AUDIT_INTEGRITY' })
    expect((await l.audit.recover('investigating the cut')).recorded).toBe('audit.anomaly')
    await l.audit.append({ kind: 'extract', outcome: 'granted' })
    const r = await l.verify()
    expect(r.ok).toBe(false)
    expect(r.errors.join('\n')).toMatch(/anomaly recorded: operator recovery after: .*removed/)
  })

  it('a rollback to an older signed head is caught by a process that has seen a newer one, and by verify against an anchor', async () => {
    const l = await log()
    await l.audit.append({ kind: 'extract', outcome: 'granted' })
    const oldHead = await readFile(l.headPath)
    const oldLog = await readFile(l.logPath)
    await l.audit.append({ kind: 'extract', outcome: 'completed' })
    const anchor = (await l.verify()).head!
    await writeFile(l.headPath, oldHead)
    await writeFile(l.logPath, oldLog)
    // A fresh process without an anchor sees a consistent (old) log: only outside evidence can tell.
    expect((await l.verify()).ok).toBe(true)
    await expect(l.audit.append({ kind: 'extract', outcome: 'granted' })).rejects.toMatchObject({ code: 'AMB_ERR_AUDIT_INTEGRITY' })
    expect(l.failures.join('\n')).toMatch(/rolled back/)
    const anchored = await verifyAudit({ logPath: l.logPath, headPath: l.headPath, publicKey, anchor })
    expect(anchored.errors.join('\n')).toMatch(/older than the anchored head/)
    const floored = await AuditLog.open({ logPath: l.logPath, headPath: l.headPath, privateKey, publicKey, floor: anchor })
    await expect(floored.append({ kind: 'extract', outcome: 'granted' })).rejects.toMatchObject({ code: 'AMB_ERR_AUDIT_INTEGRITY' })
  })

  it('a forged head (junk signature, another key) stops appends; a deleted head is caught; verify needs a key', async () => {
    const l = await log()
    await l.audit.append({ kind: 'extract', outcome: 'granted' })
    const h = await head(l)
    await writeFile(l.headPath, JSON.stringify({ ...h, sig: Buffer.alloc(64, 1).toString('base64') }))
    expect((await l.verify()).errors.join('\n')).toMatch(/signature does not verify/)
    await expect(l.audit.append({ kind: 'extract', outcome: 'granted' })).rejects.toMatchObject({ code: 'AMB_ERR_AUDIT_INTEGRITY' })
    const other = generateKeyPairSync('ed25519')
    const mismatched = await AuditLog.open({ logPath: l.logPath, headPath: l.headPath, privateKey: other.privateKey, publicKey })
    await expect(mismatched.append({ kind: 'extract', outcome: 'granted' })).rejects.toThrow(/does not match the pinned public key/)
    await rm(l.headPath)
    expect((await l.verify()).errors.join('\n')).toMatch(/head is missing/)
    expect((await verifyAudit({ logPath: l.logPath, headPath: l.headPath, publicKey: null })).errors.join('\n')).toMatch(/no pinned audit public key/)
  })
})

describe('error catalogue', () => {
  it('documents every code in docs/errors.md', async () => {
    const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8')
    for (const c of Object.keys(DATASPACE_ERRORS)) expect(doc, c).toContain(c)
    expect(new DataspaceError('AMB_ERR_DATASPACE_STORE_UNAVAILABLE', 'x', { retryAfterMs: 5000 }).canRetry()).toBe(true)
    expect(new DataspaceError('AMB_ERR_PERMIT_REVOKED', 'x').canRetry()).toBe(false)
  })
})

describe('extract streaming', () => {
  // A stand-in for InfluxDB that answers /query with an endless chunked response, writing only
  // as fast as its socket drains, and counts what it managed to send.
  async function endlessInflux (): Promise<{ url: string, chunks: () => number, blocked: () => boolean, drains: () => number, closed: Promise<void>, server: Server }> {
    let chunks = 0
    let blocked = false
    let drains = 0
    let onClosed!: () => void
    const closed = new Promise<void>(resolve => { onClosed = resolve })
    const rows = Array.from({ length: 100 }, (_, i) => [1_700_000_000_000_000 + i * 2000, i])
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.once('close', onClosed)
      const pump = (): void => {
        blocked = false
        while (!res.destroyed) {
          chunks++
          const line = JSON.stringify({ results: [{ statement_id: 0, series: [{ name: 'ecg', tags: { encounter: 'ENC-1' }, columns: ['time', 'i'], values: rows }], partial: true }] }) + '\n'
          if (!res.write(line)) { blocked = true; res.once('drain', () => { drains++; pump() }); return }
        }
      }
      req.resume()
      pump()
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, chunks: () => chunks, blocked: () => blocked, drains: () => drains, closed, server }
  }

  it('reads InfluxDB only as fast as the client takes the extract, and lets go when the client does', async () => {
    const influx = await endlessInflux()
    try {
      const reader = new InfluxReader({ url: influx.url, db: 'x', chunkRows: 100, timeoutMs: 5000 })
      const protector = new Protector(SECRET, { id: 'p', level: 'pseudonymised' }, 'extract', DATASPACE_DEFAULTS)
      const extractor = new Extractor(reader, protector, DATASPACE_DEFAULTS)
      const plan = await extractor.plan({ dataset: 'ecg', fields: ['i'], fromMs: 0, toMs: 2e12 })
      const ser = createSerializer('ndjson', { plan, level: 'pseudonymised', nowMs: 0 })
      const ac = new AbortController()
      async function * body (): AsyncGenerator<string> { for await (const b of extractor.rows(plan, ac.signal)) yield ser.batch(b) }
      const readable = Readable.from(body(), { objectMode: false, highWaterMark: 64 * 1024 })
      let received = 0
      let taking = false
      let held: (() => void) | undefined
      // A researcher who takes one chunk and then stops reading (until `taking`).
      const researcher = new Writable({
        highWaterMark: 1024,
        write (chunk: Buffer, _enc, cb) { received += chunk.length; if (taking) cb(); else held = cb }
      })
      readable.pipe(researcher)
      // Stalled end to end: the researcher holds a chunk, the extract's buffer is full (so nothing
      // pulls rows), and InfluxDB's side waits for 'drain' (its socket buffers are full).
      await waitFor(async () => held !== undefined && readable.readableLength >= readable.readableHighWaterMark && influx.blocked(), { timeoutMs: 10_000, intervalMs: 10, what: 'the extract to stall' })
      const stalledAt = influx.chunks()
      const drainsAt = influx.drains()
      expect(received).toBeGreaterThan(0)
      expect(stalledAt * 1800).toBeLessThan(64 * 1024 * 1024) // what is in flight is bounded by socket buffers
      // InfluxDB is held back, not read into memory: it moves on when the researcher reads.
      taking = true
      held!()
      await waitFor(async () => influx.drains() > drainsAt && influx.chunks() > stalledAt, { timeoutMs: 10_000, intervalMs: 10, what: 'InfluxDB to be read again' })
      readable.destroy()
      await influx.closed // the query is abandoned, not left running
    } finally {
      influx.server.closeAllConnections()
      await new Promise(resolve => influx.server.close(resolve))
    }
  })
})
