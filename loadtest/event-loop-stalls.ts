/**
 * Event-loop stalls of the gateway's main thread under a real-time fleet, and what runs during
 * each (issue 12, goal 2: an alert waits for whatever holds the loop). Each phase: a fresh
 * gateway (child process, fresh DATA_DIR; embedded storage or a private InfluxDB 1.x), the
 * simulator's 12-lead fleet from this process, alert probes in a process of their own
 * (bench-alert-process.ts: 4 events a second each). A module preloaded into the gateway
 * (`node --import`) measures, between two SIGUSR2 from this harness:
 *
 * - a 10 ms timer's lateness: a stall is a tick later than --threshold-ms; the loop was held
 *   from the tick before it (10 ms earlier than due) until the late tick ran;
 * - the event-loop delay histogram (monitorEventLoopDelay, 10 ms resolution);
 * - every GC (PerformanceObserver 'gc': start, duration, kind);
 * - a V8 CPU profile of the main thread (node:inspector, 1 ms sampling; --profile off without),
 *   on the same monotonic clock as the stalls (process.hrtime, V8's TimeTicks: CLOCK_MONOTONIC).
 *
 * Each stall is attributed from the profile samples inside it, by the most telling frame of
 * each sample's stack (CATEGORIES: the ST analysis, GC, unit snapshots, JSON, MQTT, …), and the
 * gaps between samples (the thread was not running: waiting for a CPU or in the kernel).
 *
 *   node --import tsx loadtest/event-loop-stalls.ts [--units 100] [--probes 8] [--store embedded,influx]
 *     [--baseline-root DIR] [--rounds 1] [--first-round 1] [--warmup-s 15] [--measure-s 40] [--threshold-ms 50] [--profile on|off] [--keep]
 *
 * With --baseline-root (another checkout, e.g. `git archive main | tar -x -C DIR` with
 * node_modules linked), each round runs both builds, the order alternating from round to
 * round. Prints progress on stderr and one JSON object on stdout.
 */
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { TRACE_CHANNELS } from '../gateway/trace.js'
import { Fleet } from '../simulator/fleet.js'
import { startGatewayProcess, type GatewayProcess } from '../testkit/gateway-process.js'
import { createDatabase, startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { waitFor } from '../testkit/proc.js'
import { AlertProbeProcess } from './bench-alert-process.js'
import type { AlertLatency } from './bench-alerts.js'
import { unitIds, writeBenchCredentials, type BenchCredentials } from './bench-credentials.js'

const { values } = parseArgs({
  options: {
    units: { type: 'string', default: '100' },
    probes: { type: 'string', default: '8' },
    store: { type: 'string', default: 'embedded,influx' },
    'baseline-root': { type: 'string' },
    rounds: { type: 'string', default: '1' },
    'first-round': { type: 'string', default: '1' },
    'warmup-s': { type: 'string', default: '15' },
    'measure-s': { type: 'string', default: '40' },
    'threshold-ms': { type: 'string', default: '50' },
    profile: { type: 'string', default: 'on' },
    keep: { type: 'boolean', default: false }
  }
})
const units = Number(values.units)
const probeCount = Number(values.probes)
const stores = values.store.split(',').map(s => s.trim()) as Array<'embedded' | 'influx'>
for (const s of stores) if (s !== 'embedded' && s !== 'influx') throw new Error(`--store: embedded and/or influx, got ${s}`)
const rounds = Number(values.rounds)
/** Round numbers start here: an even first round runs the current build first. */
const firstRound = Number(values['first-round'])
const warmupMs = Number(values['warmup-s']) * 1000
const measureMs = Number(values['measure-s']) * 1000
const thresholdMs = Number(values['threshold-ms'])
const profiling = values.profile !== 'off'
const builds: Array<{ name: string, root: string | undefined }> = values['baseline-root'] === undefined
  ? [{ name: 'current', root: undefined }]
  : [{ name: 'baseline', root: values['baseline-root'] }, { name: 'current', root: undefined }]
const log = (msg: string): void => { process.stderr.write(`event-loop-stalls: ${msg}\n`) }
const wallNow = (): number => performance.timeOrigin + performance.now()

/**
 * Preloaded into the gateway. Times are µs of process.hrtime (CLOCK_MONOTONIC), as V8's
 * profile timestamps. The first SIGUSR2 starts measuring, the second stops and writes the file.
 */
const HOOK = `
import { renameSync, writeFileSync } from 'node:fs'
import dc from 'node:diagnostics_channel'
import { Session } from 'node:inspector'
import { PerformanceObserver, monitorEventLoopDelay } from 'node:perf_hooks'
const out = process.env.STALL_OUT
const threshold = Number(process.env.STALL_THRESHOLD_MS)
const profiling = process.env.STALL_PROFILE === 'on'
const TICK = 10
const hr = () => Number(process.hrtime.bigint() / 1000n)
const perfOffsetUs = hr() - performance.now() * 1000
let on = false, expected = 0, timer = null, ticks = 0, frames = 0, t0 = 0, cpu0 = null, elu0 = null, session = null
let stalls = [], gcs = []
const hist = monitorEventLoopDelay({ resolution: 10 })
new PerformanceObserver(list => {
  if (!on) return
  for (const e of list.getEntries()) gcs.push({ t: Math.round(e.startTime * 1000 + perfOffsetUs), ms: e.duration, kind: e.detail?.kind ?? 0 })
}).observe({ entryTypes: ['gc'] })
dc.subscribe(${JSON.stringify(TRACE_CHANNELS.frameReceived)}, () => { if (on) frames++ })
function tick () {
  const now = hr()
  ticks++
  const late = (now - expected) / 1000
  if (late > threshold) stalls.push({ from: expected - TICK * 1000, to: now, ms: late })
  expected = now + TICK * 1000
  timer = setTimeout(tick, TICK)
}
function start () {
  on = true
  stalls = []; gcs = []; ticks = 0; frames = 0
  hist.reset(); hist.enable()
  cpu0 = process.cpuUsage(); elu0 = performance.eventLoopUtilization(); t0 = hr()
  if (profiling) {
    session = new Session()
    session.connect()
    session.post('Profiler.enable')
    session.post('Profiler.setSamplingInterval', { interval: 1000 })
    session.post('Profiler.start')
  }
  expected = hr() + TICK * 1000
  timer = setTimeout(tick, TICK)
}
function stop () {
  on = false
  clearTimeout(timer)
  hist.disable()
  const cpu = process.cpuUsage(cpu0)
  const summary = {
    t0, t1: hr(), ticks, frames, cpuMs: (cpu.user + cpu.system) / 1000, elu: performance.eventLoopUtilization(elu0).utilization,
    loop: { p50: hist.percentile(50) / 1e6, p99: hist.percentile(99) / 1e6, max: hist.max / 1e6 },
    rss: process.memoryUsage().rss, stalls, gcs
  }
  const write = profile => { writeFileSync(out + '.tmp', JSON.stringify({ ...summary, profile })); renameSync(out + '.tmp', out) }
  if (session === null) { write(null); return }
  session.post('Profiler.stop', (err, r) => { session.disconnect(); session = null; write(err ? null : r.profile) })
}
process.on('SIGUSR2', () => { if (on) stop(); else start() })
`
const HOOK_URL = `data:text/javascript,${encodeURIComponent(HOOK)}`

interface HookOutput {
  t0: number
  t1: number
  ticks: number
  frames: number
  cpuMs: number
  elu: number
  loop: { p50: number, p99: number, max: number }
  rss: number
  stalls: Array<{ from: number, to: number, ms: number }>
  gcs: Array<{ t: number, ms: number, kind: number }>
  profile: CpuProfile | null
}
interface CpuProfile {
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string }, children?: number[] }>
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/**
 * What a profile sample is attributed to: the first rule (in this order) that any frame of its
 * stack matches, so the ST analysis called from the MQTT handler counts as the ST analysis, and a
 * JSON.stringify inside the unit snapshot save as that save.
 */
