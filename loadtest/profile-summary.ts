/**
 * Summarises a V8 .cpuprofile (node --cpu-prof; `ambulink bench --cpu-prof DIR` writes one per
 * gateway process) into CPU time per gateway stage, as JSON: the CPU budget table of
 * docs/performance.md.
 *
 * Attribution: each sample goes to the innermost frame on its stack that belongs to a stage
 * (STAGES, matched on the script URL and function name, first match wins), so time spent in
 * Node internals or V8 builtins called by a stage counts for that stage (Buffer copies made by
 * the spool are spool time). Samples with no stage frame on the stack are `other node/V8`;
 * V8's own pseudo-frames are kept apart: `(garbage collector)`, `(program)` (V8 outside JS),
 * `(idle)` (waiting; left out of the shares).
 *
 *   npx tsx loadtest/profile-summary.ts <file.cpuprofile> [--frames N] [--top K]
 *
 * --frames N: also gives µs per frame per stage (N frames handled over the profile).
 * --from-first-frame: counts from the first sample inside the frame decoder (leaves the
 *   process's start-up — module loading, tsx transpiling — out of the budget).
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

export interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

/** Stage rules, innermost match wins; order matters only within one frame. */
export const STAGES: ReadonlyArray<{ stage: string, test: (f: CallFrame) => boolean }> = [
  { stage: 'parse (MQTT packets)', test: f => /node_modules\/(mqtt-packet|bl)\//.test(f.url) },
  { stage: 'auth (authenticate, authorizePublish)', test: f => /gateway\/(credentials|sessions)\.ts/.test(f.url) || (/gateway\/mqtt\/broker\.ts/.test(f.url) && /authori[sz]e|authenticate|check|verify/i.test(f.functionName)) },
  { stage: 'validate', test: f => /decoders\/(frame|interpretation|vitals)\.ts/.test(f.url) && /validate|check|toSafeNumber/i.test(f.functionName) },
  { stage: 'decode (protobuf, waveforms)', test: f => /\/decoders\//.test(f.url) || /node_modules\/(protobufjs|@protobufjs|long)\//.test(f.url) },
  { stage: 'line protocol', test: f => /streams\/storage\/(line-protocol|line-buffer)\.ts/.test(f.url) },
  { stage: 'spool (records, crc, fsync)', test: f => /streams\/storage\/(spool|durable|group-commit|dead-letter|frame-record)\.ts/.test(f.url) },
  { stage: 'gzip', test: f => /^node:zlib$|node:zlib/.test(f.url) || /gzip|deflate|zlib/i.test(f.functionName) },
  { stage: 'HTTP (sink to InfluxDB)', test: f => /streams\/storage\/influx-sink\.ts/.test(f.url) || /node:(_http|http|https)|undici/.test(f.url) },
  { stage: 'alerts', test: f => /streams\/alerts\//.test(f.url) || /gateway\/alert-wiring\.ts/.test(f.url) },
  { stage: 'live hub', test: f => /streams\/live\//.test(f.url) },
  { stage: 'metrics', test: f => /gateway\/metrics\.ts|node_modules\/prom-client\//.test(f.url) },
  { stage: 'logging', test: f => /gateway\/logger\.ts|node_modules\/(pino|sonic-boom)/.test(f.url) },
  { stage: 'ingest glue (gateway/ingest, mqtt hooks)', test: f => /gateway\/(ingest|mqtt\/[^/]+)\.ts/.test(f.url) },
  { stage: 'aedes (routing, PUBACK, QoS)', test: f => /node_modules\/(aedes|aedes-packet|aedes-persistence|mqemitter|fastfall|fastparallel|fastseries|reusify|retimer)\//.test(f.url) },
  { stage: 'socket I/O (net, streams)', test: f => /node:(net|internal\/streams|stream|internal\/stream_base_commons)/.test(f.url) }
]
const PSEUDO = new Set(['(garbage collector)', '(program)', '(idle)', '(root)'])

export interface StageRow { stage: string, ms: number, share: number, us_per_frame?: number }
export interface ProfileSummary {
  profile: string
  /** Start-up left out (--from-first-frame), s. */
  skipped_s: number
  wall_s: number
  /** CPU sampled (idle excluded), ms. */
  busy_ms: number
  idle_ms: number
  frames: number | null
  stages: StageRow[]
  top_functions: Array<{ stage: string, fn: string, self_ms: number }>
}

export function summarise (path: string, frames: number | null, top = 15, fromFirstFrame = false): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of p.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  // Stage of each node: its own, else its nearest ancestor's (computed once per node).
  const stageOf = new Map<number, string>()
  const resolveStage = (id: number): string => {
    const known = stageOf.get(id)
    if (known !== undefined) return known
    const n = byId.get(id)!
    const name = n.callFrame.functionName
    let s: string
    if (PSEUDO.has(name)) s = name
    else {
      const own = STAGES.find(r => r.test(n.callFrame))?.stage
      const up = parent.get(id)
      s = own ?? (up === undefined ? 'other node/V8' : resolveStage(up))
      if (s === '(root)') s = 'other node/V8'
    }
    stageOf.set(id, s)
    return s
  }
  const stageUs = new Map<string, number>()
  const selfUs = new Map<number, number>()
  let first = 0
  if (fromFirstFrame) {
    const decodeStage = 'decode (protobuf, waveforms)'
    while (first < p.samples.length && resolveStage(p.samples[first]!) !== decodeStage) first++
  }
  for (let i = first; i < p.samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the next delta to sample i.
    const dt = p.timeDeltas[i + 1] ?? 0
    const id = p.samples[i]!
    const s = resolveStage(id)
    stageUs.set(s, (stageUs.get(s) ?? 0) + dt)
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt)
  }
  const idle = stageUs.get('(idle)') ?? 0
  stageUs.delete('(idle)')
  const busy = [...stageUs.values()].reduce((a, b) => a + b, 0)
  const stages = [...stageUs.entries()].sort((a, b) => b[1] - a[1]).map(([stage, us]): StageRow => ({
    stage,
    ms: Math.round(us / 100) / 10,
    share: Math.round(us / Math.max(1, busy) * 1000) / 1000,
    ...(frames !== null ? { us_per_frame: Math.round(us / frames * 100) / 100 } : {})
  }))
  const topFns = [...selfUs.entries()]
    .map(([id, us]) => {
      const f = byId.get(id)!.callFrame
      return { stage: resolveStage(id), fn: `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|decoders|streams|gateway|loadtest)\//, '$1/')}:${f.lineNumber + 1}`, self_ms: Math.round(us / 100) / 10 }
    })
    .filter(r => r.stage !== '(idle)')
    .sort((a, b) => b.self_ms - a.self_ms)
    .slice(0, top)
  const skippedUs = p.timeDeltas.slice(0, first + 1).reduce((a, b) => a + b, 0)
  return { profile: path, skipped_s: Math.round(skippedUs / 1e4) / 100, wall_s: Math.round((p.endTime - p.startTime) / 1e4) / 100, busy_ms: Math.round(busy / 100) / 10, idle_ms: Math.round(idle / 100) / 10, frames, stages, top_functions: topFns }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { frames: { type: 'string' }, top: { type: 'string' }, 'from-first-frame': { type: 'boolean' } } })
  if (positionals.length !== 1) {
    process.stderr.write('usage: npx tsx loadtest/profile-summary.ts <file.cpuprofile> [--frames N] [--top K] [--from-first-frame]\n')
    process.exit(2)
  }
  const frames = values.frames !== undefined ? Number(values.frames) : null
  process.stdout.write(JSON.stringify(summarise(positionals[0]!, frames, Number(values.top ?? 15), values['from-first-frame'] === true), null, 2) + '\n')
}
