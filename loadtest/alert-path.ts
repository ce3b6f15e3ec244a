/**
 * Where publish → alert time goes on a box shared with InfluxDB (issue 12, goal 2), and what CPU
 * priority buys. Each phase: a fresh gateway (child process, fresh DATA_DIR and database), the
 * real-time 12-lead fleet and alert probes (loadtest/bench-alerts.ts: a clinician on `alerts/#`
 * timestamps each raised/cleared event), one InfluxDB for the run; variants alternate within
 * each round (rotated from round to round) so a change of the machine's load falls on all.
 *
 * A variant sets the sink worker's priority (SINK_WORKER_NICE) and InfluxDB's (every influxd
 * thread reniced to the harness's nice + N for the phase, back afterwards). Both are nice
 * increments over the harness's own nice value, capped at 19: run the harness at a nice value
 * that leaves room (the JSON reports the values applied, read back from /proc).
 *
 * Stages of each alert, from wall-clock stamps (one clock: performance.timeOrigin + now() in
 * every process) — the probe's publish, then in the gateway (a preloaded subscriber to its
 * trace channels, gateway/trace.ts, and to socket writes): its MQTT handler, the alert's
 * emission by the engine, the write of `alerts/<unit>` to the clinician's socket, aedes'
 * delivery callback; and the clinician's receipt. Also per phase: each thread group's CPU and
 * run-queue wait (schedstat: time runnable but waiting for a CPU), the gateway's event-loop
 * delay, PUBACK and publish → stored latency.
 *
 *   node --import tsx loadtest/alert-path.ts [--units 100,200] [--variants base=0/0,sink=10/0,influx=0/10,both=10/10]
 *     [--rounds 3] [--probes 4] [--warmup-s 10] [--measure-s 30] [--keep]
 *
 * Prints progress on stderr and one JSON object on stdout.
 */
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { TRACE_CHANNELS } from '../gateway/trace.js'
import { Fleet } from '../simulator/fleet.js'
import { startGatewayProcess, type GatewayProcess } from '../testkit/gateway-process.js'
import { createDatabase, startInfluxDB } from '../testkit/influxdb.js'
import { percentiles, StoredLatencyProbe } from '../testkit/stored.js'
import { AlertProbes } from './bench-alerts.js'
import { unitIds, writeBenchCredentials, type BenchCredentials } from './bench-credentials.js'
import { ownNice, reniceAll, schedDelta, threadsOf, type ThreadSched } from './proc-sched.js'

const { values } = parseArgs({
  options: {
    units: { type: 'string', default: '100,200' },
    variants: { type: 'string', default: 'base=0/0,sink=10/0,influx=0/10,both=10/10' },
    rounds: { type: 'string', default: '3' },
    probes: { type: 'string', default: '4' },
    'warmup-s': { type: 'string', default: '10' },
    'measure-s': { type: 'string', default: '30' },
    keep: { type: 'boolean', default: false }
  }
})
interface Variant { name: string, sinkNice: number, influxNice: number }
const variants: Variant[] = values.variants.split(',').map(v => {
  const m = /^([\w-]+)=(\d+)\/(\d+)$/.exec(v.trim())
  if (m === null) throw new Error(`--variants: name=SINK/INFLUX (nice increments), got ${JSON.stringify(v)}`)
  return { name: m[1]!, sinkNice: Number(m[2]), influxNice: Number(m[3]) }
})
const unitCounts = values.units.split(',').map(Number)
const rounds = Number(values.rounds)
const probeCount = Number(values.probes)
const warmupMs = Number(values['warmup-s']) * 1000
const measureMs = Number(values['measure-s']) * 1000
const log = (msg: string): void => { process.stderr.write(`alert-path: ${msg}\n`) }
const wallNow = (): number => performance.timeOrigin + performance.now()
const PROBE_PREFIX = 'probe-'

