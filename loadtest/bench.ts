/**
 * `ambulink bench`: the gateway against its references, side by side in one run on this
 * machine (2-core, noisy: the ratios are the figures to read, absolutes come with the load
 * average at the time). Prints progress on stderr and one JSON object on stdout.
 *
 * Phases (all on 127.0.0.1, every loop bounded by the options in bench-options.ts). Each
 * figure is measured with nothing else running, as its reference is:
 * 1. Broker (bench-saturate.ts): the gateways start embedded (no INFLUX_URL: decode, validate,
 *    spool + fsync, alert engine, live hub, but no InfluxDB work on the machine) and clients
 *    publish as fast as PUBACKs allow, `window` frames in flight each: PUBACKs/s. With
 *    --gateways N ≥ 2, again across all N processes (Redis cluster): the scale-out ratio.
 * 2. Sink: gateway 1 is restarted with INFLUX_URL and drains the spooled backlog alone: points
 *    written per second (its own counter, from the first look after the restart until the
 *    spool is empty, or over --sink-seconds). Then every acknowledged frame is counted in
 *    InfluxDB (lost), or, in the quick run, the rest of the backlog is discarded.
 *    With --store victoriametrics|both, the same backlog (copied before) is drained into a
 *    VictoriaMetrics through the v2 write API too, and its raw reference measured (`stores`).
 * 3. The sink's reference, next to it: the same line protocol posted straight to InfluxDB
 *    (references.ts), a fresh one with the same configuration, as the sink's was fresh.
 * 4. Real time (bench-realtime.ts): N units stream as ambulances do; lost frames,
 *    publish→stored, publish→alert, gateway RSS. The full run repeats it with more units
 *    (search) until a step is not sustained, then bisects.
 *    Catch-up (goal 6): the same stream with InfluxDB killed for --outage seconds; catch-up time
 *    after its return, and publish → alert meanwhile. The quick run's one step goes on into it
 *    after its --duration seconds; the full run has a step of its own (--catchup-units).
 * 5. The broker's references: the same saturating generator against Mosquitto, and against
 *    bare aedes (aedes-bare.ts: the gateway's broker library with an accept-all authenticate
 *    and nothing else, in a child process like the gateway).
 */
import { readdir, rm, stat } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { startBenchEnv, BENCH_DB, type BenchEnv } from './bench-env.js'
import { unitIds } from './bench-credentials.js'
import { BenchUsageError, BENCH_USAGE, parseBenchArgs, type BenchOptions } from './bench-options.js'
import { runRealtime, type RealtimeResult } from './bench-realtime.js'
import { startClusterView } from './bench-cluster-view.js'
import { saturate, type SaturateOptions, type SaturateResult } from './bench-saturate.js'
import { processCpuSeconds, processRssBytes } from './bench-cpu.js'
import { countLost, readMetrics, waitForDrain } from '../testkit/stored.js'
import { aedesReference, mosquittoReference, rawInfluxIngest, type RawIngestResult } from './references.js'
import { startInfluxDB } from '../testkit/influxdb.js'
import { startVictoriaMetrics } from '../testkit/victoria.js'

export interface GatewaySaturation {
  gateways: number
  /** PUBACKs from the gateways running embedded (no InfluxDB work during the run). */
  publish: Omit<SaturateResult, 'reports'>
  /** Acknowledged frames missing from InfluxDB; null when the backlog was discarded (quick). */
  lost: number | null
}

export interface SinkDrain {
  /** Spooled bytes gateway 1 had to write when it was restarted with INFLUX_URL. */
  backlog_mb: number
  backlog_bytes: number
  /** Whether the whole backlog was written (else the rate is over `seconds` of it). */
  complete: boolean
  seconds: number
  points: number
  /** Every point the restarted gateway wrote (a small backlog may drain before the first look). */
  points_since_restart: number
  points_per_s: number
  /** points_per_s × the ECG share of the points. */
  ecg_points_per_s: number
  /** CPU per point written: the gateway (spool read, gzip, HTTP) and InfluxDB, µs. */
  gateway_cpu_us_per_point: number
  /** The store's (InfluxDB's or VictoriaMetrics') CPU per point. */
  influx_cpu_us_per_point: number
  store: StoreName
  store_rss_mb: number
}

type StoreName = 'influxdb' | 'victoriametrics'

export interface StoreFigures {
  /** ECG points/s the gateway's sink wrote draining the saturation backlog, and the raw reference's. */
  sink_ecg_points_per_s: number
  raw_ecg_points_per_s: number | null
  sink_ratio: number | null
  /** CPU per point while draining: the gateway, and the store itself; the store's with raw writes. */
  gateway_cpu_us_per_point: number
  store_cpu_us_per_point: number
  raw_store_cpu_us_per_point: number | null
  cpu_based_sink_ratio: number | null
  /** The store's resident memory once the drain was measured. */
  store_rss_mb: number
  sink: SinkDrain
  raw: RawIngestResult | null
}

type MosquittoResult = Omit<Awaited<ReturnType<typeof mosquittoReference>>, 'reports'>
type AedesResult = Omit<SaturateResult, 'reports'>

