/**
 * CPU per 12-lead frame of the in-process stages every accepted frame goes through (issue 12,
 * goal 3), without sockets, MQTT or the spool: decode + validate (decoders/), the alert engine
 * (NEWS2, rules, the ECG ring and the ST measurement once per 10 s of ECG per unit), and the live
 * hub with nobody watching (the usual case: most units are not on a screen). Simulator frames of
 * 8 units (the bench's patient profiles, 12-lead 500 Hz in 250 ms frames, numerics and position
 * once a second), 10 minutes of each, fed unit by unit in turn as they would arrive.
 *
 * CPU time (process.cpuUsage), median of `--rounds`: on a shared machine the wall clock mostly
 * measures the neighbours. `--baseline DIR` (another checkout of the repository, e.g. from
 * `git worktree add` or `git archive`) loads the same modules from there too and runs both in
 * this process, round by round in turn, so the two see the same machine: the before/after
 * comparison of docs/performance.md.
 *
 *   node --import tsx loadtest/bench-frame-path.ts [--rounds 5] [--baseline DIR]   (prints JSON)
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { Frame } from '../decoders/index.js'
import { UnitFrameSource } from '../simulator/frame-source.js'
import { PATIENT_PROFILES } from '../simulator/vitals.js'

const { values: a } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, baseline: { type: 'string' } } })
const rounds = Number(a.rounds)
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer')

const UNITS = 8
const FRAMES_PER_UNIT = 2400 // 10 min of 250 ms frames
const start = Date.now() - 3_600_000
const sources = Array.from({ length: UNITS }, (_, i) => new UnitFrameSource({ unitId: `u${i + 1}`, startMs: start, profile: PATIENT_PROFILES[i % PATIENT_PROFILES.length]!, seed: i + 1 }))
const bytes: Array<{ unit: string, bytes: Uint8Array }> = []
for (let k = 0; k < FRAMES_PER_UNIT; k++) for (const s of sources) bytes.push({ unit: s.unitId, bytes: s.nextFrame().bytes })
const now = Date.now()

const cpuUs = (fn: () => void): number => {
  const c = process.cpuUsage()
  fn()
  const u = process.cpuUsage(c)
  return (u.user + u.system) / bytes.length
}
const median = (xs: number[]): number => Math.round([...xs].sort((p, q) => p - q)[xs.length >> 1]! * 100) / 100

interface Stages { decoders: typeof import('../decoders/index.js'), alerts: typeof import('../streams/alerts/index.js'), live: typeof import('../streams/live/hub.js') }
async function load (root: string): Promise<Stages> {
  const url = (p: string): string => pathToFileURL(resolve(root, p)).href
  return {
    decoders: await import(url('decoders/index.ts')) as Stages['decoders'],
    alerts: await import(url('streams/alerts/index.ts')) as Stages['alerts'],
    live: await import(url('streams/live/hub.ts')) as Stages['live']
  }
}

interface Times { decode: number[], engine: number[], hub: number[] }

/** One round of the three stages over every frame; µs of CPU per frame each. */
async function round (m: Stages): Promise<[number, number, number]> {
  const decoder = new m.decoders.FrameDecoder()
  let frames: Frame[] = []
  const d = cpuUs(() => { frames = bytes.map(b => decoder.decode(b.bytes, b.unit, now)) })
  const engine = await m.alerts.AlertEngine.open({ tickIntervalMs: 0, now: () => now })
  const e = cpuUs(() => { for (const f of frames) engine.onFrame(f, now) })
  await engine.close()
  const hub = new m.live.LiveHub({ hospital: { name: 'H', latitude: 45.744, longitude: 4.9055 }, now: () => now })
  const h = cpuUs(() => { for (const f of frames) hub.push(f) })
  await hub.close()
  return [d, e, h]
}

const runs: Array<{ name: string, stages: Stages, t: Times }> = [{ name: 'this', stages: await load(resolve(import.meta.dirname, '..')), t: { decode: [], engine: [], hub: [] } }]
if (a.baseline !== undefined) runs.push({ name: 'baseline', stages: await load(resolve(a.baseline)), t: { decode: [], engine: [], hub: [] } })
for (let r = 0; r <= rounds; r++) {
  // Alternate which goes first, so neither always runs right after the other's garbage.
  for (const run of r % 2 === 0 ? runs : [...runs].reverse()) {
    const [d, e, h] = await round(run.stages)
    // Round 0 warms the JIT up.
    if (r === 0) continue
    run.t.decode.push(d)
    run.t.engine.push(e)
    run.t.hub.push(h)
  }
}
const summary = (t: Times): Record<string, number> => ({
  decode_validate: median(t.decode),
  alert_engine: median(t.engine),
  live_hub_unwatched: median(t.hub),
  total: median(t.decode.map((x, i) => x + t.engine[i]! + t.hub[i]!))
})
console.log(JSON.stringify({
  benchmark: 'frame-path-cpu',
  node: process.version,
  frames: bytes.length,
  mean_frame_bytes: Math.round(bytes.reduce((s, b) => s + b.bytes.length, 0) / bytes.length),
  rounds,
  us_per_frame: summary(runs[0]!.t),
  ...(runs[1] !== undefined ? { baseline: { dir: a.baseline, us_per_frame: summary(runs[1].t) } } : {})
}, null, 2))