/**
 * Preloaded into each gateway (`node --import`): subscribes to the trace channels and stamps
 * writes of `alerts/probe-…` to sockets (the topic reaches net.Socket.write as a string or
 * inside a buffer), and the main event-loop delay each second; appends JSON lines to a file.
 */
const HOOK = `
import dc from 'node:diagnostics_channel'
import net from 'node:net'
import { appendFileSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
const file = process.env.ALERT_TRACE_FILE
const prefix = process.env.ALERT_TRACE_PREFIX
const now = () => performance.timeOrigin + performance.now()
let rows = []
const flush = () => { if (rows.length > 0) { appendFileSync(file, rows.map(r => JSON.stringify(r)).join('\\n') + '\\n'); rows = [] } }
dc.subscribe(${JSON.stringify(TRACE_CHANNELS.frameReceived)}, m => { if (m.unit.startsWith(prefix)) rows.push({ k: 'h', u: m.unit, t: now() }) })
dc.subscribe(${JSON.stringify(TRACE_CHANNELS.alertEmitted)}, m => { if (m.unit.startsWith(prefix)) rows.push({ k: 'e', u: m.unit, y: m.type, t: now() }) })
dc.subscribe(${JSON.stringify(TRACE_CHANNELS.alertDelivered)}, m => { if (m.unit.startsWith(prefix)) rows.push({ k: 'd', u: m.unit, y: m.type, t: now() }) })
const topic = 'alerts/' + prefix
const unitRe = /alerts\\/([A-Za-z0-9_-]+)/
const write = net.Socket.prototype.write
net.Socket.prototype.write = function (chunk, ...rest) {
  if (typeof chunk === 'string' ? chunk.startsWith(topic) : (Buffer.isBuffer(chunk) && chunk.length < 65536 && chunk.includes(topic))) {
    const m = unitRe.exec(typeof chunk === 'string' ? chunk : chunk.toString('latin1'))
    if (m !== null) rows.push({ k: 'w', u: m[1], t: now() })
  }
  return write.call(this, chunk, ...rest)
}
const h = monitorEventLoopDelay({ resolution: 20 })
h.enable()
setInterval(() => { rows.push({ k: 'l', t: now(), p99: h.percentile(99) / 1e6, max: h.max / 1e6 }); h.reset(); flush() }, 1000).unref()
process.on('exit', flush)
`
const HOOK_URL = `data:text/javascript,${encodeURIComponent(HOOK)}`

interface Stat { p50: number, p99: number, max: number, count: number }
interface Phase {
  variant: string
  units: number
  round: number
  /** Nice values applied, read back: gateway main thread, sink worker thread, InfluxDB's threads (min–max). */
  nice: { gateway: number, sink_worker: number | null, influx: string }
  publish_to_alert_ms: Stat
  /** Per stage, ms (events whose stages were all found in the gateway's trace). */
  stages_ms: Record<Stage, Stat>
  /** Events over 50 ms: mean ms in each stage. */
  late_events: { count: number, mean_stage_ms: Record<Stage, number> }
  puback_ms: { p50: number, p99: number }
  publish_to_stored_ms: Stat
  /** CPU and run-queue wait, s per s: gateway main thread, sink worker, other gateway threads, InfluxDB, this harness (fleet, probes). */
  sched: Record<'gateway_main' | 'sink_worker' | 'gateway_other' | 'influx' | 'harness_main' | 'harness_other', { cpu: number, wait: number }>
  gateway_loop_delay_ms: { p99_median: number, p99_max: number, max: number }
  harness_loop_delay_ms: { p99: number, max: number }
  loadavg_1m: number
  gateway_exited_during_phase: string | null
}
type Stage = 'publish_to_handler' | 'handler_to_emitted' | 'emitted_to_socket_write' | 'emitted_to_delivered' | 'socket_write_to_receipt'
const STAGES: Stage[] = ['publish_to_handler', 'handler_to_emitted', 'emitted_to_socket_write', 'emitted_to_delivered', 'socket_write_to_receipt']

