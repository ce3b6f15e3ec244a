/**
 * One real-time step of `ambulink bench`: N units stream as ambulances do (the simulator's
 * Fleet: 12-lead 500 Hz ECG in 250 ms frames, numerics and position at 1 Hz, QoS 1, 32 frames
 * in flight at most), a few of them alert probes (bench-alerts.ts, in a process of their own:
 * bench-alert-process.ts; each flips its systolic pressure every 250 ms frame), for `durationMs` of wall
 * time. Then the fleet drains its queues, the gateways drain their spools into InfluxDB, and
 * every acknowledged frame is looked up there (bench-stored.ts).
 *
 * "Sustained" (the full run's search criterion) means all of:
 * - lost = 0 and no frame dropped by a device queue;
 * - the devices' backlog at the end of the run is at most half a second of frames
 *   (the gateway kept up with PUBACKs);
 * - publish→stored lag did not grow: p50 over the last third of the run ≤ 2 × the first third's
 *   p50 + 250 ms (the sink kept up with InfluxDB).
 */
import { AlertProbeProcess } from './bench-alert-process.js'
import type { AlertLatency } from './bench-alerts.js'
import type { BenchEnv } from './bench-env.js'
import { BENCH_DB } from './bench-env.js'
import { countLost, readMetrics, StoredLatencyProbe, waitForDrain, type BenchUnitReport, type LostCount } from '../testkit/stored.js'
import { Fleet } from '../simulator/fleet.js'
import type { ClusterView, ClusterViewResult } from './bench-cluster-view.js'
import { UnitCpuWindow, type UnitSecondCpu } from './bench-unit-cpu.js'

export interface RealtimeOptions {
  env: BenchEnv
  /** Fleet units (the probes come on top, and count in `units`). */
  units: readonly string[]
  probes: readonly string[]
  durationMs: number
  /**
   * Latencies (stored, alert) are taken after this much of the run: a gateway process just
   * started compiles its hot paths (JIT) during the first seconds. Lost counts everything.
   */
  warmupMs: number
  /** How long the spools may take to drain before the step fails, ms. */
  drainTimeoutMs: number
  progress: (line: string) => void
  /** Cluster: the fleet goes through a balancer and live sockets watch units (bench-cluster-view.ts). */
  clusterView?: ClusterView
  /**
   * Catch-up (issue 12, goal 6): InfluxDB is killed (SIGKILL) `afterMs` into the run and
   * restarted `outageMs` later on the same data; the fleet streams on throughout, and the step
   * ends (generation stops) 3 s after the gateways have caught up, or catchupMaxMs after the
   * restart, or at durationMs (the caller leaves room for a slow restart). The step's
   * real-time figures (publish → stored / alert, lag growth) cover the time before the outage;
   * lost counts the whole step (null when the spool had not drained: see not_stored_yet).
   */
  outage?: OutageSpec
}

export interface OutageSpec {
  afterMs: number
  outageMs: number
  /** Most time the catch-up may take, counted from InfluxDB listening again (its restart can take long on a loaded machine). */
  catchupMaxMs: number
  /** Caught up: every gateway's ambulink_spool_lag_seconds under this, s. */
  caughtUpLagS: number
}

export interface CatchupResult {
  outage_s: number
  /** From InfluxDB's restart (listening again) until the spool lag is back under caughtUpLagS; null: not within the run. */
  catchup_s: number | null
  /** Spool backlog when InfluxDB came back, MB, and the highest spool lag seen, s. */
  backlog_mb_at_restart: number
  peak_lag_s: number
  /** Publish → alert while InfluxDB was down, and from its restart until caught up. */
  publish_to_alert_during_outage_ms: AlertLatency
  publish_to_alert_during_catchup_ms: AlertLatency
  /** Publish → PUBACK p99 of the whole step (devices must not feel the outage). */
  ack_p99_ms: number
}

