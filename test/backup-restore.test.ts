// Backup and restore of DATA_DIR, end to end, exactly as docs/operations.md says: DATA_DIR is a
// btrfs subvolume; while a real gateway runs with units streaming, a read-only snapshot is taken,
// copied to the backup store with `cp -a` and dropped. The original is then lost (as in the
// disaster the backup is for), the copy is restored with `cp -a` into a fresh DATA_DIR, and a
// gateway starts on it with a real InfluxDB. Checked after the restore: the credentials (a unit
// enrolled before the backup connects, one enrolled after it does not, a user signs in), the
// audit log (`audit verify` with the key pinned outside DATA_DIR), the alert state (an open,
// acknowledged alert), and the spool: it drains into InfluxDB exactly once (per unit a gap-free
// prefix of what was sent, at least everything acknowledged before the snapshot; every point
// written once), and nothing more after a second restart. With InfluxDB anchoring the audit
// head, a restore is a rollback of the audit log: refused until `audit recover` records it.
// Needs root and btrfs-progs (mkfs.btrfs, btrfs), like the full-disk test needs root for tmpfs.
import { execFile } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { runAuditCli, runPermitCli } from '../cli/dataspace.js'
import { encodeFrame } from '../decoders/index.js'
import type { Config } from '../gateway/config.js'
import { mountBtrfs, type BtrfsVolume } from '../testkit/btrfs.js'
import { get } from '../testkit/dataspace-client.js'
import { T0, testFrame } from '../testkit/frames.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { waitFor } from '../testkit/proc.js'

const run = promisify(execFile)
const DB = 'amb_restored'
const UNITS = ['bk-01', 'bk-02', 'bk-03']
const HOUR = 3_600_000
/** Signal loss and escalation beyond the test's length: the alert state stays what was backed up. */
const QUIET_ALERTS = { signalLossMs: 600_000, alertEscalateMs: 600_000 }

let influx: InfluxServer
let vol: BtrfsVolume
let outside: string
beforeAll(async () => {
  influx = await startInfluxDB()
  vol = await mountBtrfs()
  outside = await mkdtemp(join(tmpdir(), 'ambulink-backup-store-'))
})
afterAll(async () => {
  await vol?.unmount()
  await rm(outside ?? '', { recursive: true, force: true })
  await influx?.stop()
})

/**
 * The data holder's audit key, made before the gateway first starts: the private half in
 * DATA_DIR, the public half pinned outside it (docs/dataspace.md). Returns the pinned file.
 */
async function auditKey (dataDir: string, pinnedName: string): Promise<string> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  await mkdir(join(dataDir, 'dataspace'), { recursive: true, mode: 0o700 })
  await writeFile(join(dataDir, 'dataspace', 'audit-signing.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  const pinned = join(outside, pinnedName)
  await writeFile(pinned, publicKey.export({ type: 'spki', format: 'pem' }))
  return pinned
}

async function cli (args: string[], config: Config): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const runCli = args[0] === 'permit' ? runPermitCli : runAuditCli
  const code = await runCli(args.slice(1), { stdout: t => { stdout += t }, stderr: t => { stderr += t } }, config)
  return { code, stdout, stderr }
}

/** A unit publishing testFrame seq 1, 2, … with QoS 1, each after the previous PUBACK. */
function streamer (url: string, unit: string, token: string): { acked: () => number, sent: () => number, stop: () => Promise<void> } {
  let acked = 0
  let sent = 0
  let running = true
  const c = mqtt.connect(url, { clientId: unit, username: unit, password: token, reconnectPeriod: 0 })
  const loop = (async () => {
    await new Promise<void>((resolve, reject) => { c.once('connect', () => { resolve() }); c.once('error', reject) })
    while (running) {
      const seq = ++sent
      await c.publishAsync(`units/${unit}/telemetry`, Buffer.from(testFrame({ unit, seq })), { qos: 1 })
      acked = seq
    }
  })()
  return {
    acked: () => acked,
    sent: () => sent,
    stop: async () => { running = false; await loop; await c.endAsync() }
  }
}

/** HR 35 with the rest normal, one frame a second of device time (alerts-e2e's deteriorating unit). */
function bradycardia (unit: string, seq: number, t: number): Buffer {
  const normal: Array<[number, number]> = [[7, 16], [3, 97], [11, 0], [4, 125], [1, 35], [10, 0], [9, 36.8]]
  return Buffer.from(encodeFrame({ unitId: unit, bootId: 'boot-1', seq, capturedAtMs: t, encounterId: `enc-${unit}`, numerics: normal.map(([sign, value]) => ({ sign, value, offsetMs: 0 })) }))
}