export interface BenchReport {
  benchmark: 'ambulink'
  mode: 'quick' | 'full'
  node: string
  cpus: number
  load_average: { start: number[], end: number[], per_phase: Record<string, number[]> }
  units: number
  /** Goal 1's own test: the most units sustained with publish→stored p99 ≤ 1 s (null: none). */
  units_stored_p99_le_1s: number | null
  frames_per_s: number
  ecg_points_per_s: number
  lost: number | null
  publish_to_stored_p50_ms: number
  publish_to_stored_p99_ms: number
  publish_to_alert_p50_ms: number
  publish_to_alert_p99_ms: number
  /** The same events' p95, slowest, and how many there were (a p99 of fewer than 100 is their maximum). */
  publish_to_alert_p95_ms: number
  publish_to_alert_max_ms: number
  publish_to_alert_count: number
  gateway_rss_mb: number
  /**
   * Catch-up (goal 6): seconds from InfluxDB's return after the outage until the spool lag is
   * under 1 s, with real-time ingest going on; publish → alert p99 meanwhile. null: no step, or
   * not caught up within --catchup-max.
   */
  catchup_s: number | null
  publish_to_alert_p99_during_catchup_ms: number | null
  /** gateway_rss_mb ÷ units (issue 12, goal 4). */
  rss_mb_per_unit: number
  /**
   * Goal 1's projection without the load generator (bench-unit-cpu.ts), from the headline
   * real-time step: CPU ms per unit-second of the gateway(s) and of InfluxDB, and the units a
   * 2-core box running only those two would hold (all of it, and with 30 % headroom).
   */
  gateway_cpu_ms_per_unit_s: number | null
  influx_cpu_ms_per_unit_s: number | null
  projected_units_2core: number | null
  projected_units_2core_with_headroom: number | null
  /** Gateway CPU µs per acknowledged frame at saturation, and per point written by the sink. */
  gateway_cpu_us_per_frame: number | null
  gateway_cpu_us_per_point: number
  /** Spooled bytes ÷ frame payload bytes acknowledged (null with --gateways ≥ 2). */
  spool_bytes_per_frame_byte: number | null
  /** Hours of one unit's real-time stream (12-lead 250 ms frames, 4 a second) a GB of spool holds. */
  spool_ecg_hours_per_gb: number | null
  influx_raw_points_per_s: number | null
  gateway_sink_points_per_s: number
  sink_ratio: number | null
  mosquitto_msgs_per_s: number | null
  gateway_msgs_per_s: number
  broker_ratio: number | null
  aedes_msgs_per_s: number | null
  /** gateway_msgs_per_s ÷ aedes_msgs_per_s. */
  ingest_vs_aedes_ratio: number | null
  /** The same ratios from CPU time per frame / point instead of wall-clock rates. */
  cpu_based: { broker_ratio: number | null, sink_ratio: number | null, ingest_vs_aedes_ratio: number | null }
  cluster: { gateways: number, one_process_msgs_per_s: number, all_processes_msgs_per_s: number, ratio: number | null } | null
  goals: Record<string, boolean | null>
  definitions: Record<string, string>
  realtime: RealtimeResult
  /** The catch-up step in full (its `catchup` block has the outage figures). */
  catchup: RealtimeResult | null
  search: Array<Pick<RealtimeResult, 'units' | 'frames_per_s' | 'lost' | 'backlog_frames_at_end' | 'publish_to_stored_ms' | 'publish_to_alert_ms' | 'sustained' | 'why_not'>>
  /**
   * The sink and its raw reference per store (--store), on the same backlog: what the choice of
   * database buys (goal 7). The top-level sink keys are InfluxDB's when it ran, else these.
   */
  stores: { influxdb: StoreFigures | null, victoriametrics: StoreFigures | null }
  saturation: { gateway: GatewaySaturation, cluster: GatewaySaturation | null, sink: SinkDrain, mosquitto: MosquittoResult | null, aedes: AedesResult | null, raw_influx: RawIngestResult | null }
  options: BenchOptions
}

