// The research live stream carries each frame once. A device resends a frame whose PUBACK it did
// not get — the connection broke while the first copy was being written, the PUBACK was lost, or
// the spool refused the first copy — and the gateway stores the resend again (idempotent), but a
// researcher's live stream must not hold the same samples twice: it gets the frame at its first
// stored copy (ingest's 'frame' event), which is the resend when the spool refused the first.
// What the gateway cannot remember (a restart between the two copies) is sent again, as the same
// record. Real gateway (testkit/gateway.ts), mqtt.js devices, a researcher on a real WebSocket
// with a real data permit.
//
// Mock, and why: a real disk cannot be made to hold one fsync for as long as a test needs, nor to
// fail one with EIO on demand, so the spool's group commit awaits a test hook before its
// fdatasync (streams/storage/sync-hook.ts), as in test/alert-priority-path.test.ts. The test
// synchronises on the events it causes, never on sleeps. Everything else is real.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { runPermitCli } from '../cli/dataspace.js'
import { encodeFrame, type Frame } from '../decoders/index.js'
import { setSpoolSyncHook } from '../streams/storage/sync-hook.js'
import { openLive, type LiveClient } from '../testkit/dataspace-client.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { holdFsyncs } from '../testkit/hold-fsyncs.js'
import { waitFor } from '../testkit/proc.js'

const HOUR = 3_600_000
const T0 = Date.now() - 60_000
/** Heart rate is vital sign 1 (decoders/vital-signs.ts); each frame of a test carries its own. */
const HEART_RATE = 1

/** Frame `seq` of `unit`: one heart rate, `hr`, captured at T0 + seq s. */
function frame (unit: string, seq: number, hr: number): Buffer {
  return Buffer.from(encodeFrame({
    unitId: unit,
    bootId: 'boot-1',
    seq,
    capturedAtMs: T0 + seq * 1000,
    encounterId: `enc-${unit}`,
    numerics: [{ sign: HEART_RATE, value: hr, offsetMs: 0 }]
  }))
}

/** The heart rates a live stream carried, in order, one per record. */
function rates (live: LiveClient): number[] {
  return live.messages.flatMap(m => (JSON.parse(m) as { records: Array<{ heart_rate: number }> }).records.map(r => r.heart_rate))
}

async function grant (tg: TestGateway, researcher: string): Promise<string> {
  let stdout = ''
  let stderr = ''
  const iso = (ms: number): string => new Date(ms).toISOString()
  const code = await runPermitCli(['grant', '--researcher', researcher, '--datasets', 'vitals', '--purpose', 'Resend study',
    '--from', iso(T0 - HOUR), '--to', iso(T0 + 2 * HOUR), '--expires', iso(Date.now() + HOUR)],
  { stdout: t => { stdout += t }, stderr: t => { stderr += t } }, tg.gw.config)
  expect(code, stderr).toBe(0)
  return stdout.trim()
}

async function stream (tg: TestGateway, token: string): Promise<LiveClient> {
  const live = await openLive(`${tg.httpUrl.replace('http', 'ws')}/dataspace/stream?dataset=vitals&fields=heart_rate`, token)
  onTestFinished(() => { live.ws.terminate() })
  return live
}

async function device (tg: TestGateway, unit: string, token: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(tg.mqttUrl, { username: unit, password: token, clientId: unit, reconnectPeriod: 0 })
  onTestFinished(async () => { await c.endAsync(true) })
  return c
}