export interface RealtimeResult {
  units: number
  duration_s: number
  frames_generated: number
  frames_acked: number
  frames_per_s: number
  ecg_points_per_s: number
  /**
   * Acknowledged frames missing from InfluxDB once every spool drained. null when a spool still
   * held data at the drain timeout: a missing frame may then still be waiting in the spool, and
   * the run cannot tell it from a lost one (not_stored_yet has the count).
   */
  lost: number | null
  lost_detail: LostCount
  /** Acknowledged frames not in InfluxDB while the spools still held spool_mb_at_count MB (0 when drained). */
  not_stored_yet: number
  spool_mb_at_count: number
  dropped_by_devices: number
  /** Frames generated but not yet acknowledged when generation stopped. */
  backlog_frames_at_end: number
  /** Publish → PUBACK over the run (warm-up included: the fleet keeps one rolling window). */
  ack_latency_ms: { p50: number, p99: number, max: number }
  publish_to_stored_ms: { p50: number, p99: number, max: number, count: number }
  publish_to_stored_thirds_ms: { first: { p50: number, p99: number }, last: { p50: number, p99: number } }
  publish_to_alert_ms: AlertLatency
  /** The same over the whole run, warm-up included. */
  publish_to_stored_ms_with_warmup: { p50: number, p99: number, max: number, count: number }
  publish_to_alert_ms_with_warmup: AlertLatency
  warmup_s: number
  alerts_unmatched: number
  drain_ms: number
  gateway_rss_mb_peak: number
  gateway_rss_mb_end: number
  sustained: boolean
  why_not: string[]
  /** With --gateways ≥ 2: through HAProxy with the cluster-wide live view on; Redis traffic per unit. */
  cluster_view?: ClusterViewResult
  /** With `outage`: the catch-up figures. */
  catchup?: CatchupResult
  /**
   * Goal 1's projection (bench-unit-cpu.ts): gateway and InfluxDB CPU per unit-second from the
   * end of the warm-up to the end of generation (or InfluxDB's kill), and the units a 2-core
   * box running only those two would hold. null when the window was empty.
   */
  unit_cpu: UnitSecondCpu | null
}

/** Units whose stored timestamps are polled for publish→stored (spread over the fleet). */
const STORED_SAMPLE_UNITS = 8