const DEFINITIONS = {
  units_stored_p99_le_1s: 'the most real-time units of the search that were sustained (as for units) with publish→stored p99 ≤ 1 s: goal 1 of issue 12 asks both; null when no step met both',
  units: 'real-time units (12-lead 500 Hz ECG in 250 ms frames, numerics and position at 1 Hz, QoS 1); full run: the most sustained (lost = 0, no device backlog, publish→stored lag not growing)',
  lost: 'frames PUBACKed to devices whose 125 ECG points are not all in InfluxDB after the drain (InfluxQL count per unit over the acknowledged frames); null when a spool still held data at the drain timeout, since a missing frame may then still be queued (not_stored_yet counts them)',
  publish_to_stored: 'InfluxDB polled every 25 ms for the latest ecg timestamp of 8 sampled units; frame publish = end of its 250 ms (when the simulated device sends it); resolution 25 ms; after the warm-up (first 5 s of a fresh gateway process: JIT)',
  publish_to_alert: 'probe units (options.probes) alternate systolic 80/120 mmHg on every 250 ms frame (4 raised/cleared events a second each); the probes and a clinician subscribed to alerts/# on MQTT run in a process of their own, not the fleet\'s; probe hand-over to MQTT → raised/cleared event received, matched by the reading\'s device time; after the warm-up; publish_to_alert_count events, of which p50, p95, p99 (nearest rank) and max',
  gateway_rss_mb: 'peak VmRSS of the gateway process(es) during the real-time step',
  saturated: 'each client keeps `window` QoS 1 frames in flight (next frame on every PUBACK), no pacing; rate after warm-up; the gateway runs embedded (no InfluxDB work meanwhile), as Mosquitto runs alone; clients: options.generator (raw = hand-encoded MQTT, a few µs per message)',
  influx_raw_points_per_s: 'ECG points/s of the same line protocol posted to a fresh InfluxDB (same configuration) /write in gzip batches, prepared before the clock starts',
  gateway_sink_points_per_s: 'the saturated runs\' spool backlog drained into InfluxDB by gateway 1 alone after a restart with INFLUX_URL: points written/s (its counter) × ECG share',
  sink_ratio: 'gateway_sink_points_per_s ÷ influx_raw_points_per_s',
  rss_mb_per_unit: 'gateway_rss_mb ÷ units (the real-time headline step)',
  gateway_cpu_ms_per_unit_s: 'CPU (utime + stime) of the gateway process(es) from the end of the headline real-time step\'s warm-up to the end of its generation (the quick run: to InfluxDB\'s kill) ÷ (units × seconds of that window), ms; the fleet, in the bench process, is left out',
  influx_cpu_ms_per_unit_s: 'the same for the InfluxDB process (its ingest of the step\'s frames while the sink keeps up)',
  projected_units_2core: '2000 ms ÷ (gateway_cpu_ms_per_unit_s + influx_cpu_ms_per_unit_s): units a 2-core box running only the gateway and InfluxDB would hold at full CPU; too high when the step was not sustained (work left for later is not in the window)',
  projected_units_2core_with_headroom: 'projected_units_2core × 0.7 (30 % kept for bursts, GC, the OS and catching up after an outage)',
  stores: 'per store (--store): the saturation backlog drained by gateway 1 (InfluxDB: v1 API; VictoriaMetrics: v2 API, same backlog copied before) and the raw reference on a fresh server of that store; store_cpu_us_per_point and store_rss_mb are the store process\'s own',
  catchup_s: 'catch-up (quick: the real-time step goes on after options.durationS; full: a step of options.catchupUnits units, InfluxDB down 20 s in): InfluxDB SIGKILLed, restarted options.outageS later on its data; seconds from its restart (listening) until every gateway\'s ambulink_spool_lag_seconds is under 1 s; null when not within options.catchupMaxS of the restart',
  publish_to_alert_p99_during_catchup_ms: 'publish → alert p99 (as publish_to_alert) of the events received between InfluxDB\'s restart and the end of the catch-up',
  gateway_cpu_us_per_frame: 'gateway process CPU (utime + stime, all threads) per PUBACKed frame over the saturation window (embedded: decode, validate, spool + fsync, alerts, live hub)',
  gateway_cpu_us_per_point: 'gateway process CPU per point written while draining the saturation backlog into InfluxDB (spool read, line protocol, gzip, HTTP)',
  spool_bytes_per_frame_byte: 'ambulink_spool_pending_bytes of gateway 1 after the saturation run ÷ payload bytes of the frames it acknowledged (warm-up included)',
  spool_ecg_hours_per_gb: 'hours of one unit streaming in real time (4 saturation-style 12-lead frames a second) that 1 GB (10^9 bytes) of spool holds: 10^9 ÷ (spooled bytes per acknowledged frame × 4) ÷ 3600',
  aedes_msgs_per_s: 'PUBACKs/s of bare aedes (loadtest/aedes-bare.ts: accept-all authenticate, no decode, no spool, in-memory QoS 1) in a child process, same generator and frames',
  ingest_vs_aedes_ratio: 'gateway_msgs_per_s ÷ aedes_msgs_per_s (cpu_based: aedes CPU µs per message ÷ gateway CPU µs per frame)',
  broker_ratio: 'gateway_msgs_per_s (saturated PUBACKs/s: decode, spool, fsync) ÷ mosquitto_msgs_per_s (same generator, frames, QoS 1, no persistence)',
  cpu_based: 'broker: Mosquitto CPU µs per message ÷ gateway CPU µs per frame; sink: InfluxDB CPU µs per point (raw) ÷ (gateway + InfluxDB CPU µs per point while draining) — the machine\'s neighbours move these far less than rates'
}

/** Full run's catch-up step: seconds of normal streaming before InfluxDB is killed (5 s of it warm-up). */
const CATCHUP_LEAD_S = 20
/** Room in a catch-up step for InfluxDB's restart (40 s seen at a load average of 25). */
const RESTART_SLACK_S = 90

const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d
/** a ÷ b, or null when b is 0 (a reference that measured nothing). */
const ratio = (a: number, b: number): number | null => b > 0 ? round(a / b) : null

