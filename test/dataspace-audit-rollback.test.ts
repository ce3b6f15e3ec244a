// Issue #10, item 2, the remaining window: an insider rolls the audit log back to a head that was
// signed AFTER the last periodic anchor, kills the gateway (no shutdown anchor) and restarts it,
// so the new process never saw the newer head. Every signed head is now published outside
// DATA_DIR as it is signed (InfluxDB, synchronously, and the log stream), so the restarted
// gateway refuses to append and `audit verify` fails, from InfluxDB or from the shipped log alone.
// The real gateway as a child process (SIGKILL), a real InfluxDB, files edited on disk.
import { generateKeyPairSync } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runAuditCli, runPermitCli } from '../cli/dataspace.js'
import { loadConfig, type Config } from '../gateway/config.js'
import { addUser } from '../gateway/credentials.js'
import { get } from '../testkit/dataspace-client.js'
import { startGatewayProcess, type GatewayProcess } from '../testkit/gateway-process.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { waitFor } from '../testkit/proc.js'

const DB = 'amb_audit_rollback'
const HOUR = 3_600_000
const iso = (ms: number): string => new Date(ms).toISOString()

let influx: InfluxServer
let gw: GatewayProcess
let dataDir: string
let outside: string
let pinnedKey: string
let config: Config
let permit: string
let logPath: string
let headPath: string

interface Head { seq: number, counter: number, pending?: unknown }
const head = async (): Promise<Head> => JSON.parse(await readFile(headPath, 'utf8')) as Head
const entries = async (): Promise<Array<{ seq: number, outcome: string }>> => (await readFile(logPath, 'utf8')).split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { seq: number, outcome: string })

async function cli (args: string[], c = config): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const run = args[0] === 'permit' ? runPermitCli : runAuditCli
  const code = await run(args.slice(1), { stdout: t => { stdout += t }, stderr: t => { stderr += t } }, c)
  return { code, stdout, stderr }
}

async function anchoredCounter (): Promise<number> {
  const r = await influx.query('SELECT max("counter") FROM "audit_anchor"', DB) as { results: Array<{ series?: Array<{ values: number[][] }> }> }
  return r.results[0]?.series?.[0]?.values[0]?.[1] ?? 0
}

/** An extract; for a granted one, waits until its completion entry and head are on disk. */
async function access (): Promise<{ status: number, code: string | undefined }> {
  const before = (await entries()).length
  const r = await get(`http://127.0.0.1:${gw.ports.http!}/dataspace/extract?dataset=vitals&fields=heart_rate`, permit)
  if (r.status !== 200) return { status: r.status, code: (JSON.parse(r.body) as { code: string }).code }
  await waitFor(async () => {
    const all = await entries()
    const h = await head()
    return all.length >= before + 2 && all.at(-1)!.outcome === 'completed' && h.seq === all.at(-1)!.seq && h.pending === undefined ? true : undefined
  }, { timeoutMs: 10_000, intervalMs: 20, what: 'the extract\'s completion in the audit log' })
  return { status: 200, code: undefined }
}