const harnessNice = ownNice()
const work = await mkdtemp(join(tmpdir(), 'ambulink-alert-path-'))
const influx = await startInfluxDB({ logLevel: 'warn' })
const phases: Phase[] = []
const loadStart = loadavg()[0]!
try {
  const maxUnits = Math.max(...unitCounts)
  const probeIds = unitIds(PROBE_PREFIX.slice(0, -1), probeCount)
  const fleetIds = unitIds('amb', maxUnits - probeCount)
  const credsDir = join(work, 'creds')
  const creds = await writeBenchCredentials(credsDir, [...probeIds, ...fleetIds], 1024)
  let n = 0
  for (let round = 1; round <= rounds; round++) {
    for (const units of unitCounts) {
      // Rotated each round: no variant always runs first (after the previous phase's drain).
      const order = variants.map((_v, i) => variants[(i + round - 1) % variants.length]!)
      for (const v of order) {
        n++
        log(`round ${round}, ${units} units, ${v.name} (sink +${v.sinkNice}, InfluxDB +${v.influxNice})`)
        const p = await runPhase(v, units, round, `p${n}`, credsDir, creds, probeIds, fleetIds.slice(0, units - probeCount))
        phases.push(p)
        // Each phase also whole on stderr: a run cut short keeps what it measured.
        log(`phase ${JSON.stringify(p)}`)
        log(`  alert p50 ${p.publish_to_alert_ms.p50} p99 ${p.publish_to_alert_ms.p99} ms (${p.publish_to_alert_ms.count}); stages p99 ${STAGES.map(s => `${s} ${p.stages_ms[s].p99}`).join(', ')}; gateway main wait ${p.sched.gateway_main.wait} s/s; stored p99 ${p.publish_to_stored_ms.p99} ms; PUBACK p99 ${p.puback_ms.p99} ms`)
      }
    }
  }
} finally {
  await influx.stop()
  if (values.keep === true) log(`work folder kept: ${work}`)
  else await rm(work, { recursive: true, force: true })
}

const summary = unitCounts.flatMap(units => variants.map(v => {
  const ps = phases.filter(p => p.units === units && p.variant === v.name)
  return {
    units,
    variant: v.name,
    phases: ps.length,
    alert_p50_ms_median: median(ps.map(p => p.publish_to_alert_ms.p50)),
    alert_p99_ms_median: median(ps.map(p => p.publish_to_alert_ms.p99)),
    stored_p99_ms_median: median(ps.map(p => p.publish_to_stored_ms.p99)),
    puback_p99_ms_median: median(ps.map(p => p.puback_ms.p99)),
    gateway_main_wait_median: median(ps.map(p => p.sched.gateway_main.wait)),
    stage_p99_ms_median: Object.fromEntries(STAGES.map(s => [s, median(ps.map(p => p.stages_ms[s].p99))]))
  }
}))
process.stdout.write(JSON.stringify({ harness_nice: harnessNice, loadavg_1m_start: round2(loadStart), loadavg_1m_end: round2(loadavg()[0]!), warmup_s: warmupMs / 1000, measure_s: measureMs / 1000, summary, phases }) + '\n')