export async function runBench (o: BenchOptions, progress: (line: string) => void): Promise<BenchReport> {
  const loads: Record<string, number[]> = {}
  const mark = (phase: string): void => { loads[phase] = loadavg().map(x => round(x, 2)) }
  const loadStart = loadavg().map(x => round(x, 2))
  const fleetIds = unitIds('amb', Math.max(o.searchTo, o.mode === 'full' ? o.catchupUnits : 0) - o.probes)
  const probeIds = unitIds('probe', o.probes)
  const satIds = unitIds('satg', o.satUnits)
  const clusterIds = o.gateways > 1 ? unitIds('satc', o.satUnits) : []
  const env = await startBenchEnv({
    gateways: o.gateways,
    units: [...fleetIds, ...probeIds, ...satIds, ...clusterIds],
    scryptN: o.scryptN,
    cpuProfDir: o.cpuProfDir,
    keep: o.keep,
    influxAtStart: false,
    gatewayEnv: o.gatewayEnv,
    influxNice: o.influxNice,
    log: progress
  })
  try {
    // 1. Broker: saturation, gateways embedded.
    mark('saturation_gateway')
    const cpuPids = env.gateways.map(g => g.pid)
    const one = await saturate({ ...satBase(o, progress), urls: [env.mqttUrls[0]!], units: satIds, token: env.creds.token, label: 'gateway', cpuPids })
    let all: SaturateResult | null = null
    if (o.gateways > 1) {
      mark('saturation_cluster')
      all = await saturate({ ...satBase(o, progress), urls: env.mqttUrls, units: clusterIds, token: env.creds.token, label: `gateways×${o.gateways}`, cpuPids })
    }
    // 2. Sink: gateway 1 drains the backlog alone; then the others; then count (or, when the
    // sink was measured over part of the backlog only, discard the rest). With VictoriaMetrics
    // too, the backlog is copied first, to drain the same one into it (2b).
    const stores: StoreName[] = o.store === 'both' ? ['influxdb', 'victoriametrics'] : [o.store]
    const backlogCopy = stores.includes('victoriametrics') ? join(env.dir, 'spool-backlog') : undefined
    await waitQuiet([env.influx!.pid], o.mode === 'quick' ? 8000 : 30_000, progress)
    let influxSink: SinkDrain | null = null
    if (stores.includes('influxdb')) {
      mark('sink_drain')
      influxSink = await drainTimed(env, 0, o, progress, { name: 'influxdb', connect: async () => { await env.connectStore(0, env.influxEnv(), { saveSpoolTo: backlogCopy }) }, pid: () => env.influx!.pid })
      if (influxSink.complete) {
        for (let i = 1; i < env.gateways.length; i++) {
          await env.connectInflux(i)
          await waitForDrain([env.httpUrls[i]!], o.drainTimeoutS * 1000, progress)
        }
      }
    } else if (backlogCopy !== undefined) {
      await env.connectStore(0, {}, { saveSpoolTo: backlogCopy })
    }
    const counted = influxSink?.complete ?? false
    const gateway = await lostOf(env, one, 1, counted, progress)
    const cluster = all === null ? null : await lostOf(env, all, o.gateways, counted, progress)
    // The real-time phase starts from fresh gateway processes (its RSS is its own) with empty
    // spools, writing to a fresh InfluxDB (the first one compacts the backlog for minutes).
    await env.freshInflux()
    if (!stores.includes('victoriametrics')) for (let i = 0; i < env.gateways.length; i++) await env.discardSpool(i)
    const acked = [...one.reports, ...(all?.reports ?? [])]
    const ecgShare = acked.reduce((a, r) => a + r.ecgPointsAcked, 0) / Math.max(1, acked.reduce((a, r) => a + r.ecgPointsAcked + pointsBesidesEcg(r.acked), 0))
    if (influxSink !== null) influxSink.ecg_points_per_s = Math.round(influxSink.points_per_s * ecgShare)

    // 3. The sink's reference right after it, on a fresh InfluxDB of its own, as the sink had.
    let raw: RawIngestResult | null = null
    if (!o.skipReferences && influxSink !== null) {
      mark('influx_raw')
      const fresh = await startInfluxDB({ logLevel: 'warn' })
      try {
        raw = await rawInfluxIngest({ influxUrl: fresh.url, influxPid: fresh.pid, db: BENCH_DB, points: o.rawPoints, batchLines: o.rawBatchLines, concurrency: o.rawConcurrency, maxSeconds: Math.max(o.sinkSeconds, o.satDurationS * 2), prefix: 'raw', units: o.satUnits, progress })
      } finally {
        await fresh.stop()
      }
    }

    // 2b/3b. VictoriaMetrics (goal 7): the same backlog drained into it through the v2 write
    // API by gateway 1, then its raw reference on a fresh VictoriaMetrics.
    let vmSink: SinkDrain | null = null
    let vmRaw: RawIngestResult | null = null
    if (backlogCopy !== undefined) {
      mark('victoriametrics_sink')
      const vm = await startVictoriaMetrics()
      try {
        progress(`bench: VictoriaMetrics ${vm.url}`)
        const vmEnv = { INFLUX_URL: vm.url, INFLUX_API: 'v2', INFLUX_ORG: 'bench', INFLUX_BUCKET: BENCH_DB }
        vmSink = await drainTimed(env, 0, o, progress, { name: 'victoriametrics', connect: async () => { await env.connectStore(0, vmEnv, { spoolFrom: backlogCopy }) }, pid: () => vm.pid, backlogBytes: await spoolBytes(backlogCopy) })
        vmSink.ecg_points_per_s = Math.round(vmSink.points_per_s * ecgShare)
      } finally {
        await vm.stop()
      }
      for (let i = 0; i < env.gateways.length; i++) await env.discardSpool(i)
      await rm(backlogCopy, { recursive: true, force: true })
      if (!o.skipReferences) {
        mark('victoriametrics_raw')
        const fresh = await startVictoriaMetrics()
        try {
          vmRaw = await rawInfluxIngest({ influxUrl: fresh.url, influxPid: fresh.pid, db: BENCH_DB, api: 'v2', points: o.rawPoints, batchLines: o.rawBatchLines, concurrency: o.rawConcurrency, maxSeconds: Math.max(o.sinkSeconds, o.satDurationS * 2), prefix: 'raw', units: o.satUnits, progress })
        } finally {
          await fresh.stop()
        }
      }
    }
    const sink = influxSink ?? vmSink!
    const storeFigures = (d: SinkDrain | null, r: RawIngestResult | null): StoreFigures | null => d === null
      ? null
      : {
          sink_ecg_points_per_s: d.ecg_points_per_s,
          raw_ecg_points_per_s: r?.ecg_points_per_s ?? null,
          sink_ratio: r !== null ? ratio(d.ecg_points_per_s, r.ecg_points_per_s) : null,
          gateway_cpu_us_per_point: d.gateway_cpu_us_per_point,
          store_cpu_us_per_point: d.influx_cpu_us_per_point,
          raw_store_cpu_us_per_point: r?.influx_cpu_us_per_point ?? null,
          cpu_based_sink_ratio: r?.influx_cpu_us_per_point != null ? ratio(r.influx_cpu_us_per_point, d.gateway_cpu_us_per_point + d.influx_cpu_us_per_point) : null,
          store_rss_mb: d.store_rss_mb,
          sink: d,
          raw: r
        }

    // 4. Real time.
    const search: RealtimeResult[] = []
    const step = async (units: number): Promise<RealtimeResult> => {
      await waitQuiet([env.influx!.pid], o.mode === 'quick' ? 8000 : 60_000, progress)
      mark(`realtime_${units}`)
      // --gateways ≥ 2: through HAProxy with the cluster-wide live view on (bench-cluster-view.ts).
      const clusterView = o.gateways > 1 ? await startClusterView(env, { sockets: 2, watchPerSocket: 4, progress }) : undefined
      let r: RealtimeResult
      // The quick run's one step goes on into the catch-up (InfluxDB down after --duration s).
      const outage = o.mode === 'quick' && o.outageS > 0 ? { afterMs: o.durationS * 1000, outageMs: o.outageS * 1000, catchupMaxMs: o.catchupMaxS * 1000, caughtUpLagS: 1 } : undefined
      const durationMs = (o.durationS + (outage !== undefined ? o.outageS + o.catchupMaxS + RESTART_SLACK_S : 0)) * 1000
      try {
        r = await runRealtime({ env, units: fleetIds.slice(0, units - o.probes), probes: probeIds, durationMs, warmupMs: Math.min(5000, o.durationS * 250), drainTimeoutMs: o.drainTimeoutS * 1000, progress, clusterView, outage })
      } finally {
        await clusterView?.stop()
      }
      if (r.cluster_view !== undefined) progress(`realtime ${units} units through haproxy: redis ${r.cluster_view.redis.per_unit.bytes_in_per_s} B/s in, ${r.cluster_view.redis.per_unit.bytes_out_per_s} B/s out, ${r.cluster_view.redis.per_unit.commands_per_s} commands/s per unit`)
      progress(`realtime ${units} units: ${r.sustained ? 'sustained' : `NOT sustained (${r.why_not.join('; ')})`}, lost ${r.lost}, stored p99 ${r.publish_to_stored_ms.p99} ms, alert p99 ${r.publish_to_alert_ms.p99} ms`)
      if (r.unit_cpu !== null) progress(`realtime ${units} units: CPU per unit-second gateway ${r.unit_cpu.gateway_ms_per_unit_s} ms, InfluxDB ${r.unit_cpu.influx_ms_per_unit_s} ms → ${r.unit_cpu.projected_units_2core ?? '?'} units on 2 cores (${r.unit_cpu.projected_units_2core_with_headroom ?? '?'} with 30 % headroom)`)
      search.push(r)
      return r
    }
    let best: RealtimeResult | null = null
    if (o.mode === 'quick') {
      best = await step(o.units)
    } else {
      let lo = 0
      let hi = 0
      for (let n = o.searchFrom; n <= o.searchTo; n += o.searchStep) {
        const r = await step(n)
        if (!r.sustained) { hi = n; break }
        best = r
        lo = n
      }
      // Bisect between the last sustained and the first failing step, to a quarter step.
      while (hi > 0 && lo > 0 && hi - lo > o.searchStep / 4) {
        const mid = Math.round((lo + hi) / 2)
        const r = await step(mid)
        if (r.sustained) { best = r; lo = mid } else hi = mid
      }
    }
    const headline = best ?? search[0]!

    // 4b. Catch-up (goal 6): the same real-time stream through an InfluxDB outage. The quick
    // run had it inside its one real-time step (after --duration seconds of normal streaming).
    let catchup: RealtimeResult | null = o.mode === 'quick' ? search.find(r => r.catchup !== undefined) ?? null : null
    if (o.mode === 'full' && o.outageS > 0) {
      await waitQuiet([env.influx!.pid], 60_000, progress)
      mark('catchup')
      catchup = await runRealtime({ env, units: fleetIds.slice(0, o.catchupUnits - o.probes), probes: probeIds, durationMs: (CATCHUP_LEAD_S + o.outageS + o.catchupMaxS + RESTART_SLACK_S) * 1000, warmupMs: 5000, drainTimeoutMs: o.drainTimeoutS * 1000, progress, outage: { afterMs: CATCHUP_LEAD_S * 1000, outageMs: o.outageS * 1000, catchupMaxMs: o.catchupMaxS * 1000, caughtUpLagS: 1 } })
    }
    if (catchup?.catchup !== undefined) {
      const c = catchup.catchup
      progress(`catch-up ${catchup.units} units, ${c.outage_s} s outage: ${c.catchup_s === null ? 'NOT caught up' : `caught up in ${c.catchup_s} s`}, lost ${catchup.lost}, alert p99 ${c.publish_to_alert_during_catchup_ms.p99} ms during catch-up`)
    }

    // 5. The broker's reference.
    let mosquitto: MosquittoResult | null = null
    let aedes: AedesResult | null = null
    if (!o.skipReferences) {
      mark('mosquitto')
      const { reports: _r, ...m } = await mosquittoReference({ units: unitIds('satm', o.satUnits), maxFramesPerUnit: o.satMaxFrames, generator: o.generator, window: o.window, durationMs: o.satDurationS * 1000, warmupMs: o.satWarmupS * 1000, progress })
      mosquitto = m
      mark('aedes')
      const { reports: _ra, ...a } = await aedesReference({ units: unitIds('sata', o.satUnits), maxFramesPerUnit: o.satMaxFrames, generator: o.generator, window: o.window, durationMs: o.satDurationS * 1000, warmupMs: o.satWarmupS * 1000, progress })
      aedes = a
      progress(`aedes: ${a.frames_per_s} msgs/s acknowledged, ${a.broker_cpu_us_per_frame ?? '?'} µs of broker CPU per message`)
    }
    mark('end')

    const atHundred = search.find(r => r.units === 100) ?? null
    const primaryRaw = influxSink !== null ? raw : vmRaw
    const sinkRatio = primaryRaw !== null ? ratio(sink.ecg_points_per_s, primaryRaw.ecg_points_per_s) : null
    const brokerRatio = mosquitto !== null ? ratio(gateway.publish.frames_per_s, mosquitto.frames_per_s) : null
    const aedesRatio = aedes !== null ? ratio(gateway.publish.frames_per_s, aedes.frames_per_s) : null
    return {
      benchmark: 'ambulink',
      mode: o.mode,
      node: process.version,
      cpus: cpus().length,
      load_average: { start: loadStart, end: loadavg().map(x => round(x, 2)), per_phase: loads },
      units: headline.units,
      units_stored_p99_le_1s: mostWithin(search, STORED_P99_GOAL_MS),
      frames_per_s: headline.frames_per_s,
      ecg_points_per_s: headline.ecg_points_per_s,
      lost: headline.lost,
      publish_to_stored_p50_ms: headline.publish_to_stored_ms.p50,
      publish_to_stored_p99_ms: headline.publish_to_stored_ms.p99,
      publish_to_alert_p50_ms: headline.publish_to_alert_ms.p50,
      publish_to_alert_p99_ms: headline.publish_to_alert_ms.p99,
      publish_to_alert_p95_ms: headline.publish_to_alert_ms.p95,
      publish_to_alert_max_ms: headline.publish_to_alert_ms.max,
      publish_to_alert_count: headline.publish_to_alert_ms.count,
      gateway_rss_mb: headline.gateway_rss_mb_peak,
      catchup_s: catchup?.catchup?.catchup_s ?? null,
      publish_to_alert_p99_during_catchup_ms: catchup?.catchup !== undefined && catchup.catchup.publish_to_alert_during_catchup_ms.count > 0 ? catchup.catchup.publish_to_alert_during_catchup_ms.p99 : null,
      rss_mb_per_unit: round(headline.gateway_rss_mb_peak / Math.max(1, headline.units), 2),
      gateway_cpu_ms_per_unit_s: headline.unit_cpu?.gateway_ms_per_unit_s ?? null,
      influx_cpu_ms_per_unit_s: headline.unit_cpu?.influx_ms_per_unit_s ?? null,
      projected_units_2core: headline.unit_cpu?.projected_units_2core ?? null,
      projected_units_2core_with_headroom: headline.unit_cpu?.projected_units_2core_with_headroom ?? null,
      gateway_cpu_us_per_frame: gateway.publish.broker_cpu_us_per_frame,
      gateway_cpu_us_per_point: sink.gateway_cpu_us_per_point,
      spool_bytes_per_frame_byte: o.gateways === 1 ? ratio(sink.backlog_bytes, one.bytes_acked_total) : null,
      spool_ecg_hours_per_gb: o.gateways === 1 && sink.backlog_bytes > 0 ? round(1e9 / (sink.backlog_bytes / Math.max(1, one.reports.reduce((a, r) => a + r.acked, 0)) * 4) / 3600, 1) : null,
      influx_raw_points_per_s: primaryRaw?.ecg_points_per_s ?? null,
      gateway_sink_points_per_s: sink.ecg_points_per_s,
      sink_ratio: sinkRatio,
      mosquitto_msgs_per_s: mosquitto?.frames_per_s ?? null,
      gateway_msgs_per_s: gateway.publish.frames_per_s,
      broker_ratio: brokerRatio,
      aedes_msgs_per_s: aedes?.frames_per_s ?? null,
      ingest_vs_aedes_ratio: aedesRatio,
      cpu_based: {
        broker_ratio: mosquitto?.broker_cpu_us_per_frame != null && gateway.publish.broker_cpu_us_per_frame != null ? ratio(mosquitto.broker_cpu_us_per_frame, gateway.publish.broker_cpu_us_per_frame) : null,
        sink_ratio: primaryRaw?.influx_cpu_us_per_point != null ? ratio(primaryRaw.influx_cpu_us_per_point, sink.gateway_cpu_us_per_point + sink.influx_cpu_us_per_point) : null,
        ingest_vs_aedes_ratio: aedes?.broker_cpu_us_per_frame != null && gateway.publish.broker_cpu_us_per_frame != null ? ratio(aedes.broker_cpu_us_per_frame, gateway.publish.broker_cpu_us_per_frame) : null
      },
      cluster: cluster === null
        ? null
        : {
            gateways: o.gateways,
            one_process_msgs_per_s: gateway.publish.frames_per_s,
            all_processes_msgs_per_s: cluster.publish.frames_per_s,
            ratio: ratio(cluster.publish.frames_per_s, gateway.publish.frames_per_s)
          },
      goals: {
        sink_ratio_ge_0_7: sinkRatio === null ? null : sinkRatio >= 0.7,
        broker_ratio_ge_1: brokerRatio === null ? null : brokerRatio >= 1,
        ingest_vs_aedes_ratio_ge_0_8: aedesRatio === null ? null : aedesRatio >= 0.8,
        gateway_cpu_le_50us_per_frame: gateway.publish.broker_cpu_us_per_frame === null ? null : gateway.publish.broker_cpu_us_per_frame <= 50,
        gateway_cpu_le_1us_per_point: sink.points > 0 ? sink.gateway_cpu_us_per_point <= 1 : null,
        rss_le_1mb_per_unit: headline.gateway_rss_mb_peak / Math.max(1, headline.units) <= 1,
        spool_le_1_5_bytes_per_frame_byte: o.gateways === 1 && one.bytes_acked_total > 0 ? sink.backlog_bytes / one.bytes_acked_total <= 1.5 : null,
        alert_p99_le_50ms_at_100_units: atHundred === null ? null : atHundred.publish_to_alert_ms.p99 <= 50,
        catchup_lost_0: catchup === null ? null : catchup.lost === 0 && catchup.catchup?.catchup_s !== null,
        catchup_alert_p99_le_50ms: catchup?.catchup === undefined || catchup.catchup.publish_to_alert_during_catchup_ms.count === 0 ? null : catchup.catchup.publish_to_alert_during_catchup_ms.p99 <= 50,
        units_ge_400_stored_p99_le_1s: o.mode === 'quick' && o.units < 400 ? null : (mostWithin(search, STORED_P99_GOAL_MS) ?? 0) >= 400,
        units_ge_200_lost_0: o.mode === 'quick' && o.units < 200 ? null : search.some(r => r.units >= 200 && r.sustained),
        cluster_ratio_ge_1_6: cluster === null ? null : cluster.publish.frames_per_s / gateway.publish.frames_per_s >= 1.6
      },
      definitions: DEFINITIONS,
      realtime: headline,
      catchup,
      search: search.map(r => ({ units: r.units, frames_per_s: r.frames_per_s, lost: r.lost, backlog_frames_at_end: r.backlog_frames_at_end, publish_to_stored_ms: r.publish_to_stored_ms, publish_to_alert_ms: r.publish_to_alert_ms, sustained: r.sustained, why_not: r.why_not })),
      stores: { influxdb: storeFigures(influxSink, raw), victoriametrics: storeFigures(vmSink, vmRaw) },
      saturation: { gateway, cluster, sink, mosquitto, aedes, raw_influx: raw },
      options: o
    }
  } finally {
    await env.stop()
  }
}

