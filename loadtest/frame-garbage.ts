/**
 * Garbage per frame at ingest (issue 12, goal 3: the garbage collector took about 19 µs of the
 * gateway's CPU per frame): what the gateway allocates per frame, by stage and by allocation
 * site, and the collections it causes. The real gateway runs in this process (testkit/gateway.ts,
 * embedded: decode, validate, spool + fsync, alert engine, live hub; no InfluxDB), driven by the
 * saturation phase's raw MQTT publishers (bench-saturate.ts) over loopback TCP.
 *
 * V8's sampling heap profiler (HeapProfiler.startSampling, including the objects the scavenges
 * and mark-compacts collected, so garbage counts, not only what survives) runs over the measured
 * window after the warm-up; each sampled allocation goes to the innermost stage on its stack
 * (profile-summary.ts' rules) and the publishers' own allocations are left out. Bytes are V8's
 * estimates (each sample stands for about `--interval` bytes): JS heap only; off-heap Buffer
 * memory shows as its small JS object. GC pauses on this thread come from PerformanceObserver.
 *
 *   node --import tsx loadtest/frame-garbage.ts [--units 16] [--window 8] [--seconds 8]
 *     [--warmup 3] [--interval 4096] [--top 25] [--root DIR]      (prints JSON)
 *
 * --root DIR: the gateway of another checkout (e.g. `git archive main`), for before and after.
 */
import { Session } from 'node:inspector/promises'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { constants as perf, PerformanceObserver } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { unitIds, writeBenchCredentials } from './bench-credentials.js'
import { saturate } from './bench-saturate.js'
import { STAGES, type CallFrame } from './profile-summary.js'

const { values: a } = parseArgs({
  options: {
    units: { type: 'string', default: '16' },
    window: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '3' },
    interval: { type: 'string', default: '4096' },
    top: { type: 'string', default: '25' },
    root: { type: 'string' }
  }
})
const units = Number(a.units)
const window = Number(a.window)
const seconds = Number(a.seconds)
const warmup = Number(a.warmup)
const interval = Number(a.interval)
const top = Number(a.top)
for (const [k, v] of Object.entries({ units, window, seconds, interval, top })) {
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${k} must be a positive integer`)
}
const root = resolve(a.root ?? join(import.meta.dirname, '..'))
const progress = (line: string): void => { process.stderr.write(`[frame-garbage] ${line}\n`) }

interface HeapNode { callFrame: CallFrame, selfSize: number, id: number, children: HeapNode[] }

/** The load generator's code (its allocations are not the gateway's). */
const GENERATOR = /loadtest\/(raw-publisher|bench-saturate|bench-frames)\.ts|simulator\/|testkit\/mqtt-raw\.ts/
const stageOf = (f: CallFrame): string | null => STAGES.find(r => r.test(f))?.stage ?? null

const { startTestGateway } = await import(pathToFileURL(join(root, 'testkit', 'gateway.ts')).href) as typeof import('../testkit/gateway.js')
const dataDir = await mkdtemp(join(tmpdir(), 'ambulink-garbage-'))
const ids = unitIds('garb', units)
const creds = await writeBenchCredentials(dataDir, ids, 1024)
const tg = await startTestGateway({ logLevel: 'warn' }, { dataDir })
const session = new Session()
session.connect()
const gcs = { scavenges: 0, markCompacts: 0, other: 0, pauseMs: 0 }
let counting = false
const obs = new PerformanceObserver(list => {
  if (!counting) return
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind
    if (kind === perf.NODE_PERFORMANCE_GC_MINOR) gcs.scavenges++
    else if (kind === perf.NODE_PERFORMANCE_GC_MAJOR) gcs.markCompacts++
    else gcs.other++
    gcs.pauseMs += e.duration
  }
})
obs.observe({ entryTypes: ['gc'] })

let frames0 = 0
let profile: { head: HeapNode } | null = null
let frames = 0
try {
  const run = saturate({ urls: [tg.mqttUrl], units: ids, token: creds.token, window, durationMs: (warmup + seconds) * 1000, warmupMs: warmup * 1000, backdateMs: 2 * 3_600_000, label: 'gateway', progress })
  await new Promise(resolve => setTimeout(resolve, warmup * 1000))
  await session.post('HeapProfiler.startSampling', { samplingInterval: interval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never)
  frames0 = tg.gw.spool.appends
  counting = true
  await new Promise(resolve => setTimeout(resolve, seconds * 1000))
  counting = false
  frames = tg.gw.spool.appends - frames0
  profile = (await session.post('HeapProfiler.stopSampling')).profile as unknown as { head: HeapNode }
  await run
} finally {
  obs.disconnect()
  session.disconnect()
  await tg.close()
  await rm(dataDir, { recursive: true, force: true })
}

// Each node's bytes go to the innermost stage on its stack; the generator's are set apart.
const byStage = new Map<string, number>()
const bySite = new Map<string, { stage: string, bytes: number }>()
let generator = 0
const walk = (n: HeapNode, stage: string, gen: boolean): void => {
  const f = n.callFrame
  const isGen = gen || GENERATOR.test(f.url)
  const s = stageOf(f) ?? stage
  if (n.selfSize > 0) {
    if (isGen) generator += n.selfSize
    else {
      byStage.set(s, (byStage.get(s) ?? 0) + n.selfSize)
      const site = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|decoders|streams|gateway|loadtest|testkit)\//, '$1/')}:${f.lineNumber + 1}`
      const e = bySite.get(site) ?? { stage: s, bytes: 0 }
      e.bytes += n.selfSize
      bySite.set(site, e)
    }
  }
  for (const c of n.children) walk(c, s, isGen)
}
if (profile !== null) walk(profile.head, 'other node/V8', false)
const total = [...byStage.values()].reduce((x, y) => x + y, 0)
const per = (b: number): number => Math.round(b / Math.max(1, frames))
const per1000 = (n: number): number => Math.round(n * 1e5 / Math.max(1, frames)) / 100
console.log(JSON.stringify({
  benchmark: 'frame-garbage',
  node: process.version,
  root,
  options: { units, window, seconds, warmup_s: warmup, sampling_interval_bytes: interval },
  frames,
  gateway_bytes_per_frame: per(total),
  generator_bytes_per_frame: per(generator),
  // This process's collections over the window (the publishers' garbage is in the same heap).
  gc: { scavenges_per_1000_frames: per1000(gcs.scavenges), mark_compacts_per_1000_frames: per1000(gcs.markCompacts), other_per_1000_frames: per1000(gcs.other), pause_us_per_frame: Math.round(gcs.pauseMs * 1e4 / Math.max(1, frames)) / 10 },
  stages: [...byStage.entries()].sort((x, y) => y[1] - x[1]).map(([stage, b]) => ({ stage, bytes_per_frame: per(b) })),
  sites: [...bySite.entries()].sort((x, y) => y[1].bytes - x[1].bytes).slice(0, top).map(([site, e]) => ({ site, stage: e.stage, bytes_per_frame: per(e.bytes) }))
}, null, 2))