const CATEGORIES: Array<[string, (fn: string, url: string) => boolean]> = [
  ['gc', fn => fn === '(garbage collector)'],
  ['st_analysis', (fn, url) => url.includes('/alerts/st-measure') || (url.includes('/alerts/ecg-stemi') && fn === 'measure')],
  ['ecg_ring_and_snapshot', (_fn, url) => url.includes('/alerts/ecg-stemi') || url.includes('/alerts/ecg-snapshot')],
  ['unit_snapshot_save', (_fn, url) => url.includes('/alerts/state-store') || url.includes('/alerts/ward')],
  ['alert_journal', (_fn, url) => url.includes('/alerts/journal')],
  ['alert_tick', (fn, url) => url.includes('/alerts/engine') && fn === 'tick'],
  ['metrics', (_fn, url) => url.includes('/gateway/metrics') || url.includes('prom-client')],
  ['live_hub_dashboard', (_fn, url) => url.includes('/streams/live/') || url.includes('/gateway/dashboard/')],
  ['sink_main_thread', (_fn, url) => url.includes('/storage/sink-thread') || url.includes('/storage/influx-sink') || url.includes('/storage/sink-job')],
  ['spool', (_fn, url) => url.includes('/streams/storage/')],
  ['alerts_other', (_fn, url) => url.includes('/streams/alerts/') || url.includes('/gateway/alert-wiring')],
  ['decode', (_fn, url) => url.includes('/decoders/')],
  ['logger', (_fn, url) => url.includes('/pino') || url.includes('/gateway/logger')],
  ['mqtt', (_fn, url) => url.includes('/aedes') || url.includes('/mqtt-packet') || url.includes('/mqemitter') || url.includes('/gateway/mqtt/')],
  ['gateway_other', (_fn, url) => url.includes('/gateway/') || url.includes('/streams/')],
  ['json', (fn, url) => url === '' && (fn === 'stringify' || fn === 'parse')],
  ['node_internals', (_fn, url) => url.startsWith('node:')],
  ['native_program', fn => fn === '(program)'],
  ['idle', fn => fn === '(idle)']
]
const OTHER = CATEGORIES.length