async function counter (tg: TestGateway, name: string, label = ''): Promise<number> {
  const text = await tg.gw.metrics.registry.getSingleMetricAsString(name)
  const line = text.split('\n').find(l => l.startsWith(`${name}${label} `))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

/** Counts the calls of tg's ingest() for `unit` (an observer: it calls the real one). */
function countIngest (tg: TestGateway, unit: string): () => number {
  let calls = 0
  const ingest = tg.gw.ingest.ingest
  tg.gw.ingest.ingest = async function (u, bytes, transport) {
    if (u === unit) calls++
    return await ingest.call(this, u, bytes, transport)
  }
  onTestFinished(() => { tg.gw.ingest.ingest = ingest })
  return () => calls
}

describe('the research live stream gets each frame once', () => {
  let tg: TestGateway
  let permit: string
  beforeAll(async () => {
    tg = await startTestGateway()
    await tg.addUser('dr-live', 'researcher')
    permit = await grant(tg, 'dr-live')
  }, 180_000)
  afterEach(() => { setSpoolSyncHook(null) })
  afterAll(async () => { setSpoolSyncHook(null); await tg?.close() })

  it('a frame resent while its first copy is being written, and one resent after its PUBACK was lost: both copies stored, each sample streamed once', async () => {
    const unit = 'amb-twice'
    const token = await tg.addDevice(unit)
    const live = await stream(tg, permit)
    const calls = countIngest(tg, unit)
    const acceptedBefore = await counter(tg, 'ambulink_frames_accepted_total', '{transport="mqtt"}')
    const replayedBefore = await counter(tg, 'ambulink_frames_replayed_total')

    // 1. The first copy's fsync is held; the device loses its connection and resends on a new one.
    const held = holdFsyncs()
    onTestFinished(held.release)
    const first = await device(tg, unit, token)
    void first.publishAsync(`units/${unit}/telemetry`, frame(unit, 1, 71), { qos: 1 }).catch(() => {})
    await held.reached
    first.stream.destroy()
    const again = await device(tg, unit, token)
    const resent = again.publishAsync(`units/${unit}/telemetry`, frame(unit, 1, 71), { qos: 1, dup: true })
    // Both copies are in ingest (the resend joins the held group commit) before it is released.
    await waitFor(async () => calls() >= 2 ? true : undefined, { timeoutMs: 20_000, intervalMs: 2, what: 'the resend in ingest' })
    held.release()
    await resent

    // 2. Stored and acknowledged, then sent again: the device did not get the PUBACK.
    await again.publishAsync(`units/${unit}/telemetry`, frame(unit, 2, 72), { qos: 1 })
    await again.publishAsync(`units/${unit}/telemetry`, frame(unit, 2, 72), { qos: 1, dup: true })
    // The next frame: once it is on the stream, whatever the resends sent is too (one socket, in order).
    await again.publishAsync(`units/${unit}/telemetry`, frame(unit, 3, 73), { qos: 1 })
    await live.waitFor(() => rates(live).includes(73), 20_000)

    expect(rates(live)).toEqual([71, 72, 73])
    // Every copy was stored (InfluxDB would get the same points twice): only the stream left them out.
    expect(await counter(tg, 'ambulink_frames_accepted_total', '{transport="mqtt"}')).toBe(acceptedBefore + 5)
    expect(await counter(tg, 'ambulink_frames_replayed_total')).toBe(replayedBefore + 2)
  }, 120_000)

  it('a frame the spool refused is not streamed; its resend, the first copy stored, is streamed once', async () => {
    const unit = 'amb-refused'
    const token = await tg.addDevice(unit)
    const other = 'amb-marker'
    const otherToken = await tg.addDevice(other)
    const live = await stream(tg, permit)
    const acceptedBefore = await counter(tg, 'ambulink_frames_accepted_total', '{transport="mqtt"}')

    // The disk fails the fsync that covers the frame (as EIO would): the spool refuses it.
    let failed = false
    setSpoolSyncHook(async () => {
      if (failed) return
      failed = true
      throw Object.assign(new Error('EIO: i/o error, fdatasync (injected)'), { code: 'EIO' })
    })
    const first = await device(tg, unit, token)
    const closed = new Promise<void>(resolve => { first.once('close', () => { resolve() }) })
    void first.publishAsync(`units/${unit}/telemetry`, frame(unit, 1, 81), { qos: 1 }).catch(() => {})
    // Not acknowledged: the device is disconnected without a PUBACK.
    await closed
    expect(tg.logs()).toContain('frame not spooled; disconnecting device')
    await waitFor(async () => tg.gw.spool.faulted === null, { timeoutMs: 20_000, intervalMs: 20, what: 'the spool to recover' })
    // Another unit's frame: once it is on the stream, the refused frame would have been before it.
    const marker = await device(tg, other, otherToken)
    await marker.publishAsync(`units/${other}/telemetry`, frame(other, 1, 180), { qos: 1 })
    await live.waitFor(() => rates(live).includes(180), 20_000)
    expect(rates(live)).toEqual([180])

    // The device reconnects and resends it; the spool keeps it this time.
    first.removeAllListeners('close')
    const again = await device(tg, unit, token)
    await again.publishAsync(`units/${unit}/telemetry`, frame(unit, 1, 81), { qos: 1, dup: true })
    await again.publishAsync(`units/${unit}/telemetry`, frame(unit, 2, 82), { qos: 1 })
    await live.waitFor(() => rates(live).includes(82), 20_000)

    expect(rates(live)).toEqual([180, 81, 82])
    expect(await counter(tg, 'ambulink_frames_accepted_total', '{transport="mqtt"}')).toBe(acceptedBefore + 3)
  }, 120_000)

  it('a resend arriving at another gateway process (the device moved) is new there: its consumers, the roster among them, get it', async () => {
    // The roster (gateway/server.ts, cluster mode) claims a unit on ingest's 'validated' frames:
    // the device's resend must reach them on the process it moved to, though its first copy was
    // handed over on the one it left.
    const b = await startTestGateway()
    onTestFinished(async () => { await b.close() })
    const unit = 'amb-moved'
    const onA = await device(tg, unit, await tg.addDevice(unit))
    const onB = await device(b, unit, await b.addDevice(unit))
    const handed = { a: [] as number[], b: [] as number[] }
    const la = (f: Frame): void => { if (f.unitId === unit) handed.a.push(Number(f.seq)) }
    const lb = (f: Frame): void => { if (f.unitId === unit) handed.b.push(Number(f.seq)) }
    tg.gw.ingest.on('validated', la)
    b.gw.ingest.on('validated', lb)
    onTestFinished(() => { tg.gw.ingest.off('validated', la); b.gw.ingest.off('validated', lb) })

    await onA.publishAsync(`units/${unit}/telemetry`, frame(unit, 1, 91), { qos: 1 })
    await onA.publishAsync(`units/${unit}/telemetry`, frame(unit, 1, 91), { qos: 1, dup: true })
    await onB.publishAsync(`units/${unit}/telemetry`, frame(unit, 1, 91), { qos: 1, dup: true })
    expect(handed).toEqual({ a: [1], b: [1] })
  }, 120_000)
})

describe('a restart between the two copies', () => {
  it('the resend is streamed again, once, to the streams opened after the restart: the same record as before it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'ambulink-live-resend-'))
    const gateways: TestGateway[] = []
    // One cleanup, in order: the gateways stop before their DATA_DIR goes.
    onTestFinished(async () => {
      for (const g of gateways.reverse()) await g.close()
      await rm(dataDir, { recursive: true, force: true })
    })
    const before = await startTestGateway({}, { dataDir })
    gateways.push(before)
    const unit = 'amb-restart'
    const token = await before.addDevice(unit)
    await before.addUser('dr-restart', 'researcher')
    const permit = await grant(before, 'dr-restart')

    const live1 = await stream(before, permit)
    const dev1 = await device(before, unit, token)
    await dev1.publishAsync(`units/${unit}/telemetry`, frame(unit, 1, 101), { qos: 1 })
    await live1.waitFor(() => rates(live1).includes(101), 20_000)
    // The gateway stops (the device's PUBACK is lost with it, say): the stream is closed as going away.
    await before.stop()
    expect(await live1.closed).toBe(1001)

    const after = await startTestGateway({}, { dataDir })
    gateways.push(after)
    const live2 = await stream(after, permit)
    const dev2 = await device(after, unit, token)
    await dev2.publishAsync(`units/${unit}/telemetry`, frame(unit, 1, 101), { qos: 1, dup: true })
    await dev2.publishAsync(`units/${unit}/telemetry`, frame(unit, 2, 102), { qos: 1 })
    await live2.waitFor(() => rates(live2).includes(102), 20_000)

    expect(rates(live1)).toEqual([101])
    expect(rates(live2)).toEqual([101, 102])
    // The same subject, time and value: a client keeping each subject's last records can drop it.
    expect(live2.messages[0]).toBe(live1.messages[0])
  }, 180_000)
})
