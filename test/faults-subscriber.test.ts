// Slow and frozen subscribers (issue #3, item 3). A clinician subscribed to alerts who stops
// reading is cut off and never holds up device ingest or other subscribers; the aedes 1.2.0 / mqemitter
// "Maximum call stack size exceeded" crash (a subscriber holding a large QoS 0 backlog
// disconnects) is reproduced with plain aedes and shown not to take the gateway down.
import { createServer, type AddressInfo, type Server } from 'node:net'
import { join, resolve } from 'node:path'
import type { AedesPublishPacket } from 'aedes'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { metricValue, registerUnits } from '../testkit/fault-harness.js'
import { Fleet } from '../simulator/index.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { runCommand, waitFor } from '../testkit/proc.js'

const ROOT = resolve(import.meta.dirname, '..')

/** Messages queued inside aedes' mqemitter (`broker.mq`, not in aedes' typings). */
function mqLength (tg: TestGateway): number {
  return (tg.gw.broker as unknown as { mq: { length: number } }).mq.length
}

function alert (unit: string, bytes: number): AedesPublishPacket {
  return { cmd: 'publish', topic: `alerts/${unit}`, payload: Buffer.alloc(bytes, 0x61), qos: 0, retain: false, dup: false } as AedesPublishPacket
}

describe('aedes 1.2.0 stack overflow, reproduced without Ambulink', () => {
  it('plain aedes dies with "Maximum call stack size exceeded" when a frozen QoS 0 subscriber with a backlog goes', async () => {
    const r = await runCommand(process.execPath, ['--import', 'tsx', join(ROOT, 'loadtest/mqemitter-overflow.ts'), '--queued', '30000'], { cwd: ROOT, timeoutMs: 30_000 })
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/Maximum call stack size exceeded/)
    expect(r.stdout).not.toMatch(/survived/)
  }, 40_000)
})

describe('slow subscribers against the gateway', () => {
  let tg: TestGateway
  beforeAll(async () => { tg = await startTestGateway({ logLevel: 'info' }) })
  afterAll(async () => { await tg?.close() })

  it('cuts a frozen clinician while devices stream on with nothing lost; a reading clinician receives every alert', async () => {
    const units = await registerUnits(tg.dataDir, 'sub', 2)
    const fleet = new Fleet({ url: tg.mqttUrl, units, frameMs: 100, leads: 12, clean: true })
    onTestFinished(() => fleet.close())
    await fleet.start()
    const frozenPw = await tg.addUser('frozen-doc', 'clinician')
    const livePw = await tg.addUser('live-doc', 'clinician')
    const frozen = await mqtt.connectAsync(tg.mqttUrl, { username: 'frozen-doc', password: frozenPw, clientId: 'frozen-doc', reconnectPeriod: 0 })
    onTestFinished(async () => { frozen.stream.destroy(); await frozen.endAsync(true) })
    const live = await mqtt.connectAsync(tg.mqttUrl, { username: 'live-doc', password: livePw, clientId: 'live-doc', reconnectPeriod: 0 })
    onTestFinished(async () => { await live.endAsync(true) })
    await frozen.subscribeAsync('alerts/#', { qos: 0 })
    await live.subscribeAsync('alerts/#', { qos: 0 })
    let liveGot = 0
    live.on('message', () => { liveGot++ })
    // Seen from the gateway: the frozen client's own socket never reads the FIN.
    let frozenCut = false
    const onGone = (c: { id: string }): void => { if (c.id === 'frozen-doc') frozenCut = true }
    tg.gw.broker.on('clientDisconnect', onGone)
    onTestFinished(() => { tg.gw.broker.off('clientDisconnect', onGone) })

    frozen.stream.pause()
    const acked0 = fleet.stats().framesAcked
    // An alert storm: bursts of 100 × 2 KiB, the next one as soon as the reading clinician has
    // the last (as fast as a reader takes them), until the frozen one is cut and the devices
    // have been acknowledged 40 more frames (2 s of the fleet's stream). Had aedes waited on the
    // frozen socket, deliveries to the reader would stop too and this would time out.
    let bursts = 0
    let maxQueue = 0
    const deadline = Date.now() + 60_000
    while (!(frozenCut && fleet.stats().framesAcked - acked0 >= 40)) {
      if (Date.now() > deadline) throw new Error(`after ${bursts} bursts: frozen clinician cut ${frozenCut}, ${fleet.stats().framesAcked - acked0} frames acknowledged`)
      for (let i = 0; i < 100; i++) tg.gw.broker.publish(alert('sub-01', 2048), () => {})
      bursts++
      maxQueue = Math.max(maxQueue, mqLength(tg))
      await waitFor(async () => liveGot >= bursts * 100, { timeoutMs: 10_000, intervalMs: 1, what: `burst ${bursts} to reach the reading clinician` })
    }

    // Cut by the outgoing bound (the packet guard's 1 MiB unread), not by aedes' drainTimeout.
    expect(metricValue(await tg.gw.metrics.registry.metrics(), 'ambulink_mqtt_refused_total', 'reason="AMB_ERR_SUBSCRIBER_TOO_SLOW"')).toBe(1)
    expect(tg.logs()).toMatch(/not reading: disconnected/)
    // The reader received every alert of every burst, exactly once.
    expect(liveGot).toBe(bursts * 100)
    // mqemitter only ever held about the storm's own burst (100; aedes' own $SYS messages may
    // join it), never a stalled backlog: nothing waits on the frozen socket, so it empties as
    // soon as the storm stops.
    expect(maxQueue).toBeLessThanOrEqual(200)
    await waitFor(async () => mqLength(tg) === 0, { timeoutMs: 10_000, what: 'mqemitter to empty' })
    // Devices: acknowledged throughout, and nothing they generated is lost.
    const s = await fleet.stop({ drain: true, timeoutMs: 10_000 })
    expect(s.pending).toBe(0)
    expect(s.dropped).toBe(0)
    expect(s.framesAcked).toBe(s.framesGenerated)
    // How fast the cut comes and what devices wait meanwhile: loadtest/frozen-subscriber.ts.
  }, 90_000)

  it('survives the reproduction scenario: a frozen subscriber outside the guard disconnects with 30,000 messages queued', async () => {
    // Handed to aedes directly (no packet guard), so mqemitter's queue does form.
    const bare: Server = createServer(sock => { tg.gw.broker.handle(sock) })
    await new Promise<void>(resolve => bare.listen(0, '127.0.0.1', resolve))
    try {
      const pw = await tg.addUser('frozen-bare', 'clinician')
      const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${(bare.address() as AddressInfo).port}`, { username: 'frozen-bare', password: pw, clientId: 'frozen-bare', reconnectPeriod: 0 })
      await sub.subscribeAsync('alerts/#', { qos: 0 })
      sub.stream.pause()
      const mq = { get length () { return mqLength(tg) } }
      for (let i = 0; i < 3000; i++) tg.gw.broker.publish(alert('sub-02', 4096), () => {})
      for (let i = 0; i < 30_000; i++) tg.gw.broker.publish({ ...alert('sub-02', 16), topic: 'units/sub-02/telemetry' }, () => {})
      expect(mq.length).toBeGreaterThan(25_000)
      sub.stream.destroy()
      // Without the gateway's '#' listener this overflows the stack and kills the test worker.
      await waitFor(async () => mq.length === 0, { timeoutMs: 20_000, what: 'mqemitter queue to drain' })
      expect((await fetch(`${tg.httpUrl}/healthz`)).status).toBe(200)
    } finally {
      await new Promise(resolve => bare.close(resolve))
    }
  }, 40_000)
})
