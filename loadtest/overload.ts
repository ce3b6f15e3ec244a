/**
 * Overload: is the gateway's memory bounded when devices offer twice what it can take?
 *
 * 1. Saturation (closed loop): `clients` devices keep `window` QoS 1 frames in flight each for
 *    `saturateS`; the acknowledged rate is the sustainable rate C.
 * 2. Overload (open loop): the same devices offer 2·C for `overloadS` seconds, each keeping up to
 *    `maxOutstanding` unacknowledged frames (the device's store-and-forward; more is shed and
 *    counted). The gateway (a child process, `ambulink serve`) must push back — PUBACKs come later,
 *    it stops reading sockets while the spool's fsync is pending — instead of buffering: its RSS
 *    is sampled every second.
 * 3. Everything acknowledged must then be in InfluxDB exactly once.
 *
 *   node --import tsx loadtest/overload.ts [--clients 16] [--saturate-s 10] [--overload-s 60]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { startGatewayProcess } from '../testkit/gateway-process.js'
import { createDatabase, influxCount, startInfluxDB } from '../testkit/influxdb.js'
import { encodeFrame } from '../decoders/index.js'
import { metricValue, numberFlags, percentiles, registerUnits, scrape, sleep, waitSpoolDrained } from '../testkit/fault-harness.js'

/** Device time base: 6 days back, so up to ~2M frames of 250 ms stay within MAX_PAST_AGE_MS. */
const BASE_MS = Math.floor(Date.now() / 1000) * 1000 - 6 * 86_400_000

/**
 * Frame = header fields (unit, boot, seq, time) + a body encoded once: protobuf fields may come in
 * any order and concatenated encodings are one message. Encoding a whole 12-lead frame costs
 * ~0.6 ms, which would make the load generator, not the gateway, the bottleneck.
 */
const BODY = Buffer.from(encodeFrame({
  encounterId: 'enc-ovl',
  numerics: [{ sign: 1, value: 72, offsetMs: 0 }, { sign: 3, value: 97, offsetMs: 0 }],
  position: { latitude: 45.75, longitude: 4.85, speedMps: 10, headingDeg: 90, offsetMs: 0 },
  waveforms: Array.from({ length: 12 }, (_, l) => ({ lead: l + 1, sampleRateHz: 500, microvoltsPerLsb: 1, offsetMs: 0, samples: Array.from({ length: 125 }, (_, i) => ((i * 7 + l * 13) % 400) - 200) }))
}))

function frame (unit: string, seq: number): Buffer {
  return Buffer.concat([encodeFrame({ unitId: unit, bootId: 'boot-1', seq, capturedAtMs: BASE_MS + seq * 250 }), BODY])
}

class Device {
  nextSeq = 1
  inFlight = 0
  acked = 0
  shed = 0
  readonly latencies: number[] = []
  constructor (readonly unit: string, readonly client: MqttClient) {}

  publish (onAck?: () => void): void {
    const seq = this.nextSeq++
    const t0 = performance.now()
    this.inFlight++
    const bytes = frame(this.unit, seq)
    this.client.publish(`units/${this.unit}/telemetry`, bytes, { qos: 1 }, err => {
      this.inFlight--
      if (err !== undefined && err !== null) return
      this.acked++
      if (this.latencies.length < 200_000) this.latencies.push(performance.now() - t0)
      onAck?.()
    })
  }
}