export async function runRealtime (o: RealtimeOptions): Promise<RealtimeResult> {
  const { env } = o
  const urls = o.clusterView !== undefined ? [o.clusterView.mqttUrl] : env.mqttUrls
  // Units are spread over the gateways (one fleet per gateway), as a load balancer would.
  const fleets = urls.map((url, g) => new Fleet({
    url,
    units: o.units.filter((_u, i) => i % urls.length === g).map(unitId => ({ unitId, token: env.creds.token })),
    durationMs: o.durationMs,
    startTimeoutMs: 120_000,
    drainTimeoutMs: 60_000,
    log: msg => { o.progress(`fleet: ${msg}`) }
  }))
  // Every 250 ms frame flips the probe's systolic pressure: 4 alert events a second per probe, so
  // a step's p99 is not just its slowest event (bench-options.ts: 8 probes, ≥ 300 events a quick step).
  const probes = new AlertProbeProcess({
    url: urls[0]!,
    clinicianUrl: urls[urls.length - 1]!,
    units: o.probes,
    token: env.creds.token,
    clinician: env.creds.clinician,
    flipEveryFrames: 1,
    log: msg => { o.progress(`probe: ${msg}`) }
  })
  const total = o.units.length + o.probes.length
  o.progress(`realtime ${total} units: connecting`)
  await probes.connect()
  await Promise.all(fleets.map(f => f.start()))
  const startMs = fleets[0]!.startedAtMs
  probes.start(startMs)
  // Two pages, each watching four units (ECG on demand crosses Redis for the remote ones).
  await o.clusterView?.watch([...o.probes, ...o.units])
  const sampled = pickSpread(fleets.flatMap(f => f.unitIds.map(unitId => ({ unitId, startMs: f.startedAtMs }))), STORED_SAMPLE_UNITS)
  const stored = new StoredLatencyProbe(env.influx!.url, BENCH_DB, sampled)
  stored.start()

  let rssPeak = 0
  const t0 = Date.now()
  const unitCpu = new UnitCpuWindow(() => env.gateways.map(g => g.pid), () => env.influx!.pid)
  const cpuFrom = setTimeout(() => { void unitCpu.start() }, o.warmupMs)
  const monitor = setInterval(() => {
    void (async () => {
      let rss = 0
      for (const g of env.gateways) rss += await g.rss().catch(() => 0)
      rssPeak = Math.max(rssPeak, rss)
      const s = fleets.map(f => f.stats())
      const acked = s.reduce((a, x) => a + x.framesAcked, 0)
      const pending = s.reduce((a, x) => a + x.pending, 0)
      const spool = (await Promise.all(env.httpUrls.map(u => readMetrics(u).then(m => m.get('ambulink_spool_pending_bytes') ?? 0).catch(() => 0)))).reduce((a, b) => a + b, 0)
      const st = stored.summary()
      o.progress(`realtime ${total} units ${((Date.now() - t0) / 1000).toFixed(0)}/${o.durationMs / 1000} s: acked ${acked} frames, backlog ${pending}, ack p99 ${s[0]!.ackLatencyMs.p99} ms, stored p50 ${st.p50} ms p99 ${st.p99} ms, spool ${(spool / 1e6).toFixed(1)} MB, gateway RSS ${(rss / 1e6).toFixed(0)} MB`)
    })()
  }, 2000)

  const outage = o.outage !== undefined ? runOutage(o.outage, env, t0, o.progress, async () => { await unitCpu.stop() }) : null
  let backlog = 0
  try {
    const generated = Promise.all(fleets.map(f => f.whenGenerated()))
    // The catch-up step ends 3 s after the gateways caught up (real-time ingest went on meanwhile).
    const ended: Array<Promise<unknown>> = [generated]
    if (outage !== null) ended.push(outage.then(t => t.caughtUpAt !== null ? new Promise(resolve => setTimeout(resolve, 3000)) : undefined))
    await Promise.race(ended)
    await unitCpu.stop()
    backlog = fleets.reduce((a, f) => a + f.stats().pending, 0)
  } finally {
    clearInterval(monitor)
    clearTimeout(cpuFrom)
  }
  const outageTimes = outage !== null ? await outage : null
  const clusterView = await o.clusterView?.result(o.units.length + o.probes.length)
  const elapsedS = (Date.now() - t0) / 1000
  o.progress(`realtime ${total} units: generation done, draining devices (${backlog} frames unacknowledged)`)
  const stats = await Promise.all(fleets.map(f => f.stop({ drain: true, timeoutMs: 60_000 })))
  await probes.stop()
  let drainMs = -1
  try {
    drainMs = await waitForDrain(env.httpUrls, o.drainTimeoutMs, o.progress)
  } catch (err) {
    o.progress(`realtime: ${(err as Error).message}`)
  }
  await new Promise(resolve => setTimeout(resolve, 200))
  await stored.stop()
  let rssEnd = 0
  for (const g of env.gateways) rssEnd += await g.rss().catch(() => 0)

  const reports: BenchUnitReport[] = [
    ...fleets.flatMap(f => f.unitReports().map(r => ({ unitId: r.unitId, startMs: f.startedAtMs, frameMs: 250, acked: r.acked, ackedSeqRanges: r.ackedSeqRanges, ecgPointsAcked: r.ecgPointsAcked }))),
    ...probes.reports()
  ]
  o.progress(`realtime ${total} units: counting ${reports.reduce((a, r) => a + r.acked, 0)} acknowledged frames in InfluxDB`)
  const lost = await countLost(env.influx!.url, BENCH_DB, reports)
  // A missing frame is lost only if no spool holds anything any more; otherwise it may be queued.
  const spoolAtCount = (await Promise.all(env.httpUrls.map(u => readMetrics(u).then(m => m.get('ambulink_spool_pending_bytes') ?? 0).catch(() => 0)))).reduce((a, b) => a + b, 0)
  const verified = drainMs >= 0 || spoolAtCount === 0
  const acked = reports.reduce((a, r) => a + r.acked, 0)
  const ecg = reports.reduce((a, r) => a + r.ecgPointsAcked, 0)
  const dropped = stats.reduce((a, s) => a + s.dropped, 0)
  const generated = stats.reduce((a, s) => a + s.framesGenerated, 0) + probes.linkStats().reduce((a, r) => a + r.generated, 0)
  // With an outage, the step's real-time figures are those from before InfluxDB went down.
  const headEnd = outageTimes?.downAt ?? Infinity
  const thirds = stored.thirds(headEnd)
  const whyNot: string[] = []
  if (lost.lost > 0 && verified) whyNot.push(`${lost.lost} acknowledged frames missing from InfluxDB`)
  if (lost.lost > 0 && !verified) whyNot.push(`${lost.lost} acknowledged frames not in InfluxDB yet, with ${(spoolAtCount / 1e6).toFixed(1)} MB still spooled at the drain timeout (loss not verifiable)`)
  if (dropped > 0) whyNot.push(`${dropped} frames dropped by device queues`)
  if (backlog > total * 2) whyNot.push(`device backlog ${backlog} frames at the end (> 0.5 s)`)
  if (drainMs < 0) whyNot.push('spool did not drain')
  // A catch-up step's stored lag grows by design (the outage); its own figures say how it went.
  if (outageTimes === null && thirds.last.p50 > 2 * thirds.first.p50 + 250) whyNot.push(`publish→stored lag grew: p50 ${thirds.first.p50} → ${thirds.last.p50} ms`)
  if (outageTimes !== null && outageTimes.caughtUpAt === null) whyNot.push('the spool lag did not come back under the catch-up bound within the run')
  const ackLatency = stats[0]!.ackLatencyMs
  const catchup: CatchupResult | null = outageTimes === null
    ? null
    : {
        outage_s: Math.round((outageTimes.upAt - outageTimes.downAt) / 100) / 10,
        catchup_s: outageTimes.caughtUpAt === null ? null : Math.round((outageTimes.caughtUpAt - outageTimes.upAt) / 100) / 10,
        backlog_mb_at_restart: Math.round(outageTimes.backlogBytesAtUp / 1e5) / 10,
        peak_lag_s: Math.round(outageTimes.peakLagS * 10) / 10,
        publish_to_alert_during_outage_ms: probes.summary(outageTimes.downAt, outageTimes.upAt),
        publish_to_alert_during_catchup_ms: probes.summary(outageTimes.upAt, outageTimes.caughtUpAt ?? Infinity),
        ack_p99_ms: ackLatency.p99
      }
  return {
    units: total,
    duration_s: Math.round(elapsedS * 10) / 10,
    frames_generated: generated,
    frames_acked: acked,
    frames_per_s: Math.round(acked / elapsedS),
    ecg_points_per_s: Math.round(ecg / elapsedS),
    lost: verified ? lost.lost : null,
    lost_detail: lost,
    not_stored_yet: verified ? 0 : lost.lost,
    spool_mb_at_count: Math.round(spoolAtCount / 1e5) / 10,
    dropped_by_devices: dropped,
    backlog_frames_at_end: backlog,
    ack_latency_ms: { p50: ackLatency.p50, p99: ackLatency.p99, max: ackLatency.max },
    publish_to_stored_ms: stored.summary(t0 + o.warmupMs, headEnd),
    publish_to_stored_thirds_ms: thirds,
    publish_to_alert_ms: probes.summary(t0 + o.warmupMs, headEnd),
    publish_to_stored_ms_with_warmup: stored.summary(),
    publish_to_alert_ms_with_warmup: probes.summary(),
    warmup_s: o.warmupMs / 1000,
    alerts_unmatched: probes.unmatched,
    drain_ms: drainMs,
    gateway_rss_mb_peak: Math.round(rssPeak / 1e5) / 10,
    gateway_rss_mb_end: Math.round(rssEnd / 1e5) / 10,
    sustained: whyNot.length === 0,
    why_not: whyNot,
    ...(clusterView !== undefined ? { cluster_view: clusterView } : {}),
    ...(catchup !== null ? { catchup } : {}),
    unit_cpu: unitCpu.result(total)
  }
}