async function runPhase (v: Variant, units: number, round: number, db: string, credsDir: string, creds: BenchCredentials, probeIds: string[], fleetIds: string[]): Promise<Phase> {
  const dataDir = join(work, db)
  const traceFile = join(work, `${db}.trace.jsonl`)
  let gw: GatewayProcess | null = null
  const influxNice = Math.min(19, harnessNice + v.influxNice)
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    await symlink(join(credsDir, 'credentials.json'), join(dataDir, 'credentials.json'))
    await createDatabase(influx.url, db)
    gw = await startGatewayProcess({
      dataDir,
      nodeArgs: ['--import', HOOK_URL],
      startTimeoutMs: 180_000,
      env: { INFLUX_URL: influx.url, INFLUX_API: 'v1', INFLUX_DB: db, LOG_LEVEL: 'info', SINK_WORKER_NICE: String(v.sinkNice), ALERT_TRACE_FILE: traceFile, ALERT_TRACE_PREFIX: PROBE_PREFIX }
    })
    const g = gw
    let exited: string | null = null
    void g.exited.then(i => { exited = JSON.stringify(i) })
    const renice = reniceAll(influx.pid, influxNice)
    if (renice.error !== null) log(`  renicing InfluxDB: ${renice.error}`)
    const url = `mqtt://127.0.0.1:${g.ports.mqtt}`
    const events: Array<{ unit: string, type: string, sentAt: number, receivedAt: number }> = []
    const fleet = new Fleet({ url, units: fleetIds.map(unitId => ({ unitId, token: creds.token })), startTimeoutMs: 120_000, drainTimeoutMs: 30_000, log: msg => { log(`fleet: ${msg}`) } })
    const probes = new AlertProbes({ url, clinicianUrl: url, units: probeIds, token: creds.token, clinician: creds.clinician, log: msg => { log(`probe: ${msg}`) }, onEvent: e => { events.push(e) } })
    await probes.connect()
    await fleet.start()
    const t0 = Date.now()
    probes.start(fleet.startedAtMs)
    const sampled = [0, 1, 2, 3].map(i => fleetIds[Math.floor(i * fleetIds.length / 4)]!).map(unitId => ({ unitId, startMs: fleet.startedAtMs }))
    const stored = new StoredLatencyProbe(influx.url, db, sampled)
    stored.start()
    await new Promise(resolve => setTimeout(resolve, warmupMs))
    const sinkTid = await sinkWorkerTid(g)
    const from = wallNow()
    const before = { gw: threadsOf(g.pid), influx: threadsOf(influx.pid), harness: threadsOf(process.pid) }
    const loop = monitorEventLoopDelay({ resolution: 20 })
    loop.enable()
    await new Promise(resolve => setTimeout(resolve, measureMs))
    loop.disable()
    const until = wallNow()
    const after = { gw: threadsOf(g.pid), influx: threadsOf(influx.pid), harness: threadsOf(process.pid) }
    const wallS = (until - from) / 1000
    const load = loadavg()[0]!
    await probes.stop(5000)
    const stats = await fleet.stop({ drain: false })
    await stored.stop()
    const nice = { gateway: niceOf(after.gw, g.pid), sink_worker: sinkTid === null ? null : niceOf(after.gw, sinkTid), influx: niceRange(after.influx) }
    // InfluxDB back to the harness's priority for the next phase (lowering nice needs CAP_SYS_NICE).
    const back = reniceAll(influx.pid, harnessNice)
    if (back.error !== null) log(`  InfluxDB's priority could not be restored (${back.error}): later phases are affected`)
    await g.stop()
    gw = null
    const trace = (await readFile(traceFile, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(l => JSON.parse(l) as TraceRow)
    const inWindow = events.filter(e => e.receivedAt >= from && e.receivedAt <= until)
    const staged = stagesOf(inWindow, trace)
    const loops = trace.filter(r => r.k === 'l' && r.t >= from && r.t <= until)
    return {
      variant: v.name,
      units,
      round,
      nice,
      publish_to_alert_ms: percentiles(inWindow.map(e => e.receivedAt - e.sentAt)),
      stages_ms: Object.fromEntries(STAGES.map(s => [s, percentiles(staged.map(x => x[s]))])) as Record<Stage, Stat>,
      late_events: lateEvents(staged),
      puback_ms: { p50: round2(stats.ackLatencyMs.p50), p99: round2(stats.ackLatencyMs.p99) },
      publish_to_stored_ms: stored.summary(t0 + warmupMs, Date.now()),
      sched: {
        gateway_main: schedDelta(before.gw, after.gw, wallS, tid => tid === g.pid),
        sink_worker: schedDelta(before.gw, after.gw, wallS, tid => tid === sinkTid),
        gateway_other: schedDelta(before.gw, after.gw, wallS, tid => tid !== g.pid && tid !== sinkTid),
        influx: schedDelta(before.influx, after.influx, wallS),
        harness_main: schedDelta(before.harness, after.harness, wallS, tid => tid === process.pid),
        harness_other: schedDelta(before.harness, after.harness, wallS, tid => tid !== process.pid)
      },
      gateway_loop_delay_ms: { p99_median: round2(median(loops.map(r => r.p99!))), p99_max: round2(Math.max(...loops.map(r => r.p99!))), max: round2(Math.max(...loops.map(r => r.max!))) },
      harness_loop_delay_ms: { p99: round2(loop.percentile(99) / 1e6), max: round2(loop.max / 1e6) },
      loadavg_1m: round2(load),
      gateway_exited_during_phase: exited
    }
  } finally {
    await gw?.stop()
  }
}

interface TraceRow { k: 'h' | 'e' | 'd' | 'w' | 'l', u?: string, y?: string, t: number, p99?: number, max?: number }

/**
 * Each event's stages: its emission is the first `e` row of its unit and type after the publish;
 * the handler stamp is the last `h` of that unit before it (the engine evaluates a frame
 * synchronously in the handler's turn), the socket write the first `w` of that unit after it,
 * the delivery the first `d` of its unit and type after it. Events with a stage missing are
 * left out.
 */
function stagesOf (events: Array<{ unit: string, type: string, sentAt: number, receivedAt: number }>, trace: TraceRow[]): Array<Record<Stage, number>> {
  const out: Array<Record<Stage, number>> = []
  for (const ev of events) {
    const e = trace.find(r => r.k === 'e' && r.u === ev.unit && r.y === ev.type && r.t >= ev.sentAt - 5 && r.t <= ev.receivedAt + 5)
    if (e === undefined) continue
    const h = trace.findLast(r => r.k === 'h' && r.u === ev.unit && r.t <= e.t)
    const w = trace.find(r => r.k === 'w' && r.u === ev.unit && r.t >= e.t)
    const d = trace.find(r => r.k === 'd' && r.u === ev.unit && r.y === ev.type && r.t >= e.t)
    if (h === undefined || w === undefined || d === undefined) continue
    out.push({
      publish_to_handler: h.t - ev.sentAt,
      handler_to_emitted: e.t - h.t,
      emitted_to_socket_write: w.t - e.t,
      emitted_to_delivered: d.t - e.t,
      socket_write_to_receipt: ev.receivedAt - w.t
    })
  }
  return out
}

function lateEvents (staged: Array<Record<Stage, number>>): Phase['late_events'] {
  const late = staged.filter(x => x.publish_to_handler + x.handler_to_emitted + x.emitted_to_socket_write + x.socket_write_to_receipt > 50)
  const mean = (s: Stage): number => round2(late.reduce((a, x) => a + x[s], 0) / Math.max(1, late.length))
  return { count: late.length, mean_stage_ms: Object.fromEntries(STAGES.map(s => [s, mean(s)])) as Record<Stage, number> }
}

/** The sink worker's thread id, from the line the gateway logs when the worker is up. */
async function sinkWorkerTid (g: GatewayProcess): Promise<number | null> {
  const m = /"tid":(\d+)[^\n]*InfluxDB sink worker thread/.exec(await g.logs())
  return m === null ? null : Number(m[1])
}

function niceOf (threads: ThreadSched[], tid: number): number {
  return threads.find(t => t.tid === tid)?.nice ?? Number.NaN
}

function niceRange (threads: ThreadSched[]): string {
  const ns = threads.map(t => t.nice)
  return ns.length === 0 ? 'n/a' : `${Math.min(...ns)}–${Math.max(...ns)}`
}

function round2 (x: number): number { return Math.round(x * 100) / 100 }

/** The median (the lower one of an even count); NaN for none. */
function median (xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)]!
}
