// Issue #10, items 1-4: an insider with write access to DATA_DIR (but not to the pinned audit
// public key kept elsewhere, nor to InfluxDB) attacks the audit log of a RUNNING gateway that
// writes to a real InfluxDB, by editing files on disk; each attack is then driven by plain HTTP
// requests and `ambulink audit verify`. Each must fail to do harm: the next access is refused
// (503, an error log line, a metric) and verify fails, until an operator runs `audit recover`.
import { createHash, generateKeyPairSync, sign } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runAuditCli, runPermitCli } from '../cli/dataspace.js'
import { loadConfig } from '../gateway/config.js'
import { get } from '../testkit/dataspace-client.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { waitFor } from '../testkit/proc.js'

const DB = 'amb_audit_attacks'
const HOUR = 3_600_000

let influx: InfluxServer
let tg: TestGateway
let outside: string
let pinnedKey: string
let permit: string
let logPath: string
let headPath: string

const iso = (ms: number): string => new Date(ms).toISOString()

async function cli (args: string[], config = tg.gw.config): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const run = args[0] === 'permit' ? runPermitCli : runAuditCli
  const code = await run(args.slice(1), { stdout: t => { stdout += t }, stderr: t => { stderr += t } }, config)
  return { code, stdout, stderr }
}

/**
 * One dataspace access, as a researcher would make it. A granted extract is logged again when it
 * ends, after the response: wait for that entry and its head, so the insider edits a quiet log.
 */
async function access (): Promise<{ status: number, code: string | undefined }> {
  const before = (await lines()).length
  const r = await get(`${tg.httpUrl}/dataspace/extract?dataset=vitals&fields=heart_rate`, permit)
  const code = r.status === 200 ? undefined : (JSON.parse(r.body) as { code: string }).code
  if (r.status === 200) {
    await waitFor(async () => {
      const all = await lines()
      const head = JSON.parse(await readFile(headPath, 'utf8')) as { seq: number, pending?: unknown }
      return all.length >= before + 2 && all.at(-1)!.outcome === 'completed' && head.seq === all.at(-1)!.seq && head.pending === undefined ? true : undefined
    }, { timeoutMs: 10_000, intervalMs: 20, what: 'the extract\'s completion in the audit log' })
  }
  return { status: r.status, code }
}

async function integrityFailures (): Promise<number> {
  const r = await get(`${tg.httpUrl}/metrics`)
  const m = /^ambulink_audit_integrity_failures_total (\d+)/m.exec(r.body)
  return m === null ? 0 : Number(m[1])
}

interface Line { seq: number, prev: string, hash: string, [k: string]: unknown }
const lines = async (): Promise<Line[]> => (await readFile(logPath, 'utf8')).split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Line)

/** The insider's chain: plain SHA-256 over each entry, re-linked, exactly as the gateway hashes. */
function rechain (entries: Line[]): string {
  let prev = '0'.repeat(64)
  let out = ''
  entries.forEach((e, i) => {
    const { hash: _h, ...rest } = e
    const body = JSON.stringify({ ...rest, seq: i + 1, prev })
    prev = createHash('sha256').update(body).digest('hex')
    out += body.slice(0, -1) + `,"hash":"${prev}"}\n`
  })
  return out
}

/** Saves the audit files; restore() puts them back exactly (the running gateway then accepts them again). */
async function snapshot (): Promise<{ log: Buffer, head: Buffer, restore: () => Promise<void> }> {
  const log = await readFile(logPath)
  const head = await readFile(headPath)
  return { log, head, restore: async () => { await writeFile(logPath, log); await writeFile(headPath, head) } }
}

beforeAll(async () => {
  influx = await startInfluxDB()
  await influx.createDatabase(DB)
  // The data holder's audit key, generated before the gateway first starts; its public half is
  // pinned outside DATA_DIR, where the insider cannot write.
  const dataDir = await mkdtemp(join(tmpdir(), 'ambulink-audit-attack-'))
  outside = await mkdtemp(join(tmpdir(), 'ambulink-audit-pin-'))
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  await mkdir(join(dataDir, 'dataspace'), { recursive: true, mode: 0o700 })
  await writeFile(join(dataDir, 'dataspace', 'audit-signing.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  pinnedKey = join(outside, 'audit-signing.pub')
  await writeFile(pinnedKey, publicKey.export({ type: 'spki', format: 'pem' }))
  tg = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: DB, dataspaceAuditPublicKey: pinnedKey, dataspaceAuditAnchorMs: 1000 }, { dataDir })
  logPath = join(dataDir, 'dataspace', 'audit.log')
  headPath = join(dataDir, 'dataspace', 'audit.head.json')
  await tg.addUser('dr-ana', 'researcher')
  const g = await cli(['permit', 'grant', '--researcher', 'dr-ana', '--datasets', 'vitals', '--purpose', 'audit attack study',
    '--from', iso(Date.now() - HOUR), '--to', iso(Date.now() + HOUR), '--expires', iso(Date.now() + HOUR)])
  expect(g.code, g.stderr).toBe(0)
  permit = g.stdout.trim()
  for (let i = 0; i < 3; i++) expect((await access()).status).toBe(200)
  await waitFor(async () => (await lines()).length >= 7 ? true : undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'audit entries' })
})

