/**
 * Memory per unit (issue 12, goal 4): a gateway child process (`ambulink serve`, embedded storage
 * by default, or a real InfluxDB with --influx 1) takes 0, N and 2N real-time 12-lead units
 * (the simulated fleet: 500 Hz ECG in 250 ms frames, numerics and position at 1 Hz, MQTT QoS 1).
 * At each step, after a settle time, it samples RSS (/proc) and the V8 figures the gateway's
 * /metrics exposes (heap used and total per space, external, GC counts) every 5 s over the second
 * half of the settle time (their mean is the step's figure), and how far the gateway kept up
 * (frames acknowledged ÷ frames due). With --snapshots 1, at N and 2N it then takes a heap
 * snapshot (--heapsnapshot-signal: it runs a full GC first), samples again (live data, not
 * garbage awaiting collection), and sums the snapshot's self sizes by constructor. Writing a
 * snapshot raises the process' RSS for good: read RSS slopes from a --snapshots 0 run. (prom-client's
 * default metrics have no process.memoryUsage().arrayBuffers: typed-array backing stores count
 * in `external`.)
 *
 * The headline is the marginal cost of a unit: the slope between the N and 2N steps (the
 * process' fixed base does not count against a unit), with 0 → N and RSS ÷ units beside it. The
 * snapshot difference between N and 2N, divided by N, attributes the per-unit heap.
 * Prints JSON (also written to --out when given).
 *
 *   node --import tsx loadtest/memory-per-unit.ts [--units 40] [--settle-s 60] [--snapshots 1]
 *                                                 [--influx 0] [--top 25] [--out mem.json]
 *   extra gateway node flags: MEM_NODE_ARGS='--max-semi-space-size=4'; extra gateway environment:
 *   MEM_ENV='MALLOC_ARENA_MAX=2'; keep the snapshots: MEM_KEEP_SNAPSHOTS=<dir>; run another
 *   checkout's gateway (before/after in one run): MEM_ROOT=<dir>
 */