interface Timeline { ts: number[], cat: Uint8Array, leaf: string[], names: string[] }

/** Each sample's time (µs, monotonic), category (index into CATEGORIES, OTHER for none) and leaf function. */
function timelineOf (p: CpuProfile): Timeline {
  const byId = new Map(p.nodes.map(n => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const memo = new Map<number, number>()
  const catOf = (id: number): number => {
    const known = memo.get(id)
    if (known !== undefined) return known
    const n = byId.get(id)!
    const own = CATEGORIES.findIndex(([, match]) => match(n.callFrame.functionName, n.callFrame.url))
    const up = parent.has(id) ? catOf(parent.get(id)!) : OTHER
    const c = Math.min(own < 0 ? OTHER : own, up)
    memo.set(id, c)
    return c
  }
  const ts: number[] = []
  const cat = new Uint8Array(p.samples.length)
  const leaf: string[] = []
  let t = p.startTime
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!
    ts.push(t)
    cat[i] = catOf(p.samples[i]!)
    const f = byId.get(p.samples[i]!)!.callFrame
    leaf.push(`${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}`)
  }
  return { ts, cat, leaf, names: [...CATEGORIES.map(([n]) => n), 'other'] }
}

interface StallAttribution {
  at_s: number
  ms: number
  /** ms per category, from the samples in the stall (each lasting until the next sample). */
  by_category_ms: Record<string, number>
  /** Longest-running leaf functions in it. */
  top_functions: Array<[string, number]>
  /** Gaps between samples longer than 3 ms, summed: the thread was not running (CPU wait, kernel). */
  sample_gaps_ms: number
  gc_ms: number
  cause: string
}

function attribute (o: HookOutput, tl: Timeline | null): StallAttribution[] {
  return o.stalls.map(s => {
    const by = new Map<string, number>()
    const fns = new Map<string, number>()
    let gaps = 0
    if (tl !== null) {
      let i = lowerBound(tl.ts, s.from)
      // The sample in progress when the window opened counts from the window's start.
      if (i > 0) i--
      for (; i < tl.ts.length && tl.ts[i]! < s.to; i++) {
        const a = Math.max(tl.ts[i]!, s.from)
        const b = Math.min(tl.ts[i + 1] ?? s.to, s.to)
        if (b <= a) continue
        const ms = (b - a) / 1000
        by.set(tl.names[tl.cat[i]!]!, (by.get(tl.names[tl.cat[i]!]!) ?? 0) + ms)
        fns.set(tl.leaf[i]!, (fns.get(tl.leaf[i]!) ?? 0) + ms)
        if (b - a > 3000) gaps += (b - a - 1000) / 1000
      }
    }
    const gcMs = o.gcs.filter(g => g.t < s.to && g.t + g.ms * 1000 > s.from).reduce((a, g) => a + Math.min(g.t + g.ms * 1000, s.to) / 1000 - Math.max(g.t, s.from) / 1000, 0)
    const byCategory = Object.fromEntries([...by].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, r1(v)]))
    const cause = tl === null ? (gcMs > s.ms / 2 ? 'gc' : 'unknown (no profile)') : (Object.keys(byCategory)[0] ?? 'no samples')
    return {
      at_s: r1((s.from - o.t0) / 1e6),
      ms: r1(s.ms),
      by_category_ms: byCategory,
      top_functions: [...fns].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k, v]) => [k, r1(v)] as [string, number]),
      sample_gaps_ms: r1(gaps),
      gc_ms: r1(gcMs),
      cause
    }
  })
}