afterAll(async () => {
  await tg?.close()
  await rm(tg?.dataDir ?? '', { recursive: true, force: true })
  await rm(outside ?? '', { recursive: true, force: true })
  await influx?.stop()
})

describe('audit log attacks against a running gateway', () => {
  it('an intact log verifies with the pinned key, against the anchor in InfluxDB', async () => {
    await waitFor(async () => (await influx.count(DB, 'audit_anchor', 'counter')) > 0 ? true : undefined, { timeoutMs: 10_000, intervalMs: 100, what: 'an anchor in InfluxDB' })
    const v = await cli(['audit', 'verify'])
    expect(v.code, v.stderr).toBe(0)
    expect(v.stderr).toMatch(/not behind the anchor/)
    expect(tg.logs()).toMatch(/"msg":"audit head (anchor|signed)"/)
  })

  it('1: a chain rewritten with plain SHA-256 under a junk head signature is not signed over: the next access is refused, verify fails', async () => {
    const snap = await snapshot()
    const before = await integrityFailures()
    const entries = await lines()
    // Remove the record of the first extract and re-chain; junk signature on a plausible head.
    const forged = rechain(entries.filter((e, i) => !(i > 0 && e.kind === 'extract' && e.outcome === 'granted' && entries.indexOf(e) === entries.findIndex(x => x.kind === 'extract'))))
    await writeFile(logPath, forged)
    const last = JSON.parse(forged.trim().split('\n').at(-1)!) as Line
    const head = JSON.parse(await readFile(headPath, 'utf8')) as Record<string, unknown>
    await writeFile(headPath, JSON.stringify({ v: 2, seq: last.seq, hash: last.hash, counter: Number(head.counter) + 1, at: iso(Date.now()), sig: Buffer.alloc(64, 7).toString('base64') }))
    expect(await access()).toEqual({ status: 503, code: 'AMB_ERR_AUDIT_INTEGRITY' })
    expect(await readFile(logPath, 'utf8')).toBe(forged) // nothing appended over the forgery
    expect(await integrityFailures()).toBeGreaterThan(before)
    expect(tg.logs()).toMatch(/"level":50[^\n]*AUDIT LOG INTEGRITY FAILURE/)
    const v = await cli(['audit', 'verify'])
    expect(v.code).toBe(1)
    expect(v.stderr).toMatch(/signature does not verify with the pinned key/)
    await snap.restore()
    expect((await access()).status).toBe(200)
  })

  it('2: truncating back to an old signed head is caught by the running gateway, by a new process (anchor floor) and by verify (anchor)', async () => {
    const old = await snapshot()
    for (let i = 0; i < 2; i++) expect((await access()).status).toBe(200)
    const counter = Number((JSON.parse(await readFile(headPath, 'utf8')) as { counter: number }).counter)
    // Wait until the newer head is anchored outside DATA_DIR (InfluxDB).
    await waitFor(async () => {
      const r = await influx.query(`SELECT max("counter") FROM "audit_anchor"`, DB) as { results: Array<{ series?: Array<{ values: number[][] }> }> }
      return (r.results[0]?.series?.[0]?.values[0]?.[1] ?? 0) >= counter ? true : undefined
    }, { timeoutMs: 10_000, intervalMs: 100, what: 'the newer head anchored' })
    const now = await snapshot()
    await old.restore() // the insider's rollback: an older, validly signed head and the log cut to match
    expect(await access()).toEqual({ status: 503, code: 'AMB_ERR_AUDIT_INTEGRITY' })
    expect(tg.logs()).toMatch(/rolled back/)
    // Another process (the CLI granting a permit) has never seen the newer head: the anchor tells it.
    await expect(cli(['permit', 'grant', '--researcher', 'dr-ana', '--datasets', 'vitals', '--purpose', 'x',
      '--from', iso(Date.now() - HOUR), '--to', iso(Date.now() + HOUR), '--expires', iso(Date.now() + HOUR)])).rejects.toMatchObject({ code: 'AMB_ERR_AUDIT_INTEGRITY' })
    const v = await cli(['audit', 'verify'])
    expect(v.code).toBe(1)
    expect(v.stderr).toMatch(/older than the anchored head/)
    await now.restore()
    expect((await access()).status).toBe(200)
  })

  it('3: a key swapped beside the log (and a chain re-signed with it) is caught: the pinned key decides, never the one in DATA_DIR', async () => {
    const snap = await snapshot()
    const keyFile = join(tg.dataDir, 'dataspace', 'audit-signing.key')
    const pubFile = join(tg.dataDir, 'dataspace', 'audit-signing.pub')
    const realKey = await readFile(keyFile)
    const realPub = await readFile(pubFile).catch(() => null)
    const mine = generateKeyPairSync('ed25519')
    await writeFile(keyFile, mine.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
    await writeFile(pubFile, mine.publicKey.export({ type: 'spki', format: 'pem' }))
    const entries = await lines()
    const forged = rechain(entries.slice(0, -2))
    const last = JSON.parse(forged.trim().split('\n').at(-1)!) as Line
    const h = { seq: last.seq, hash: last.hash, counter: 1_000_000, at: iso(Date.now()) }
    const sig = sign(null, Buffer.from(`ambulink-audit-head/v2\n${h.seq}\n${h.hash}\n${h.counter}\n${h.at}`), mine.privateKey).toString('base64')
    await writeFile(logPath, forged)
    await writeFile(headPath, JSON.stringify({ v: 2, ...h, sig }))
    expect(await access()).toEqual({ status: 503, code: 'AMB_ERR_AUDIT_INTEGRITY' })
    expect((await cli(['audit', 'verify'])).stderr).toMatch(/does not verify with the pinned key/)
    // Without a pinned key verify refuses to vouch; pointing it at the key beside the log is refused.
    const unpinned = loadConfig({ dataDir: tg.dataDir }, {})
    const bare = await cli(['audit', 'verify'], unpinned)
    expect(bare.code).toBe(1)
    expect(bare.stderr).toMatch(/no pinned audit public key/)
    const beside = await cli(['audit', 'verify', '--key', pubFile], unpinned)
    expect(beside.code).toBe(1)
    expect(beside.stderr).toMatch(/inside DATA_DIR/)
    // A gateway restarted on the swapped key refuses to sign with it.
    await expect(startTestGateway({ dataspaceAuditPublicKey: pinnedKey }, { dataDir: tg.dataDir }).then(async g => {
      try { return await get(`${g.httpUrl}/dataspace/extract?dataset=vitals`, permit).then(r => (JSON.parse(r.body) as { code: string }).code) } finally { await g.stop() }
    })).resolves.toBe('AMB_ERR_AUDIT_INTEGRITY')
    await writeFile(keyFile, realKey, { mode: 0o600 })
    if (realPub !== null) await writeFile(pubFile, realPub)
    await snap.restore()
    expect((await access()).status).toBe(200)
  })

  it('4: an entry appended by hand past the head is not blessed; `audit recover` is an explicit, recorded decision', async () => {
    const entries = await lines()
    const last = entries.at(-1)!
    const body = JSON.stringify({ seq: last.seq + 1, at: iso(Date.now()), prev: last.hash, kind: 'extract', outcome: 'completed', researcher: 'dr-ana', rows: 0 })
    await writeFile(logPath, (await readFile(logPath, 'utf8')) + body.slice(0, -1) + `,"hash":"${createHash('sha256').update(body).digest('hex')}"}\n`)
    expect(await access()).toEqual({ status: 503, code: 'AMB_ERR_AUDIT_INTEGRITY' })
    const v = await cli(['audit', 'verify'])
    expect(v.code).toBe(1)
    expect(v.stderr).toMatch(/signed by nobody/)
    expect((await cli(['audit', 'recover'])).code).toBe(2) // a reason is required
    const r = await cli(['audit', 'recover', '--reason', 'entry added by the DBA while testing; ticket 4711'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/recorded audit\.recovered/)
    expect((await access()).status).toBe(200)
    const after = await cli(['audit', 'verify'])
    expect(after.code, after.stderr).toBe(0)
    expect(after.stderr).toMatch(/operator recovery: entries \d+\.\.\d+ .*ticket 4711/)
  })
})