interface OutageTimes { downAt: number, upAt: number, caughtUpAt: number | null, backlogBytesAtUp: number, peakLagS: number }

/**
 * Kills InfluxDB `afterMs` after `t0`, restarts it `outageMs` later, then samples the gateways'
 * spool lag every 250 ms until it is under `caughtUpLagS`; caughtUpAt is null when that did not
 * happen within `catchupMaxMs` of the restart or the metrics could not be read (the caller then
 * ends the run at once).
 */
async function runOutage (spec: OutageSpec, env: BenchEnv, t0: number, progress: (line: string) => void, beforeKill: () => Promise<void>): Promise<OutageTimes> {
  const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, Math.max(0, ms)))
  const lagAndBacklog = async (): Promise<{ lag: number, bytes: number }> => {
    const ms = await Promise.all(env.httpUrls.map(u => readMetrics(u)))
    return { lag: Math.max(...ms.map(m => m.get('ambulink_spool_lag_seconds') ?? 0)), bytes: ms.reduce((a, m) => a + (m.get('ambulink_spool_pending_bytes') ?? 0), 0) }
  }
  await sleep(t0 + spec.afterMs - Date.now())
  const influx = env.influx!
  // The real-time CPU window ends here: InfluxDB's next process starts from zero.
  await beforeKill()
  influx.kill('SIGKILL')
  const downAt = wallNow()
  progress(`catch-up: InfluxDB killed; restarting it in ${spec.outageMs / 1000} s`)
  let peakLagS = 0
  while (wallNow() - downAt < spec.outageMs) {
    await sleep(Math.min(1000, spec.outageMs - (wallNow() - downAt)))
    peakLagS = Math.max(peakLagS, (await lagAndBacklog().catch(() => ({ lag: 0, bytes: 0 }))).lag)
  }
  await influx.restart()
  env.lowerInflux()
  const upAt = wallNow()
  const untilMs = Date.now() + spec.catchupMaxMs
  const { bytes: backlogBytesAtUp } = await lagAndBacklog().catch(() => ({ lag: 0, bytes: 0 }))
  progress(`catch-up: InfluxDB back after ${((upAt - downAt) / 1000).toFixed(1)} s with ${(backlogBytesAtUp / 1e6).toFixed(1)} MB spooled`)
  for (;;) {
    await sleep(250)
    let lag: number
    try {
      lag = (await lagAndBacklog()).lag
    } catch (err) {
      progress(`catch-up: metrics unreadable (${(err as Error).message}); giving up`)
      return { downAt, upAt, caughtUpAt: null, backlogBytesAtUp, peakLagS }
    }
    peakLagS = Math.max(peakLagS, lag)
    if (lag >= spec.caughtUpLagS && Date.now() > untilMs) {
      progress(`catch-up: spool lag still ${lag.toFixed(0)} s at the end of the run`)
      return { downAt, upAt, caughtUpAt: null, backlogBytesAtUp, peakLagS }
    }
    if (lag < spec.caughtUpLagS) {
      const caughtUpAt = wallNow()
      progress(`catch-up: caught up ${((caughtUpAt - upAt) / 1000).toFixed(1)} s after InfluxDB came back (peak lag ${peakLagS.toFixed(0)} s)`)
      return { downAt, upAt, caughtUpAt, backlogBytesAtUp, peakLagS }
    }
  }
}

/** The alert probes' clock (bench-alerts.ts). */
const wallNow = (): number => performance.timeOrigin + performance.now()

function pickSpread<T> (xs: readonly T[], n: number): T[] {
  if (xs.length <= n) return [...xs]
  return Array.from({ length: n }, (_, i) => xs[Math.floor(i * xs.length / n)]!)
}
