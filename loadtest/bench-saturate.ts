/**
 * The saturating load generator, used alike against the gateway and against Mosquitto so the
 * broker comparison differs only in the broker.
 *
 * Definition ("saturated, fixed window"): each of `units` MQTT clients (one TCP connection
 * each, QoS 1, clean session) keeps exactly `window` frames in flight: every PUBACK releases the
 * next frame at once. There is no pacing; the rate is whatever the broker's PUBACKs allow.
 * Throughput = PUBACKs received per second over the run, after `warmupMs`. Frames come from
 * StampedFrames (real ECG content, new identity per frame, ~2 µs each), so both brokers receive
 * byte-identical traffic shapes. The clients are raw-publisher.ts by default (a few µs per
 * message) or mqtt.js (`generator: 'mqttjs'`, ~100 µs per message: then the generator is what
 * saturates first on a 2-core machine).
 *
 * Bounded: stops sending after `durationMs` (or when a unit runs out of device time), waits at
 * most `drainTimeoutMs` for the frames in flight, then disconnects.
 */
import { StampedFrames } from './bench-frames.js'
import { processCpuSeconds } from './bench-cpu.js'
import type { SourceFrame } from '../simulator/frame-source.js'
import { LatencyWindow, type LatencySummary } from '../simulator/latency.js'
import { RawPublisher } from './raw-publisher.js'
import type { UnitCounters } from '../simulator/unit-counters.js'
import { UnitLink } from '../simulator/unit-link.js'
import type { BenchUnitReport } from '../testkit/stored.js'

export interface SaturateOptions {
  /** Broker URLs; unit i connects to urls[i % urls.length]. */
  urls: readonly string[]
  units: readonly string[]
  token: string
  /** Frames in flight per client. */
  window: number
  durationMs: number
  /** Excluded from the rate: connections ramping up, JIT warming. */
  warmupMs: number
  /** How far back device time starts (bounds the frames each unit may send). */
  backdateMs: number
  drainTimeoutMs?: number
  /** Stop a unit after this many frames (0 = only the time bound). */
  maxFramesPerUnit?: number
  label: string
  progress: (line: string) => void
  /** Processes whose CPU time is measured over the same window as the rate (the brokers). */
  cpuPids?: readonly number[]
  /** MQTT client: 'raw' (default) or 'mqttjs'. */
  generator?: 'raw' | 'mqttjs'
}

/** What a saturating client needs from its MQTT connection (RawPublisher or UnitLink). */
interface SatLink {
  readonly unitId: string
  readonly counters: UnitCounters
  readonly pending: number
  open: () => Promise<void>
  send: (frame: SourceFrame) => void
  whenDrained: () => Promise<void>
  close: () => Promise<void>
}

function makeLink (o: SaturateOptions, i: number, acked: (ms: number) => void): SatLink {
  const unitId = o.units[i]!
  const url = new URL(o.urls[i % o.urls.length]!)
  if (o.generator !== 'mqttjs') {
    return new RawPublisher({ host: url.hostname, port: Number(url.port), unitId, token: o.token, window: o.window, acked })
  }
  const link = new UnitLink(unitId, o.token, {
    url: url.href,
    qos: 1,
    clean: true,
    inflightWindow: o.window,
    maxQueuedFrames: 4 * o.window,
    reconnectPeriodMs: 1000,
    connectTimeoutMs: 10_000,
    keepaliveS: 30,
    statusTimeoutMs: 2000,
    mqttOptions: {},
    recordAckedFrames: false
  }, { acked, log: msg => { o.progress(`${o.label}: ${msg}`) } })
  return {
    unitId,
    counters: link.counters,
    get pending () { return link.queue.pending },
    open: () => link.open(),
    send: f => { link.send(f) },
    whenDrained: () => link.whenDrained(),
    close: () => link.close()
  }
}

export interface SaturateResult {
  label: string
  units: number
  window: number
  measured_s: number
  frames_acked: number
  frames_per_s: number
  ecg_points_per_s: number
  mbytes_per_s: number
  /** Payload bytes of every acknowledged frame, warm-up included (what the broker had to keep). */
  bytes_acked_total: number
  ack_latency_ms: LatencySummary
  errors: number
  /** CPU µs per acknowledged frame over the measured window: the cpuPids together, and this process (the generator). */
  broker_cpu_us_per_frame: number | null
  generator_cpu_us_per_frame: number
  /** Per unit, for counting what reached InfluxDB. */
  reports: BenchUnitReport[]
  /** Wall clock (Date.now) when sending started and stopped. */
  startedAt: number
  stoppedAt: number
}

const CONNECTS_PER_SLICE = 16