/**
 * Per category: ms over the whole window (samples lasting until the next one, so time the thread
 * waited for a CPU counts too), and CPU ms from the sample count (the sampler takes one sample per
 * 1 ms the thread runs; a thread waiting for a CPU is not sampled): in all, and the most in any
 * 250 ms, i.e. how bursty the work is whatever the machine's load.
 */
function categoryLoad (tl: Timeline, from: number, to: number): Record<string, CategoryLoad> {
  const total = new Map<number, number>()
  const samples = new Map<number, number>()
  const bins = new Map<number, Map<number, number>>()
  for (let i = 0; i < tl.ts.length - 1; i++) {
    if (tl.ts[i]! < from || tl.ts[i]! >= to) continue
    const c = tl.cat[i]!
    total.set(c, (total.get(c) ?? 0) + (tl.ts[i + 1]! - tl.ts[i]!) / 1000)
    samples.set(c, (samples.get(c) ?? 0) + 1)
    const bin = Math.floor((tl.ts[i]! - from) / 250_000)
    let m = bins.get(c)
    if (m === undefined) bins.set(c, m = new Map())
    m.set(bin, (m.get(bin) ?? 0) + 1)
  }
  return Object.fromEntries([...total].sort((a, b) => b[1] - a[1]).map(([c, ms]) => [tl.names[c]!, {
    total_ms: r1(ms),
    cpu_ms: samples.get(c)!,
    max_cpu_ms_in_250ms: Math.max(...bins.get(c)!.values())
  }]))
}

interface CategoryLoad { total_ms: number, cpu_ms: number, max_cpu_ms_in_250ms: number }

interface Phase {
  build: string
  store: 'embedded' | 'influx'
  round: number
  units: number
  measure_s: number
  frames_per_s: number
  gateway_cpu_ms_per_s: number
  event_loop_utilisation: number
  loop_delay_ms: { p50: number, p99: number, max: number }
  stalls: { threshold_ms: number, count: number, over_100ms: number, over_250ms: number, max_ms: number, total_ms: number, per_minute: number }
  /** Per dominant cause: how many stalls, and their ms. */
  stall_causes: Record<string, { stalls: number, ms: number }>
  /** ms of each category inside stalls, all stalls summed. */
  in_stalls_ms: Record<string, number>
  gc: { count: number, major: number, max_ms: number, total_ms: number }
  category_load: Record<string, CategoryLoad> | null
  publish_to_alert_ms: AlertLatency
  alerts_unmatched: number
  puback_ms: { p50: number, p99: number }
  loadavg_1m: number
  /** The profile's start − the first SIGUSR2's, ms: both clocks are CLOCK_MONOTONIC, so a few ms at most. */
  profile_start_offset_ms: number | null
  /** Every stall, longest first (at most 30). */
  stall_list: StallAttribution[]
  gateway_exited_during_phase: string | null
}