import { createReadStream } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Fleet } from '../simulator/fleet.js'
import { metricValue, numberFlags, registerUnits, scrape, sleep } from '../testkit/fault-harness.js'
import { startGatewayProcess, type GatewayProcess } from '../testkit/gateway-process.js'
import { createDatabase, startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'

const o = numberFlags(process.argv.slice(2).filter(a => !a.startsWith('--out')), { units: 40, settleS: 60, snapshots: 1, influx: 0, top: 25 })
const outIdx = process.argv.indexOf('--out')
const outFile = outIdx >= 0 ? process.argv[outIdx + 1] : undefined
const log = (msg: string): void => { console.error(`memory-per-unit: ${msg}`) }

interface Sample {
  units: number
  rssBytes: number
  heapUsedBytes: number
  heapTotalBytes: number
  externalBytes: number
  /** Used bytes per V8 heap space (new, old, code, map, large_object, …). */
  spaces: Record<string, number>
  /** GCs so far by kind (minor = scavenge, major = mark-compact, incremental, weakcb). */
  gcs: Record<string, number>
}

/** Self sizes summed by (node type, constructor), and the heap's total. */
interface HeapSummary { totalBytes: number, nodes: number, byName: Map<string, { bytes: number, count: number }> }

const dir = await mkdtemp(join(tmpdir(), 'ambulink-mem-'))
const snapDir = join(dir, 'snapshots')
const DB = 'mem'
let influx: InfluxServer | null = null
let gw: GatewayProcess | null = null
const fleets: Fleet[] = []

async function sample (units: number): Promise<Sample> {
  const m = await scrape(`http://127.0.0.1:${gw!.ports.http}`)
  const spaces: Record<string, number> = {}
  const gcs: Record<string, number> = {}
  for (const line of m.split('\n')) {
    const hit = /^ambulink_nodejs_heap_space_size_used_bytes\{space="([a-z_]+)"\} ([0-9.e+]+)/.exec(line)
    if (hit !== null) spaces[hit[1]!] = Number(hit[2])
    const gc = /^ambulink_nodejs_gc_duration_seconds_count\{kind="([a-z]+)"\} ([0-9.e+]+)/.exec(line)
    if (gc !== null) gcs[gc[1]!] = Number(gc[2])
  }
  return {
    units,
    rssBytes: await gw!.rss(),
    heapUsedBytes: metricValue(m, 'ambulink_nodejs_heap_size_used_bytes') ?? NaN,
    heapTotalBytes: metricValue(m, 'ambulink_nodejs_heap_size_total_bytes') ?? NaN,
    externalBytes: metricValue(m, 'ambulink_nodejs_external_memory_bytes') ?? NaN,
    spaces,
    gcs
  }
}

/** Sends SIGUSR2 and waits for the snapshot file to be complete; returns its path. */
async function heapSnapshot (): Promise<string> {
  const before = new Set(await readdir(snapDir).catch(() => []))
  gw!.signal('SIGUSR2')
  const t0 = Date.now()
  let lastSize = -1
  let stableSince = Date.now()
  for (;;) {
    if (Date.now() - t0 > 600_000) throw new Error('heap snapshot not written within 10 min')
    await sleep(1000)
    const files = (await readdir(snapDir).catch(() => [])).filter(f => f.endsWith('.heapsnapshot') && !before.has(f))
    if (files.length === 0) continue
    const file = join(snapDir, files[0]!)
    const size = (await stat(file)).size
    if (size !== lastSize) { lastSize = size; stableSince = Date.now(); continue }
    // Written in one synchronous call on the gateway's thread: once /metrics answers again and
    // the size has not moved for 3 s, the file is complete.
    if (Date.now() - stableSince >= 3000) {
      // A loaded gateway may still be writing, or catching up on the frames that queued while
      // it wrote: /metrics not answering within the scrape's timeout means "not yet", not a failure.
      try { await scrape(`http://127.0.0.1:${gw!.ports.http}`) } catch { continue }
      return file
    }
  }
}

/** Sums self sizes by constructor from a .heapsnapshot (V8's JSON format). */
async function summarise (file: string): Promise<HeapSummary> {
  const chunks: Buffer[] = []
  for await (const c of createReadStream(file)) chunks.push(c as Buffer)
  const snap = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
    snapshot: { meta: { node_fields: string[], node_types: [string[]] } }
    nodes: number[]
    strings: string[]
  }
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const w = fields.length
  const iType = fields.indexOf('type')
  const iName = fields.indexOf('name')
  const iSize = fields.indexOf('self_size')
  const byName = new Map<string, { bytes: number, count: number }>()
  let total = 0
  const nodes = snap.nodes
  for (let i = 0; i < nodes.length; i += w) {
    const type = types[nodes[i + iType]!]!
    let name = snap.strings[nodes[i + iName]!]!
    // Strings, numbers and code are grouped by type (their names are their contents).
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' || type === 'code' || type === 'regexp') name = ''
    else if (name.length > 60) name = name.slice(0, 60) + '…'
    const key = `${type}:${name}`
    const size = nodes[i + iSize]!
    total += size
    const e = byName.get(key)
    if (e === undefined) byName.set(key, { bytes: size, count: 1 })
    else { e.bytes += size; e.count++ }
  }
  return { totalBytes: total, nodes: nodes.length / w, byName }
}

function mean (xs: Sample[]): Sample {
  const avg = (f: (x: Sample) => number): number => xs.reduce((a, x) => a + f(x), 0) / xs.length
  const spaces: Record<string, number> = {}
  for (const k of Object.keys(xs[0]!.spaces)) spaces[k] = avg(x => x.spaces[k] ?? 0)
  return {
    units: xs[0]!.units,
    rssBytes: avg(x => x.rssBytes),
    heapUsedBytes: avg(x => x.heapUsedBytes),
    heapTotalBytes: avg(x => x.heapTotalBytes),
    externalBytes: avg(x => x.externalBytes),
    spaces,
    // GCs over the sampled span (last − first).
    gcs: Object.fromEntries(Object.keys(xs[xs.length - 1]!.gcs).map(k => [k, xs[xs.length - 1]!.gcs[k]! - (xs[0]!.gcs[k] ?? 0)]))
  }
}

const mb = (b: number): number => Math.round(b / 1e4) / 100
const kb = (b: number): number => Math.round(b / 100) / 10

interface Step {
  units: number
  settled: Sample
  afterGc: Sample | null
  heap: HeapSummary | null
  /** Frames acknowledged during the sampled span ÷ frames due (4 per unit-second): below ~0.95 the gateway was behind and its queues inflate the figures. */
  keptUp: number | null
  /** Gateway CPU time (all its threads) per frame acknowledged during the sampled span, µs: what a memory setting costs in CPU. */
  cpuUsPerFrame: number | null
}