/** Goal 1's bound on publish→stored p99, ms (issue 12). */
const STORED_P99_GOAL_MS = 1000

/** The most units among the sustained steps whose publish→stored p99 is within `p99Ms`. */
export function mostWithin (steps: ReadonlyArray<{ units: number, sustained: boolean, publish_to_stored_ms: { p99: number } }>, p99Ms: number): number | null {
  let most: number | null = null
  for (const r of steps) {
    if (r.sustained && r.publish_to_stored_ms.p99 <= p99Ms && (most === null || r.units > most)) most = r.units
  }
  return most
}

function satBase (o: BenchOptions, progress: (line: string) => void): Pick<SaturateOptions, 'window' | 'durationMs' | 'warmupMs' | 'backdateMs' | 'maxFramesPerUnit' | 'generator' | 'progress'> {
  return { window: o.window, durationMs: o.satDurationS * 1000, warmupMs: o.satWarmupS * 1000, backdateMs: 2 * 3_600_000, maxFramesPerUnit: o.satMaxFrames, generator: o.generator, progress }
}

/**
 * Waits (at most `maxMs`) until the processes use under 5 % of a core: InfluxDB compacts in the
 * background after heavy writes, and a reference measured during that would be measured short.
 */
async function waitQuiet (pids: readonly number[], maxMs: number, progress: (line: string) => void): Promise<void> {
  const t0 = Date.now()
  let last = (await Promise.all(pids.map(processCpuSeconds))).reduce((a, b) => a + b, 0)
  while (Date.now() - t0 < maxMs) {
    await new Promise(resolve => setTimeout(resolve, 500))
    const now = (await Promise.all(pids.map(processCpuSeconds))).reduce((a, b) => a + b, 0)
    if (now - last < 0.025) return
    last = now
  }
  progress(`InfluxDB still busy after ${maxMs / 1000} s (compactions); measuring anyway`)
}