const work = await mkdtemp(join(tmpdir(), 'ambulink-stalls-'))
const influx: InfluxServer | null = stores.includes('influx') ? await startInfluxDB({ logLevel: 'warn' }) : null
const phases: Phase[] = []
const loadStart = loadavg()[0]!
try {
  const probeIds = unitIds('probe', probeCount)
  const fleetIds = unitIds('amb', units - probeCount)
  const credsDir = join(work, 'creds')
  const creds = await writeBenchCredentials(credsDir, [...probeIds, ...fleetIds], 1024)
  let n = 0
  for (let round = firstRound; round < firstRound + rounds; round++) {
    // Alternating: no build always runs first.
    const order = round % 2 === 1 ? builds : [...builds].reverse()
    for (const store of stores) {
      for (const b of order) {
        n++
        log(`round ${round}, ${store}, ${b.name}, ${units} units`)
        const p = await runPhase(b, store, round, `p${n}`, credsDir, creds, probeIds, fleetIds)
        phases.push(p)
        const { stall_list: list, ...head } = p
        log(`phase ${JSON.stringify(head)}`)
        log(`  longest stalls: ${JSON.stringify(list.slice(0, 5))}`)
      }
    }
  }
} finally {
  await influx?.stop()
  if (values.keep) log(`work folder kept: ${work}`)
  else await rm(work, { recursive: true, force: true })
}

process.stdout.write(JSON.stringify({
  units,
  probes: probeCount,
  warmup_s: warmupMs / 1000,
  measure_s: measureMs / 1000,
  threshold_ms: thresholdMs,
  profile: profiling,
  loadavg_1m_start: r1(loadStart),
  loadavg_1m_end: r1(loadavg()[0]!),
  phases
}) + '\n')

