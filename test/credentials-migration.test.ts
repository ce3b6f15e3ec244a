// Issue #10, item 10, the upgrade path: users written by a version without account ids (an
// old-format credentials.json) get a fresh account id automatically when the real gateway opens
// the file, written atomically; the gateway logs how many, never who; their passwords still work
// and a researcher among them can receive a permit without being added again.
import { randomBytes, scryptSync } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runPermitCli } from '../cli/dataspace.js'
import { addUser, revokeUser } from '../gateway/credentials.js'
import { get } from '../testkit/dataspace-client.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'

const HOUR = 3_600_000
const iso = (ms: number): string => new Date(ms).toISOString()
const PASSWORDS = { 'dr-old': 'correct horse battery staple 1', 'nurse-old': 'correct horse battery staple 2' }

let dataDir: string
const gateways: TestGateway[] = []

/** A user record as the version before account ids wrote it (salted scrypt, no accountId). */
function oldUser (password: string, role: string): Record<string, string> {
  const salt = randomBytes(16)
  const hash = scryptSync(password, salt, 32, { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 })
  return { salt: salt.toString('base64'), hash: hash.toString('base64'), createdAt: '2025-01-01T00:00:00.000Z', role }
}

interface File { users: Record<string, { accountId?: string }> }
const read = async (): Promise<File> => JSON.parse(await readFile(join(dataDir, 'credentials.json'), 'utf8')) as File

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'ambulink-cred-migration-'))
  await writeFile(join(dataDir, 'credentials.json'), JSON.stringify({
    version: 1,
    scrypt: { N: 16384, r: 8, p: 1, keylen: 32 },
    devices: {},
    users: { 'dr-old': oldUser(PASSWORDS['dr-old'], 'researcher'), 'nurse-old': oldUser(PASSWORDS['nurse-old'], 'clinician') }
  }, null, 2), { mode: 0o600 })
})

afterAll(async () => {
  for (const g of gateways) await g.stop().catch(() => {})
  await rm(dataDir, { recursive: true, force: true })
})

async function start (): Promise<TestGateway> {
  const g = await startTestGateway({}, { dataDir })
  gateways.push(g)
  return g
}

describe('users from before account ids', () => {
  it('get a fresh id when the gateway opens the file, atomically, counted in the log without names; passwords keep working; permits can be granted', async () => {
    expect(Object.values((await read()).users).every(u => u.accountId === undefined)).toBe(true)
    const tg = await start()
    const after = await read()
    const ids = Object.values(after.users).map(u => u.accountId)
    expect(ids).toHaveLength(2)
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(new Set(ids).size).toBe(2)
    // Written through the durable layer: owner-only, no temp file left beside it.
    expect((await stat(join(dataDir, 'credentials.json'))).mode & 0o777).toBe(0o600)
    expect((await readdir(dataDir)).filter(n => n.endsWith('.tmp') || n.endsWith('.lock'))).toEqual([])
    const line = tg.logs().split('\n').find(l => l.includes('gave account ids'))
    expect(line).toBeDefined()
    expect(JSON.parse(line!)).toMatchObject({ users: 2 })
    expect(line).not.toMatch(/dr-old|nurse-old/)

    // The clinician's old password still logs in (MQTT).
    const c = await mqtt.connectAsync(tg.mqttUrl, { username: 'nurse-old', password: PASSWORDS['nurse-old'], clientId: 'nurse-old', reconnectPeriod: 0 })
    await c.endAsync()

    // The researcher receives a permit without being added again, and the gateway accepts it
    // (no InfluxDB here: past authentication the extract answers 503 for the store, not 401).
    let stdout = ''
    let stderr = ''
    const code = await runPermitCli(['grant', '--researcher', 'dr-old', '--datasets', 'vitals', '--purpose', 'migration test',
      '--from', iso(Date.now() - HOUR), '--to', iso(Date.now() + HOUR), '--expires', iso(Date.now() + HOUR)], { stdout: t => { stdout += t }, stderr: t => { stderr += t } }, tg.gw.config)
    expect(code, stderr).toBe(0)
    const permit = stdout.trim()
    const r = await get(`${tg.httpUrl}/dataspace/extract?dataset=vitals`, permit)
    expect([r.status, (JSON.parse(r.body) as { code: string }).code]).toEqual([503, 'AMB_ERR_DATASPACE_STORE_UNAVAILABLE'])

    // A restart keeps the ids (and logs no migration); a researcher removed and re-added is a new account.
    await tg.stop()
    const again = await start()
    expect((await read()).users['dr-old']!.accountId).toBe(after.users['dr-old']!.accountId)
    expect(again.logs()).not.toMatch(/gave account ids/)
    await revokeUser(dataDir, 'dr-old')
    await addUser(dataDir, 'dr-old', 'researcher')
    expect((await read()).users['dr-old']!.accountId).not.toBe(after.users['dr-old']!.accountId)
    const refused = await get(`${again.httpUrl}/dataspace/extract?dataset=vitals`, permit)
    expect([refused.status, (JSON.parse(refused.body) as { code: string }).code]).toEqual([401, 'AMB_ERR_PERMIT_REVOKED'])
  })
})
