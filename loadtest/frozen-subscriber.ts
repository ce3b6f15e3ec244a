/**
 * How fast a frozen MQTT subscriber is cut, and what devices wait meanwhile (the timings that
 * `test/faults-subscriber.test.ts` leaves out: the test proves by counts that nothing is lost and
 * a reading clinician gets everything; this measures). A gateway in-process, a fleet streaming
 * 12-lead frames, two clinicians on `alerts/#`: one stops reading its socket, one reads. An alert
 * storm (`--burst` × `--bytes` every `--every-ms`, for `--storm-ms`) is published on the broker.
 * Prints JSON on stdout:
 * - `cutAfterMs`: from the freeze until the gateway disconnects the frozen clinician (it must be
 *   far below aedes' 10 s drainTimeout: the packet guard cuts at 1 MiB unread);
 * - `deviceAckLatencyMs`: the fleet's PUBACK latency over the storm (p50, p99, max);
 * - `maxMqemitterQueue`: the most messages waiting in aedes' mqemitter (a burst, never a backlog).
 *
 *   node --import tsx loadtest/frozen-subscriber.ts [--units 2] [--storm-ms 4000] [--burst 100] [--bytes 2048] [--every-ms 20]
 */
import type { AedesPublishPacket } from 'aedes'
import mqtt from 'mqtt'
import { Fleet } from '../simulator/index.js'
import { metricValue, numberFlags, registerUnits, scrape, sleep } from '../testkit/fault-harness.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'

export interface FrozenSubscriberOptions {
  units: number
  stormMs: number
  burst: number
  bytes: number
  everyMs: number
}

export interface FrozenSubscriberResult {
  scenario: 'frozen-subscriber'
  options: FrozenSubscriberOptions
  /** Freeze → the gateway's clientDisconnect of the frozen clinician; null if not cut within the storm + 5 s. */
  cutAfterMs: number | null
  cutsCounted: number
  deviceAckLatencyMs: { p50: number, p99: number, max: number, count: number }
  framesAckedDuringStorm: number
  maxMqemitterQueue: number
  liveReceived: number
  alertsPublished: number
}

function mqLength (tg: TestGateway): number {
  return (tg.gw.broker as unknown as { mq: { length: number } }).mq.length
}

export async function runFrozenSubscriber (o: FrozenSubscriberOptions): Promise<FrozenSubscriberResult> {
  const tg = await startTestGateway({ logLevel: 'warn' })
  let fleet: Fleet | null = null
  const clients: mqtt.MqttClient[] = []
  try {
    const units = await registerUnits(tg.dataDir, 'frz', o.units)
    fleet = new Fleet({ url: tg.mqttUrl, units, frameMs: 100, leads: 12, clean: true })
    await fleet.start()
    const frozenPw = await tg.addUser('frozen-doc', 'clinician')
    const livePw = await tg.addUser('live-doc', 'clinician')
    const frozen = await mqtt.connectAsync(tg.mqttUrl, { username: 'frozen-doc', password: frozenPw, clientId: 'frozen-doc', reconnectPeriod: 0 })
    clients.push(frozen)
    const live = await mqtt.connectAsync(tg.mqttUrl, { username: 'live-doc', password: livePw, clientId: 'live-doc', reconnectPeriod: 0 })
    clients.push(live)
    await frozen.subscribeAsync('alerts/#', { qos: 0 })
    await live.subscribeAsync('alerts/#', { qos: 0 })
    let liveReceived = 0
    live.on('message', () => { liveReceived++ })
    let cutAt: number | null = null
    tg.gw.broker.on('clientDisconnect', (c: { id: string }) => { if (c.id === 'frozen-doc' && cutAt === null) cutAt = performance.now() })

    frozen.stream.pause()
    const t0 = performance.now()
    const acked0 = fleet.stats().framesAcked
    const payload = Buffer.alloc(o.bytes, 0x61)
    let maxQueue = 0
    let published = 0
    while (performance.now() - t0 < o.stormMs) {
      for (let i = 0; i < o.burst; i++) {
        tg.gw.broker.publish({ cmd: 'publish', topic: 'alerts/frz-01', payload, qos: 0, retain: false, dup: false } as AedesPublishPacket, () => {})
      }
      published += o.burst
      maxQueue = Math.max(maxQueue, mqLength(tg))
      await sleep(o.everyMs)
    }
    const stormEnd = performance.now()
    while (cutAt === null && performance.now() - stormEnd < 5000) await sleep(20)
    const s = fleet.stats()
    const text = await scrape(tg.httpUrl)
    return {
      scenario: 'frozen-subscriber',
      options: o,
      cutAfterMs: cutAt === null ? null : Math.round(cutAt - t0),
      cutsCounted: metricValue(text, 'ambulink_mqtt_refused_total', 'reason="AMB_ERR_SUBSCRIBER_TOO_SLOW"') ?? 0,
      deviceAckLatencyMs: { p50: s.ackLatencyMs.p50, p99: s.ackLatencyMs.p99, max: s.ackLatencyMs.max, count: s.ackLatencyMs.count },
      framesAckedDuringStorm: s.framesAcked - acked0,
      maxMqemitterQueue: maxQueue,
      liveReceived,
      alertsPublished: published
    }
  } finally {
    for (const c of clients) {
      c.stream.destroy()
      await c.endAsync(true)
    }
    await fleet?.stop()
    await tg.close()
  }
}

async function main (): Promise<void> {
  const f = numberFlags(process.argv.slice(2), { units: 2, stormMs: 4000, burst: 100, bytes: 2048, everyMs: 20 })
  const r = await runFrozenSubscriber(f)
  process.stdout.write(JSON.stringify(r, null, 2) + '\n')
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