async function metric (tg: TestGateway, name: string): Promise<number> {
  const text = await tg.gw.metrics.registry.getSingleMetricAsString(name)
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN)
}

async function connackOf (url: string, unit: string, token: string): Promise<number> {
  const c = mqtt.connect(url, { clientId: unit, username: unit, password: token, reconnectPeriod: 0 })
  return await new Promise<number>(resolve => {
    c.once('connect', () => { c.end(true); resolve(0) })
    c.once('error', (err: Error & { code?: number }) => { c.end(true); resolve(err.code ?? -1) })
  })
}

describe('backup and restore of DATA_DIR (docs/operations.md)', () => {
  it('a snapshot taken while units stream restores credentials, audit log, alert state and a spool that drains exactly once', async () => {
    // The gateway whose DATA_DIR is backed up: no INFLUX_URL, so its spool keeps every frame.
    const dataDir = await vol.subvolume('data')
    const pinnedKey = await auditKey(dataDir, 'audit-signing.pub')
    const original = await startTestGateway({ ...QUIET_ALERTS, dataspaceAuditPublicKey: pinnedKey }, { dataDir })
    onTestFinished(() => original.close())

    const tokens = new Map<string, string>()
    for (const u of [...UNITS, 'bk-crit']) tokens.set(u, await original.addDevice(u))
    const leePassword = await original.addUser('dr-lee', 'clinician')
    await original.addUser('dr-ana', 'researcher')
    const grant = (purpose: string): Promise<{ code: number, stderr: string }> => cli(['permit', 'grant', '--researcher', 'dr-ana', '--datasets', 'vitals', '--purpose', purpose,
      '--from', new Date(Date.now() - HOUR).toISOString(), '--to', new Date(Date.now() + HOUR).toISOString(), '--expires', new Date(Date.now() + HOUR).toISOString()], original.gw.config)
    expect((await grant('before the backup')).code).toBe(0)

    // An open alert, acknowledged by a clinician: 10 s of HR 35.
    const crit = await mqtt.connectAsync(original.mqttUrl, { clientId: 'bk-crit', username: 'bk-crit', password: tokens.get('bk-crit')!, reconnectPeriod: 0 })
    const base = Date.now() - 12_000
    for (let seq = 0; seq <= 10; seq++) await crit.publishAsync('units/bk-crit/telemetry', bradycardia('bk-crit', seq, base + seq * 1000), { qos: 1 })
    await crit.endAsync()
    const threshold = await waitFor(async () => original.gw.alerts.openAlerts().find(a => a.kind === 'threshold'), { timeoutMs: 10_000, what: 'the bradycardia alert' })
    expect(original.gw.alerts.acknowledge(threshold.id, 'dr-lee')).toMatchObject({ acknowledgedBy: 'dr-lee' })
    const openBefore = original.gw.alerts.openAlerts().map(a => ({ id: a.id, kind: a.kind, acknowledgedBy: a.acknowledgedBy })).sort((a, b) => a.id.localeCompare(b.id))

    // Units streaming.
    const streams = UNITS.map(u => streamer(original.mqttUrl, u, tokens.get(u)!))
    onTestFinished(async () => { await Promise.all(streams.map(s => s.stop())) })
    await waitFor(async () => streams.every(s => s.acked() >= 20), { timeoutMs: 30_000, what: '20 frames acknowledged per unit' })

    // docs/operations.md, "Backup and restore", step 1: snapshot, copy from it, drop it.
    const ackedBefore = streams.map(s => s.acked())
    const snap = join(vol.dir, 'data-snapshot')
    await vol.snapshot(dataDir, snap)
    const sentBy = streams.map(s => s.sent())
    const backup = join(outside, 'backup')
    await run('cp', ['-a', snap, backup])
    await vol.deleteSubvolume(snap)

    // The gateway kept running: frames went on being acknowledged; then, after the backup, a unit
    // is enrolled and a permit granted that the backup does not hold.
    await waitFor(async () => streams.every((s, i) => s.acked() >= sentBy[i]! + 10), { timeoutMs: 30_000, what: 'frames acknowledged after the snapshot' })
    const lateToken = await original.addDevice('bk-late')
    expect((await grant('after the backup')).code).toBe(0)
    await Promise.all(streams.map(s => s.stop()))
    await original.close()

    // Restore into a fresh DATA_DIR (`cp -a` keeps the modes), then start a gateway on it.
    const restoredDir = join(await mkdtemp(join(tmpdir(), 'ambulink-restored-')), 'data')
    onTestFinished(() => rm(join(restoredDir, '..'), { recursive: true, force: true }))
    await run('cp', ['-a', backup, restoredDir])
    expect((await stat(restoredDir)).mode & 0o777).toBe(0o700)
    expect((await stat(join(restoredDir, 'credentials.json'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(restoredDir, 'dataspace', 'audit-signing.key'))).mode & 0o777).toBe(0o600)
    const influxConfig = { influxUrl: influx.url, influxApi: 'v1' as const, influxDb: DB }
    let restored = await startTestGateway({ ...QUIET_ALERTS, ...influxConfig, dataspaceAuditPublicKey: pinnedKey }, { dataDir: restoredDir })
    onTestFinished(() => restored.stop())
    // The alert state as restored, read at once: the streaming units stay silent from here, and
    // with signal loss set far off, 10 s of silence on the gateway clock raises their ECG stream
    // loss (a new alert, not a restored one), which a loaded machine reaches during the drain.
    const openRestored = restored.gw.alerts.openAlerts().map(a => ({ id: a.id, kind: a.kind, acknowledgedBy: a.acknowledgedBy })).sort((a, b) => a.id.localeCompare(b.id))

    // The spool drains into InfluxDB: per unit the frames 1..k, a gap-free prefix, k at least
    // what was acknowledged before the snapshot and at most what was sent by its end.
    await waitFor(async () => restored.gw.spool.pendingBytes === 0, { timeoutMs: 60_000, what: 'the restored spool to drain' })
    let stored = 0
    for (const [i, unit] of UNITS.entries()) {
      const where = `"unit" = '${unit}'`
      const k = await influx.count(DB, 'vitals', 'heart_rate', where)
      expect(k, unit).toBeGreaterThanOrEqual(ackedBefore[i]!)
      expect(k, unit).toBeLessThanOrEqual(sentBy[i]!)
      expect(await influx.count(DB, 'ecg', 'ii', where)).toBe(k * 125)
      expect(await influx.count(DB, 'position', 'latitude', where)).toBe(k)
      const last = await influx.query(`SELECT LAST("heart_rate") FROM vitals WHERE ${where}`, DB, { epoch: 'ms' })
      expect(last.results[0].series[0].values[0][0]).toBe(T0 + k * 250) // the highest seq is k: no gap
      stored += k * 127
    }
    const crit11 = await influx.count(DB, 'vitals', 'heart_rate', `"unit" = 'bk-crit'`)
    expect(crit11).toBe(11)
    const alertPoints = await influx.count(DB, 'alerts', 'message')
    expect(alertPoints).toBeGreaterThanOrEqual(openBefore.length + 1) // raised events and the acknowledgement
    stored += crit11 + alertPoints
    // Every point written once: the restored gateway wrote exactly what InfluxDB holds.
    expect(await metric(restored, 'ambulink_points_written_total')).toBe(stored)

    // Alert state: the same open alerts, the acknowledgement kept.
    expect(openRestored).toEqual(openBefore)

    // Credentials: as at the backup.
    expect([4, 5]).toContain(await connackOf(restored.mqttUrl, 'bk-late', lateToken)) // enrolled after the backup
    const u1 = await mqtt.connectAsync(restored.mqttUrl, { clientId: 'bk-01', username: 'bk-01', password: tokens.get('bk-01')!, reconnectPeriod: 0 })
    await u1.publishAsync('units/bk-01/telemetry', Buffer.from(testFrame({ unit: 'bk-01', seq: 100_000 })), { qos: 1 })
    await u1.endAsync()
    const login = await fetch(`${restored.httpUrl}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'dr-lee', password: leePassword }) })
    expect(login.status).toBe(200)

    // Audit log: intact, with the pinned key; it holds what was logged up to the backup.
    const verify = await cli(['audit', 'verify', '--key', pinnedKey], restored.gw.config)
    expect(verify.code, verify.stderr).toBe(0)
    const list = await cli(['audit', 'list', '--json'], restored.gw.config)
    expect(list.stdout).toMatch(/before the backup/)
    expect(list.stdout).not.toMatch(/after the backup/)

    // Exactly once across a restart too: nothing left to write, the counts unchanged.
    await waitFor(async () => restored.gw.spool.pendingBytes === 0, { timeoutMs: 20_000, what: 'the new frame to be written' })
    await restored.stop()
    restored = await startTestGateway({ ...QUIET_ALERTS, ...influxConfig, dataspaceAuditPublicKey: pinnedKey }, { dataDir: restoredDir })
    expect(restored.gw.spool.pendingBytes).toBe(0)
    expect(await influx.count(DB, 'vitals', 'heart_rate', `"unit" = 'bk-01'`)).toBe((await influx.count(DB, 'ecg', 'ii', `"unit" = 'bk-01'`)) / 125)
    expect(await metric(restored, 'ambulink_points_written_total')).toBe(0)
  }, 180_000)

  it('with InfluxDB anchoring the audit head, a restore is a rollback: refused and reported until `audit recover` records it', async () => {
    const db = 'amb_anchored'
    await influx.createDatabase(db)
    const dataDir = await vol.subvolume('anchored')
    const pinnedKey = await auditKey(dataDir, 'anchored-audit-signing.pub')
    const config = { ...QUIET_ALERTS, influxUrl: influx.url, influxApi: 'v1' as const, influxDb: db, dataspaceAuditPublicKey: pinnedKey, dataspaceAuditAnchorMs: 1000 }
    const original = await startTestGateway(config, { dataDir })
    onTestFinished(() => original.close())
    await original.addUser('dr-ana', 'researcher')
    const grant = (tg: TestGateway, purpose: string): Promise<{ code: number, stdout: string, stderr: string }> => cli(['permit', 'grant', '--researcher', 'dr-ana', '--datasets', 'vitals', '--purpose', purpose,
      '--from', new Date(Date.now() - HOUR).toISOString(), '--to', new Date(Date.now() + HOUR).toISOString(), '--expires', new Date(Date.now() + HOUR).toISOString()], tg.gw.config)
    const anchors = (): Promise<number> => influx.count(db, 'audit_anchor', 'counter')

    const first = await grant(original, 'before the backup')
    expect(first.code).toBe(0)
    const permit = first.stdout.trim()
    await waitFor(async () => await anchors() >= 1, { timeoutMs: 15_000, what: 'an anchor' })
    const snap = join(vol.dir, 'anchored-snapshot')
    await vol.snapshot(dataDir, snap)
    const backup = join(outside, 'anchored-backup')
    await run('cp', ['-a', snap, backup])
    await vol.deleteSubvolume(snap)
    // After the backup: one more access is logged and anchored, then the original is lost.
    const anchored = await anchors()
    expect((await grant(original, 'after the backup')).code).toBe(0)
    await waitFor(async () => await anchors() > anchored, { timeoutMs: 15_000, what: 'a newer anchor' })
    await original.close()

    const restoredDir = join(await mkdtemp(join(tmpdir(), 'ambulink-restored-')), 'data')
    onTestFinished(() => rm(join(restoredDir, '..'), { recursive: true, force: true }))
    await run('cp', ['-a', backup, restoredDir])
    const restored = await startTestGateway(config, { dataDir: restoredDir })
    onTestFinished(() => restored.close())

    // The restored log ends before the newest anchor in InfluxDB: to the audit layer a restore is
    // a rollback. verify says so, and nothing is appended: no grant, no data access.
    const verify = await cli(['audit', 'verify', '--key', pinnedKey], restored.gw.config)
    expect(verify.code).toBe(1)
    expect(verify.stderr).toMatch(/older than the anchored head .*rolled back/)
    await expect(grant(restored, 'on the restored log')).rejects.toMatchObject({ code: 'AMB_ERR_AUDIT_INTEGRITY' })
    const refused = await get(`${restored.httpUrl}/dataspace/extract?dataset=vitals&fields=heart_rate`, permit)
    expect(refused.status).toBe(503)
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'AMB_ERR_AUDIT_INTEGRITY' })

    // docs/operations.md: the operator records the restore; the log is in service again, and
    // the anomaly stays in the chain as evidence (verify keeps reporting it).
    const recover = await cli(['audit', 'recover', '--reason', 'restored from the backup'], restored.gw.config)
    expect(recover.code, recover.stderr).toBe(0)
    expect(recover.stderr).toMatch(/recorded audit\.anomaly/)
    expect((await grant(restored, 'after the recovery')).code).toBe(0)
    const served = await get(`${restored.httpUrl}/dataspace/extract?dataset=vitals&fields=heart_rate`, permit)
    expect(served.status).toBe(200)
    const verifyAfter = await cli(['audit', 'verify', '--key', pinnedKey], restored.gw.config)
    expect(verifyAfter.code).toBe(1)
    expect(verifyAfter.stderr).toMatch(/anomaly recorded: .*restored from the backup/)
  }, 120_000)
})