/** Vitals and position points besides ECG in `frames` frames (one of each per second). */
function pointsBesidesEcg (frames: number): number {
  return 2 * Math.ceil(frames / 4)
}

interface StoreTarget {
  name: StoreName
  /** Restarts the gateway pointed at the store. */
  connect: () => Promise<void>
  pid: () => number
  /** The backlog's size when the gateway's own metric cannot tell (a copied spool). */
  backlogBytes?: number
}

/**
 * Restarts gateway `i` pointed at the store and times the drain of its backlog: points written
 * (the gateway's own counter) between the first look after the restart and the empty spool.
 */
async function drainTimed (env: BenchEnv, i: number, o: BenchOptions, progress: (line: string) => void, store: StoreTarget): Promise<SinkDrain> {
  const url = env.httpUrls[i]!
  // The backlog is read before the restart: once the gateway has INFLUX_URL it may drain part
  // of it (all of a small one) before the first look.
  const backlog = store.backlogBytes ?? (await readMetrics(url)).get('ambulink_spool_pending_bytes') ?? 0
  await store.connect()
  const m0 = await readMetrics(env.httpUrls[i]!)
  const t0 = performance.now()
  const pids = [env.gateways[i]!.pid, store.pid()]
  const cpu0 = await Promise.all(pids.map(processCpuSeconds))
  let complete = true
  if (o.sinkSeconds > 0) {
    // Bounded: measure over sinkSeconds at most; what is left is discarded by the caller.
    try {
      await waitForDrain([url], o.sinkSeconds * 1000, progress)
    } catch {
      complete = false
    }
  } else {
    await waitForDrain([url], o.drainTimeoutS * 1000, progress)
  }
  const seconds = (performance.now() - t0) / 1000
  const cpu = (await Promise.all(pids.map(processCpuSeconds))).map((c, k) => c - cpu0[k]!)
  const rss = await processRssBytes(pids[1]!)
  // The gateway was just restarted, so its counter starts from 0 there: the rate takes the
  // points written after the first look, `points_since_restart` all of them.
  const total = (await readMetrics(url)).get('ambulink_points_written_total') ?? 0
  const written = total - (m0.get('ambulink_points_written_total') ?? 0)
  const pps = Math.round(written / Math.max(1e-3, seconds))
  const perPoint = (s: number): number => round(s * 1e6 / Math.max(1, written), 2)
  progress(`sink (${store.name}): ${(written / 1e6).toFixed(2)} M points of a ${(backlog / 1e6).toFixed(0)} MB backlog written in ${seconds.toFixed(1)} s: ${pps} points/s; CPU per point: gateway ${perPoint(cpu[0]!)} µs, ${store.name} ${perPoint(cpu[1]!)} µs${complete ? '' : ' (rest discarded)'}`)
  return { backlog_mb: round(backlog / 1e6, 1), backlog_bytes: backlog, complete, seconds: round(seconds, 2), points: written, points_since_restart: total, points_per_s: pps, ecg_points_per_s: 0, gateway_cpu_us_per_point: perPoint(cpu[0]!), influx_cpu_us_per_point: perPoint(cpu[1]!), store: store.name, store_rss_mb: round(rss / 1e6, 1) }
}