async function main (): Promise<void> {
  const f = numberFlags(process.argv.slice(2), { clients: 16, saturateS: 10, overloadS: 60, window: 32, maxOutstanding: 2000 })
  const influx = await startInfluxDB()
  const root = await mkdtemp(join(tmpdir(), 'ambulink-overload-'))
  const dataDir = join(root, 'data')
  await createDatabase(influx.url, 'overload')
  const devices: Device[] = []
  let gw: Awaited<ReturnType<typeof startGatewayProcess>> | null = null
  try {
    const units = await registerUnits(dataDir, 'ovl', f.clients)
    const g = gw = await startGatewayProcess({ dataDir, env: { INFLUX_URL: influx.url, INFLUX_API: 'v1', INFLUX_DB: 'overload' } })
    const httpUrl = `http://127.0.0.1:${g.ports.http}`
    for (const u of units) {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${g.ports.mqtt}`, { username: u.unitId, password: u.token, clientId: u.unitId, clean: false, reconnectPeriod: 500 })
      devices.push(new Device(u.unitId, c))
    }
    const rssIdle = await g.rss()

    // 1. Saturation: closed loop, `window` in flight per device.
    let saturating = true
    const refill = (d: Device): void => { while (saturating && d.inFlight < f.window) d.publish(() => { refill(d) }) }
    const acked0 = devices.reduce((a, d) => a + d.acked, 0)
    devices.forEach(refill)
    await sleep(f.saturateS * 1000)
    saturating = false
    const sustainable = (devices.reduce((a, d) => a + d.acked, 0) - acked0) / f.saturateS
    const rssSaturated = await g.rss()
    while (devices.some(d => d.inFlight > 0)) await sleep(50)

    // 2. Overload: open loop at 2·C.
    const offeredPerSec = 2 * sustainable
    const rss: number[] = []
    const pending: number[] = []
    let offered = 0
    const ackedBefore = devices.reduce((a, d) => a + d.acked, 0)
    for (const d of devices) d.latencies.length = 0
    const t0 = Date.now()
    // Open loop with catch-up: whatever the timer's lateness, frames due by now are offered.
    const tick = setInterval(() => {
      const due = Math.floor(offeredPerSec * (Date.now() - t0) / 1000) - offered
      for (let i = 0; i < due; i++) {
        const d = devices[(offered + i) % devices.length]!
        if (d.inFlight >= f.maxOutstanding) d.shed++
        else d.publish()
      }
      offered += Math.max(0, due)
    }, 20)
    while (Date.now() - t0 < f.overloadS * 1000) {
      await sleep(1000)
      rss.push(await g.rss())
      if (rss.length % 10 === 0) process.stderr.write(`overload ${rss.length} s: rss ${Math.round(rss[rss.length - 1]! / 1048576)} MiB\n`)
      pending.push(metricValue(await scrape(httpUrl).catch(() => ''), 'ambulink_spool_pending_bytes') ?? 0)
    }
    clearInterval(tick)
    const ackedOverload = devices.reduce((a, d) => a + d.acked, 0) - ackedBefore
    const latency = percentiles(devices.flatMap(d => d.latencies))

    // 3. Drain and check: every acknowledged frame stored once.
    const drainT0 = Date.now()
    while (devices.some(d => d.inFlight > 0) && Date.now() - drainT0 < 180_000) await sleep(100)
    const spoolDrainMs = await waitSpoolDrained(httpUrl, 900_000, m => { process.stderr.write(m + '\n') })
    let lost = 0
    let extra = 0
    for (const d of devices) {
      const stored = await influxCount(influx.url, 'overload', 'ecg', 'ii', `"unit" = '${d.unit}'`)
      lost += Math.max(0, d.acked * 125 - stored)
      extra += Math.max(0, stored - d.acked * 125)
    }
    const MiB = (b: number): number => Math.round(b / 1048576)
    const sorted = [...rss].sort((a, b) => a - b)
    process.stdout.write(JSON.stringify({
      scenario: 'overload',
      clients: f.clients,
      sustainableFramesPerSec: Math.round(sustainable),
      offeredFramesPerSec: Math.round(offeredPerSec),
      offeredFramesPerSecAchieved: Math.round(offered / f.overloadS),
      ackedFramesPerSecUnderOverload: Math.round(ackedOverload / f.overloadS),
      shedAtDevices: devices.reduce((a, d) => a + d.shed, 0),
      ackLatencyMsUnderOverload: latency,
      rssMiB: { idle: MiB(rssIdle), saturated: MiB(rssSaturated), overloadMin: MiB(sorted[0] ?? 0), overloadP50: MiB(sorted[sorted.length >> 1] ?? 0), overloadMax: MiB(sorted[sorted.length - 1] ?? 0), overloadLast: MiB(rss[rss.length - 1] ?? 0) },
      rssSeriesMiB: rss.map(MiB),
      spoolPendingMaxMiB: MiB(Math.max(0, ...pending)),
      drain: { devicesMs: Date.now() - drainT0 - spoolDrainMs, spoolMs: spoolDrainMs },
      framesAcked: devices.reduce((a, d) => a + d.acked, 0),
      lostPoints: lost,
      extraPoints: extra
    }, null, 2) + '\n')
    process.exitCode = lost === 0 && extra === 0 ? 0 : 1
  } finally {
    for (const d of devices) d.client.end(true)
    await gw?.stop()
    await influx.stop()
    await rm(root, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