export async function saturate (o: SaturateOptions): Promise<SaturateResult> {
  const latency = new LatencyWindow(16_384)
  const frames = o.units.map((u, i) => new StampedFrames(u, i, o.backdateMs))
  let stopping = false
  let acked = 0
  let ackedBytes = 0
  let ackedEcg = 0
  const links: SatLink[] = []
  const limit = o.maxFramesPerUnit !== undefined && o.maxFramesPerUnit > 0 ? o.maxFramesPerUnit : Infinity
  const done = (src: StampedFrames): boolean => src.exhausted || src.produced >= limit
  const feed = (i: number): void => {
    const link = links[i]!
    const src = frames[i]!
    // Two windows queued: the next frame is ready the moment a PUBACK frees a slot.
    while (!stopping && !done(src) && link.pending < 2 * o.window) link.send(src.next())
  }
  for (let i = 0; i < o.units.length; i++) {
    links.push(makeLink(o, i, ms => {
      latency.record(ms)
      acked++
      feed(i)
    }))
  }
  try {
    const opening: Array<Promise<void>> = []
    for (let i = 0; i < links.length; i++) {
      const p = links[i]!.open()
      p.catch(() => {})
      opening.push(p)
      if ((i + 1) % CONNECTS_PER_SLICE === 0) await new Promise<void>(resolve => setImmediate(resolve))
    }
    await Promise.all(opening)

    const startedAt = Date.now()
    const t0 = performance.now()
    for (let i = 0; i < links.length; i++) feed(i)
    const cpuNow = async (): Promise<{ broker: number, self: number }> => {
      const c = process.cpuUsage()
      const broker = (await Promise.all((o.cpuPids ?? []).map(processCpuSeconds))).reduce((a, b) => a + b, 0)
      return { broker, self: (c.user + c.system) / 1e6 }
    }
    let cpuAtWarm = await cpuNow()
    let warm = { at: t0, acked: 0, bytes: 0, ecg: 0 }
    let warmed = o.warmupMs <= 0
    let last = { at: t0, acked: 0 }
    await new Promise<void>(resolve => {
      const tick = setInterval(() => {
        const now = performance.now()
        // Rates from the counters the links keep (bytes and ECG points per acked frame).
        ackedBytes = 0
        ackedEcg = 0
        for (const l of links) {
          ackedBytes += l.counters.bytesAcked
          ackedEcg += l.counters.ecgPointsAcked
        }
        if (!warmed && now - t0 >= o.warmupMs) {
          warmed = true
          warm = { at: now, acked, bytes: ackedBytes, ecg: ackedEcg }
          void cpuNow().then(c => { cpuAtWarm = c })
        }
        const rate = (acked - last.acked) * 1000 / (now - last.at)
        last = { at: now, acked }
        const l = latency.summary()
        o.progress(`${o.label}: ${((now - t0) / 1000).toFixed(0)} s, ${Math.round(rate)} frames/s, ack p50 ${l.p50} ms p99 ${l.p99} ms`)
        if (now - t0 >= o.durationMs || frames.every((f, i) => done(f) && links[i]!.pending === 0)) {
          clearInterval(tick)
          resolve()
        }
      }, 1000)
    })
    stopping = true
    const stoppedAt = Date.now()
    const end = performance.now()
    const cpuAtEnd = await cpuNow()
    ackedBytes = 0
    ackedEcg = 0
    for (const l of links) {
      ackedBytes += l.counters.bytesAcked
      ackedEcg += l.counters.ecgPointsAcked
    }
    // A run shorter than its warm-up is measured whole (CPU included, from the start).
    if (end - warm.at < 500) warm = { at: t0, acked: 0, bytes: 0, ecg: 0 }
    const seconds = Math.max(1e-3, (end - warm.at) / 1000)
    const result: SaturateResult = {
      label: o.label,
      units: o.units.length,
      window: o.window,
      measured_s: round(seconds, 2),
      frames_acked: acked - warm.acked,
      frames_per_s: Math.round((acked - warm.acked) / seconds),
      ecg_points_per_s: Math.round((ackedEcg - warm.ecg) / seconds),
      mbytes_per_s: round((ackedBytes - warm.bytes) / seconds / 1e6, 2),
      bytes_acked_total: ackedBytes,
      ack_latency_ms: latency.summary(),
      errors: links.reduce((a, l) => a + l.counters.errors, 0),
      broker_cpu_us_per_frame: o.cpuPids === undefined ? null : Math.round((cpuAtEnd.broker - cpuAtWarm.broker) * 1e6 / Math.max(1, acked - warm.acked)),
      generator_cpu_us_per_frame: Math.round((cpuAtEnd.self - cpuAtWarm.self) * 1e6 / Math.max(1, acked - warm.acked)),
      reports: [],
      startedAt,
      stoppedAt
    }
    // Frames already in flight still count for storage (they were acknowledged), not for the rate.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(links.map(l => l.whenDrained())),
      new Promise<void>(resolve => { timer = setTimeout(resolve, o.drainTimeoutMs ?? 30_000) })
    ])
    clearTimeout(timer)
    result.bytes_acked_total = links.reduce((a, l) => a + l.counters.bytesAcked, 0)
    result.reports = links.map((l, i) => ({
      unitId: l.unitId,
      startMs: frames[i]!.startMs,
      frameMs: 250,
      acked: l.counters.acked,
      ackedSeqRanges: l.counters.ackedSeqRanges(),
      ecgPointsAcked: l.counters.ecgPointsAcked
    }))
    return result
  } finally {
    await Promise.all(links.map(l => l.close()))
  }
}

function round (x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