/** Bytes of spool segments in a spool folder (a copy: nothing of it was committed yet). */
async function spoolBytes (dir: string): Promise<number> {
  let n = 0
  for (const name of await readdir(dir)) if (name.startsWith('seg-')) n += (await stat(join(dir, name))).size
  return n
}

async function lostOf (env: BenchEnv, r: SaturateResult, gateways: number, count: boolean, progress: (line: string) => void): Promise<GatewaySaturation> {
  const { reports: _reports, ...publish } = r
  let lost: number | null = null
  if (count) {
    progress(`${r.label}: counting ${r.reports.reduce((a, x) => a + x.acked, 0)} acknowledged frames in InfluxDB`)
    lost = (await countLost(env.influx!.url, BENCH_DB, r.reports)).lost
  }
  progress(`${r.label}: ${publish.frames_per_s} frames/s acknowledged, ${publish.broker_cpu_us_per_frame ?? '?'} µs of gateway CPU per frame${lost === null ? '' : `, lost ${lost}`}`)
  return { gateways, publish, lost }
}

export async function runBenchCli (argv: string[]): Promise<number> {
  let o: BenchOptions
  try {
    o = parseBenchArgs(argv)
  } catch (err) {
    if (err instanceof BenchUsageError && err.message === 'help') {
      process.stderr.write(BENCH_USAGE)
      return 0
    }
    const code = (err as { code?: string }).code
    if (err instanceof BenchUsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_'))) {
      process.stderr.write(`ambulink bench: ${(err as Error).message}\n\n${BENCH_USAGE}`)
      return 2
    }
    throw err
  }
  const t0 = Date.now()
  const progress = (line: string): void => { process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`) }
  // Ctrl-C: exit at once; servers/proc.ts kills every child and removes the temp folders on exit.
  const onSignal = (): void => {
    progress('interrupted: stopping the servers')
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  progress(`${o.mode} run; load average ${loadavg().map(x => x.toFixed(2)).join(' ')} on ${cpus().length} CPUs`)
  const report = await runBench(o, progress)
  progress(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
  process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  return report.lost === 0 && (report.catchup === null || report.catchup.lost === 0) ? 0 : 1
}