async function runPhase (
  b: { name: string, root: string | undefined }, store: 'embedded' | 'influx', round: number, db: string,
  credsDir: string, creds: BenchCredentials, probeIds: string[], fleetIds: string[]
): Promise<Phase> {
  const dataDir = join(work, db)
  const outFile = join(work, `${db}.stalls.json`)
  let gw: GatewayProcess | null = null
  let probes: AlertProbeProcess | null = null
  let fleet: Fleet | null = null
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    await symlink(join(credsDir, 'credentials.json'), join(dataDir, 'credentials.json'))
    const storeEnv: Record<string, string> = {}
    if (store === 'influx') {
      await createDatabase(influx!.url, db)
      Object.assign(storeEnv, { INFLUX_URL: influx!.url, INFLUX_API: 'v1', INFLUX_DB: db })
    }
    gw = await startGatewayProcess({
      dataDir,
      root: b.root,
      nodeArgs: ['--import', HOOK_URL],
      startTimeoutMs: 180_000,
      env: { ...storeEnv, LOG_LEVEL: 'info', STALL_OUT: outFile, STALL_THRESHOLD_MS: String(thresholdMs), STALL_PROFILE: profiling ? 'on' : 'off' }
    })
    const g = gw
    let exited: string | null = null
    void g.exited.then(i => { exited = JSON.stringify(i) })
    const url = `mqtt://127.0.0.1:${g.ports.mqtt}`
    probes = new AlertProbeProcess({ url, clinicianUrl: url, units: probeIds, token: creds.token, clinician: creds.clinician, flipEveryFrames: 1, log: msg => { log(`probe: ${msg}`) } })
    await probes.connect()
    fleet = new Fleet({ url, units: fleetIds.map(unitId => ({ unitId, token: creds.token })), startTimeoutMs: 120_000, drainTimeoutMs: 30_000, log: msg => { log(`fleet: ${msg}`) } })
    await fleet.start()
    probes.start(fleet.startedAtMs)
    await sleep(warmupMs)
    const from = wallNow()
    g.signal('SIGUSR2')
    await sleep(measureMs)
    g.signal('SIGUSR2')
    const until = wallNow()
    const load = loadavg()[0]!
    const text = await waitFor(async () => await readFile(outFile, 'utf8').catch(() => undefined), { timeoutMs: 120_000, intervalMs: 250, what: 'the gateway to write its stall record' })
    await probes.stop(5000)
    const alerts = probes.summary(from, until)
    const unmatched = probes.unmatched
    probes = null
    const stats = await fleet.stop({ drain: false })
    fleet = null
    await g.stop()
    gw = null
    const o = JSON.parse(text) as HookOutput
    const tl = o.profile === null ? null : timelineOf(o.profile)
    const attributed = attribute(o, tl)
    const wallS = (o.t1 - o.t0) / 1e6
    const causes: Record<string, { stalls: number, ms: number }> = {}
    const inStalls: Record<string, number> = {}
    for (const s of attributed) {
      const c = causes[s.cause] ??= { stalls: 0, ms: 0 }
      c.stalls++
      c.ms = r1(c.ms + s.ms)
      for (const [k, v] of Object.entries(s.by_category_ms)) inStalls[k] = r1((inStalls[k] ?? 0) + v)
    }
    const ms = o.stalls.map(s => s.ms)
    return {
      build: b.name,
      store,
      round,
      units,
      measure_s: r1(wallS),
      frames_per_s: Math.round(o.frames / wallS),
      gateway_cpu_ms_per_s: r1(o.cpuMs / wallS),
      event_loop_utilisation: Math.round(o.elu * 1000) / 1000,
      loop_delay_ms: { p50: r1(o.loop.p50), p99: r1(o.loop.p99), max: r1(o.loop.max) },
      stalls: {
        threshold_ms: thresholdMs,
        count: ms.length,
        over_100ms: ms.filter(x => x > 100).length,
        over_250ms: ms.filter(x => x > 250).length,
        max_ms: r1(Math.max(0, ...ms)),
        total_ms: r1(ms.reduce((a, x) => a + x, 0)),
        per_minute: r1(ms.length / wallS * 60)
      },
      stall_causes: causes,
      in_stalls_ms: inStalls,
      gc: {
        count: o.gcs.length,
        // perf_hooks constants: NODE_PERFORMANCE_GC_MAJOR = 4 (mark-compact).
        major: o.gcs.filter(x => x.kind === 4).length,
        max_ms: r1(Math.max(0, ...o.gcs.map(x => x.ms))),
        total_ms: r1(o.gcs.reduce((a, x) => a + x.ms, 0))
      },
      category_load: tl === null ? null : categoryLoad(tl, o.t0, o.t1),
      publish_to_alert_ms: alerts,
      alerts_unmatched: unmatched,
      puback_ms: { p50: r1(stats.ackLatencyMs.p50), p99: r1(stats.ackLatencyMs.p99) },
      loadavg_1m: r1(load),
      profile_start_offset_ms: o.profile === null ? null : r1((o.profile.startTime - o.t0) / 1000),
      stall_list: attributed.sort((x, y) => y.ms - x.ms).slice(0, 30),
      gateway_exited_during_phase: exited
    }
  } finally {
    await probes?.stop(1000)
    await fleet?.stop({ drain: false })
    await gw?.stop()
  }
}

function lowerBound (xs: number[], x: number): number {
  let lo = 0
  let hi = xs.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (xs[mid]! < x) lo = mid + 1
    else hi = mid
  }
  return lo
}

function sleep (ms: number): Promise<void> { return new Promise(resolve => setTimeout(resolve, ms)) }
function r1 (x: number): number { return Math.round(x * 10) / 10 }