beforeAll(async () => {
  influx = await startInfluxDB()
  await influx.createDatabase(DB)
  const root = await mkdtemp(join(tmpdir(), 'ambulink-audit-rollback-'))
  dataDir = join(root, 'data')
  outside = join(root, 'pinned')
  await mkdir(join(dataDir, 'dataspace'), { recursive: true, mode: 0o700 })
  await mkdir(outside)
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  await writeFile(join(dataDir, 'dataspace', 'audit-signing.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  pinnedKey = join(outside, 'audit-signing.pub')
  await writeFile(pinnedKey, publicKey.export({ type: 'spki', format: 'pem' }))
  logPath = join(dataDir, 'dataspace', 'audit.log')
  headPath = join(dataDir, 'dataspace', 'audit.head.json')
  await addUser(dataDir, 'dr-ana', 'researcher')
  // The periodic anchor is an hour away: only the per-head publication can catch the rollback.
  const env = { INFLUX_URL: influx.url, INFLUX_API: 'v1', INFLUX_DB: DB, DATASPACE_AUDIT_PUBLIC_KEY: pinnedKey, DATASPACE_AUDIT_ANCHOR_MS: String(HOUR) }
  gw = await startGatewayProcess({ dataDir, env })
  config = loadConfig({ dataDir, influxUrl: influx.url, influxApi: 'v1', influxDb: DB, dataspaceAuditPublicKey: pinnedKey }, {})
  const g = await cli(['permit', 'grant', '--researcher', 'dr-ana', '--datasets', 'vitals', '--purpose', 'audit rollback study',
    '--from', iso(Date.now() - HOUR), '--to', iso(Date.now() + HOUR), '--expires', iso(Date.now() + HOUR)])
  expect(g.code, g.stderr).toBe(0)
  permit = g.stdout.trim()
}, 60_000)

afterAll(async () => {
  await gw?.stop()
  await influx?.stop()
  if (dataDir !== undefined) await rm(join(dataDir, '..'), { recursive: true, force: true })
})

describe('audit rollback to a head newer than the last periodic anchor', () => {
  it('the head of a granted access is in InfluxDB before its data leave', async () => {
    const r = await get(`http://127.0.0.1:${gw.ports.http!}/dataspace/extract?dataset=vitals&fields=heart_rate`, permit)
    expect(r.status, r.body).toBe(200)
    // The 'granted' entry was appended, and its head anchored, before the first byte: no waiting here.
    const granted = (await entries()).filter(e => e.outcome === 'granted').at(-1)!
    // A fresh log: each entry signs one head, so the counter of entry n is n.
    expect(await anchoredCounter()).toBeGreaterThanOrEqual(granted.seq)
    expect(await gw.logs()).toMatch(/"auditHead":\{"seq":\d+,"hash":"[0-9a-f]{64}","counter":\d+,"at":"[^"]+","sig":"[^"]+"\},"msg":"audit head signed"/)
  })

  it('rolled back to a newer-than-anchor head, files edited, gateway killed and restarted: refused, and verify fails from InfluxDB or from the shipped log alone', async () => {
    expect((await access()).status).toBe(200)
    // The insider's copy of a validly signed state...
    const oldLog = await readFile(logPath)
    const oldHead = await readFile(headPath)
    // ...then more accesses: newer heads, none of them reached by a periodic anchor.
    for (let i = 0; i < 2; i++) expect((await access()).status).toBe(200)
    const newest = (await head()).counter
    await waitFor(async () => await anchoredCounter() >= newest ? true : undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'the completion head published' })
    await waitFor(async () => (await gw.logs()).includes(`"counter":${newest},`) ? true : undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'the newest head in the log stream' })
    const newLog = await readFile(logPath)
    const newHead = await readFile(headPath)

    // The attack: kill -9 (no shutdown anchor), roll DATA_DIR back, restart.
    await gw.kill()
    await writeFile(logPath, oldLog)
    await writeFile(headPath, oldHead)
    await gw.restart()
    expect(await access()).toEqual({ status: 503, code: 'AMB_ERR_AUDIT_INTEGRITY' })
    expect(await gw.logs()).toMatch(/"level":50[^\n]*rolled back/)
    expect(await readFile(logPath)).toEqual(oldLog) // nothing signed over the rollback

    const withInflux = await cli(['audit', 'verify'])
    expect(withInflux.code).toBe(1)
    expect(withInflux.stderr).toMatch(/older than the anchored head/)
    // Without InfluxDB: the shipped log stream (the gateway's stdout, outside DATA_DIR) suffices.
    const noInflux = loadConfig({ dataDir, dataspaceAuditPublicKey: pinnedKey }, {})
    const fromLog = await cli(['audit', 'verify', '--heads', gw.logFile], noInflux)
    expect(fromLog.code).toBe(1)
    expect(fromLog.stderr).toMatch(/older than the anchored head \(counter \d+/)
    const blind = await cli(['audit', 'verify'], noInflux)
    expect(blind.code, 'without any published head the rollback is invisible: what the fix closes').toBe(0)

    // Restoring the real state brings the gateway back without any operator action.
    await writeFile(logPath, newLog)
    await writeFile(headPath, newHead)
    expect((await access()).status).toBe(200)
    expect((await cli(['audit', 'verify', '--heads', gw.logFile])).code).toBe(0)
  })
})