/** CPU time of the gateway process (user + system, all threads), µs (/proc/<pid>/stat, clock ticks of 10 ms). */
async function gatewayCpuUs (): Promise<number> {
  const stat = await readFile(`/proc/${gw!.pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) * 10_000
}

const FRAMES_PER_UNIT_S = 4 // 250 ms frames
const acked = (): number => fleets.reduce((a, f) => a + f.stats().framesAcked, 0)

async function step (units: number): Promise<Step> {
  log(`${units} units: settling ${o.settleS} s`)
  // RSS and heap move with every GC: the figure of a step is the mean of the samples taken
  // every 5 s over the second half of its settle time.
  const end = Date.now() + o.settleS * 1000
  const taken: Sample[] = []
  let ackedFrom: { atMs: number, n: number, cpuUs: number } | null = null
  while (Date.now() < end) {
    await sleep(Math.min(5000, Math.max(0, end - Date.now())))
    if (end - Date.now() > o.settleS * 500) continue
    ackedFrom ??= { atMs: Date.now(), n: acked(), cpuUs: await gatewayCpuUs() }
    taken.push(await sample(units))
  }
  const frames = ackedFrom === null ? 0 : acked() - ackedFrom.n
  const keptUp = ackedFrom === null || units === 0 || Date.now() - ackedFrom.atMs < 1000
    ? null
    : Math.round(frames / (units * FRAMES_PER_UNIT_S * (Date.now() - ackedFrom.atMs) / 1000) * 100) / 100
  const cpuUsPerFrame = ackedFrom === null || frames === 0 ? null : Math.round((await gatewayCpuUs() - ackedFrom.cpuUs) / frames)
  if (taken.length === 0) taken.push(await sample(units))
  const settled = mean(taken)
  log(`${units} units: rss ${mb(settled.rssBytes)} MB, heap used ${mb(settled.heapUsedBytes)} MB, external ${mb(settled.externalBytes)} MB, kept up ${String(keptUp)}, ${String(cpuUsPerFrame)} µs CPU per frame`)
  if (o.snapshots === 0 || units === 0) return { units, settled, afterGc: null, heap: null, keptUp, cpuUsPerFrame }
  const file = await heapSnapshot()
  const afterGc = await sample(units)
  log(`${units} units after the snapshot's full GC: rss ${mb(afterGc.rssBytes)} MB, heap used ${mb(afterGc.heapUsedBytes)} MB`)
  const heap = await summarise(file)
  // MEM_KEEP_SNAPSHOTS=<dir>: keep the files (for a retainer analysis in DevTools).
  const keep = process.env.MEM_KEEP_SNAPSHOTS
  if (keep !== undefined && keep !== '') await rename(file, join(keep, `gateway-${units}-units.heapsnapshot`))
  else await rm(file, { force: true })
  return { units, settled, afterGc, heap, keptUp, cpuUsPerFrame }
}

function slope (a: Sample, b: Sample): Record<string, number> {
  const n = Math.max(1, b.units - a.units)
  return {
    rss_mb_per_unit: Math.round((b.rssBytes - a.rssBytes) / n / 1e3) / 1e3,
    heap_used_mb_per_unit: Math.round((b.heapUsedBytes - a.heapUsedBytes) / n / 1e3) / 1e3,
    heap_total_mb_per_unit: Math.round((b.heapTotalBytes - a.heapTotalBytes) / n / 1e3) / 1e3,
    external_mb_per_unit: Math.round((b.externalBytes - a.externalBytes) / n / 1e3) / 1e3
  }
}

let failure: string | null = null
const steps: Step[] = []
try {
  const extra = (process.env.MEM_NODE_ARGS ?? '').split(' ').filter(a => a !== '')
  const env: Record<string, string> = { LOG_LEVEL: 'info' }
  for (const kv of (process.env.MEM_ENV ?? '').split(' ').filter(a => a.includes('='))) env[kv.slice(0, kv.indexOf('='))] = kv.slice(kv.indexOf('=') + 1)
  if (o.influx === 1) {
    influx = await startInfluxDB({ logLevel: 'warn' })
    await createDatabase(influx.url, DB)
    Object.assign(env, { INFLUX_URL: influx.url, INFLUX_API: 'v1', INFLUX_DB: DB })
  }
  const dataDir = join(dir, 'data')
  await mkdir(snapDir, { recursive: true })
  const creds = await registerUnits(dataDir, 'mem', 2 * o.units)
  gw = await startGatewayProcess({
    dataDir,
    env,
    startTimeoutMs: 120_000,
    nodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapDir}`, ...extra],
    ...(process.env.MEM_ROOT !== undefined && process.env.MEM_ROOT !== '' ? { root: process.env.MEM_ROOT } : {})
  })
  steps.push(await step(0))
  for (const half of [creds.slice(0, o.units), creds.slice(o.units)]) {
    // Generous: on a loaded machine the gateway takes its time to authenticate a batch of units.
    const fleet = new Fleet({ url: `mqtt://127.0.0.1:${gw.ports.mqtt}`, units: half, startTimeoutMs: 600_000, drainTimeoutMs: 60_000 })
    fleets.push(fleet)
    await fleet.start()
    steps.push(await step(steps[steps.length - 1]!.units + o.units))
  }
} catch (err) {
  failure = (err as Error).message
}
const stats = []
for (const f of fleets) stats.push(await f.stop().catch(() => null))
await gw?.stop()
await influx?.stop()
await rm(dir, { recursive: true, force: true })

/** Per-unit heap by constructor: (2N snapshot − N snapshot) ÷ N, largest first. */
function attribution (a: HeapSummary, b: HeapSummary, n: number): Array<{ what: string, kb_per_unit: number, count_per_unit: number }> {
  const rows: Array<{ what: string, kb_per_unit: number, count_per_unit: number }> = []
  const keys = new Set([...a.byName.keys(), ...b.byName.keys()])
  for (const k of keys) {
    const x = a.byName.get(k) ?? { bytes: 0, count: 0 }
    const y = b.byName.get(k) ?? { bytes: 0, count: 0 }
    rows.push({ what: k, kb_per_unit: kb((y.bytes - x.bytes) / n), count_per_unit: Math.round((y.count - x.count) / n * 10) / 10 })
  }
  rows.sort((p, q) => Math.abs(q.kb_per_unit) - Math.abs(p.kb_per_unit))
  return rows.slice(0, o.top)
}

const [s0, s1, s2] = steps
const report = {
  benchmark: 'memory-per-unit',
  units_step: o.units,
  settle_s: o.settleS,
  storage: o.influx === 1 ? 'influxdb' : 'embedded',
  gateway_node_args: process.env.MEM_NODE_ARGS ?? '',
  gateway_env: process.env.MEM_ENV ?? '',
  gateway_root: process.env.MEM_ROOT ?? '',
  failure,
  steps: steps.map(s => ({
    units: s.units,
    kept_up: s.keptUp,
    cpu_us_per_frame: s.cpuUsPerFrame,
    rss_mb: mb(s.settled.rssBytes),
    heap_used_mb: mb(s.settled.heapUsedBytes),
    heap_total_mb: mb(s.settled.heapTotalBytes),
    external_mb: mb(s.settled.externalBytes),
    spaces_used_mb: Object.fromEntries(Object.entries(s.settled.spaces).map(([k, v]) => [k, mb(v)])),
    gcs_during_sampling: s.settled.gcs,
    after_full_gc: s.afterGc === null ? null : { rss_mb: mb(s.afterGc.rssBytes), heap_used_mb: mb(s.afterGc.heapUsedBytes), heap_total_mb: mb(s.afterGc.heapTotalBytes), external_mb: mb(s.afterGc.externalBytes) },
    snapshot_self_mb: s.heap === null ? null : mb(s.heap.totalBytes)
  })),
  // The headline: what one more unit costs at N..2N (the fixed base of the process left out).
  marginal_n_to_2n: s1 !== undefined && s2 !== undefined ? slope(s1.settled, s2.settled) : null,
  marginal_n_to_2n_live: s1?.afterGc != null && s2?.afterGc != null ? slope(s1.afterGc, s2.afterGc) : null,
  marginal_0_to_n: s0 !== undefined && s1 !== undefined ? slope(s0.settled, s1.settled) : null,
  rss_mb_per_unit_naive: s2 !== undefined ? Math.round(s2.settled.rssBytes / s2.units / 1e4) / 100 : null,
  heap_attribution_n_to_2n: s1?.heap != null && s2?.heap != null ? attribution(s1.heap, s2.heap, o.units) : null,
  fleet: stats.map(s => s === null ? null : { framesAcked: s.framesAcked, dropped: s.dropped, reconnects: s.reconnects })
}
const text = JSON.stringify(report, null, 2)
console.log(text)
if (outFile !== undefined) await writeFile(outFile, text + '\n')
process.exitCode = failure === null ? 0 : 1
