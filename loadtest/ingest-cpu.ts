/**
 * Gateway CPU per frame at ingest against bare aedes, in one short run (issue 12, goal 3): the
 * saturation phase of `ambulink bench` and its bare-aedes reference, without the sink, the
 * real-time steps and the other references, so it can be repeated on a shared machine. The
 * gateway runs as a child process, embedded (decode, validate, spool + fsync, alerts, live hub;
 * no InfluxDB), driven by the same generator and frames as the bench (bench-saturate.ts); then
 * bare aedes (aedes-bare.ts) with the same load. CPU is each process's utime + stime over the
 * same measured window as its rate, so the ratio stays meaningful under `nice` and neighbours.
 *
 *   node --import tsx loadtest/ingest-cpu.ts [--units 32] [--window 8] [--seconds 8] [--warmup 3]
 *     [--rounds 1] [--cpu-prof DIR]     (prints JSON)
 *
 * --cpu-prof DIR: the gateway writes a V8 profile there when it stops (summarise it with
 * loadtest/profile-summary.ts --from-first-frame --frames <frames_for_profile>).
 * --trace-gc: the gateway runs with node --trace-gc; its collections after it started listening
 * are counted from its log, with their pauses (wall clock: inflated by a loaded machine).
 */
import { readFile, rm } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { loadavg } from 'node:os'
import { BENCH_DEFAULTS } from './bench-options.js'
import { unitIds } from './bench-credentials.js'
import { startBenchEnv } from './bench-env.js'
import { saturate } from './bench-saturate.js'
import { aedesReference } from './references.js'

const { values: a } = parseArgs({
  options: {
    units: { type: 'string', default: '32' },
    window: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '1' },
    'cpu-prof': { type: 'string' },
    'trace-gc': { type: 'boolean', default: false }
  }
})
const units = Number(a.units)
const window = Number(a.window)
const durationMs = Number(a.seconds) * 1000
const warmupMs = Number(a.warmup) * 1000
const rounds = Number(a.rounds)
for (const [k, v] of Object.entries({ units, window, seconds: durationMs, rounds })) {
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${k} must be a positive integer`)
}
const progress = (line: string): void => { process.stderr.write(`[ingest-cpu] ${line}\n`) }

const gwIds = unitIds('satg', units)
const env = await startBenchEnv({
  gateways: 1,
  units: gwIds,
  scryptN: BENCH_DEFAULTS.quick.scryptN,
  cpuProfDir: a['cpu-prof'],
  nodeArgs: a['trace-gc'] ? ['--trace-gc'] : [],
  keep: a['trace-gc'],
  influx: false,
  log: progress
})
const results: Array<{ gateway_cpu_us_per_frame: number | null, aedes_cpu_us_per_msg: number | null, gateway_frames_per_s: number, aedes_msgs_per_s: number, frames_acked: number, bytes_acked_total: number, mean_frame_bytes: number }> = []
const load0 = loadavg()
try {
  for (let r = 0; r < rounds; r++) {
    const gw = await saturate({ urls: [env.mqttUrls[0]!], units: gwIds, token: env.creds.token, window, durationMs, warmupMs, backdateMs: 2 * 3_600_000, label: 'gateway', progress, cpuPids: [env.gateways[0]!.pid] })
    const ae = await aedesReference({ units: unitIds('sata', units), window, durationMs, warmupMs, progress })
    results.push({
      gateway_cpu_us_per_frame: gw.broker_cpu_us_per_frame,
      aedes_cpu_us_per_msg: ae.broker_cpu_us_per_frame,
      gateway_frames_per_s: gw.frames_per_s,
      aedes_msgs_per_s: ae.frames_per_s,
      frames_acked: gw.frames_acked,
      bytes_acked_total: gw.bytes_acked_total,
      // Over the measured window: MB/s ÷ frames/s.
      mean_frame_bytes: Math.round(gw.mbytes_per_s * 1e6 / Math.max(1, gw.frames_per_s))
    })
    progress(`round ${r + 1}: gateway ${gw.broker_cpu_us_per_frame ?? '?'} µs/frame, bare aedes ${ae.broker_cpu_us_per_frame ?? '?'} µs/msg`)
  }
} finally {
  await env.stop()
}

/** The gateway's collections from its --trace-gc lines after start-up: count and pause ms per kind. */
async function gcFromLog (file: string): Promise<Record<string, { count: number, pause_ms: number }>> {
  const out: Record<string, { count: number, pause_ms: number }> = {}
  const log = await readFile(file, 'utf8')
  const listening = log.indexOf('ambulink gateway listening')
  // e.g. "[123:0x55d0]     4012 ms: Scavenge 40.1 (61.2) -> 38.9 (62.2) MB, 1.85 / 0.00 ms  (average mu = ...)"
  for (const m of log.slice(Math.max(0, listening)).matchAll(/ ms: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Compact|Minor Mark-Sweep)[^,]*, ([\d.]+) \/ [\d.]+ ms/g)) {
    const kind = out[m[1]!] ??= { count: 0, pause_ms: 0 }
    kind.count++
    kind.pause_ms = Math.round((kind.pause_ms + Number(m[2])) * 100) / 100
  }
  return out
}
const gcs = a['trace-gc'] ? await gcFromLog(env.gateways[0]!.logFile) : null
if (gcs !== null) await rm(env.dir, { recursive: true, force: true })
const median = (xs: number[]): number | null => xs.length === 0 ? null : [...xs].sort((p, q) => p - q)[xs.length >> 1]!
const gwUs = median(results.flatMap(r => r.gateway_cpu_us_per_frame ?? []))
const aeUs = median(results.flatMap(r => r.aedes_cpu_us_per_msg ?? []))
console.log(JSON.stringify({
  benchmark: 'ingest-cpu',
  node: process.version,
  load_average: { start: load0.map(x => Math.round(x * 100) / 100), end: loadavg().map(x => Math.round(x * 100) / 100) },
  options: { units, window, seconds: durationMs / 1000, warmup_s: warmupMs / 1000, rounds },
  gateway_cpu_us_per_frame: gwUs,
  aedes_cpu_us_per_msg: aeUs,
  /** aedes CPU per message ÷ gateway CPU per frame: `cpu_based.ingest_vs_aedes_ratio` of the bench. */
  cpu_based_ingest_vs_aedes_ratio: gwUs !== null && aeUs !== null && gwUs > 0 ? Math.round(aeUs / gwUs * 1000) / 1000 : null,
  /** Frames the gateway acknowledged in all (warm-up included) and its mean frame: --frames for profile-summary. */
  frames_for_profile: results.reduce((s, r) => s + Math.round(r.bytes_acked_total / r.mean_frame_bytes), 0),
  ...(gcs !== null ? { gateway_gc: gcs } : {}),
  rounds: results
}, null, 2))
