/**
 * The sink's worker thread against the same sink on the main thread (issue 12, goal 2): one
 * backlog of 12-lead frame records (a copy of the same spool for each mode) drained into one
 * private InfluxDB, each mode into a database of its own, in alternating order over the rounds.
 * While each drains, the main thread's event-loop delay (perf_hooks.monitorEventLoopDelay: what
 * an alert, a PUBACK or a dashboard frame would wait for) and its busy time
 * (eventLoopUtilization), and the CPU time of the main thread and of the other threads (the
 * worker, libuv's pool, V8's helpers) per stored point, from /proc/self/task (Linux: Node 20 has
 * no per-thread CPU clock), and InfluxDB's own CPU per stored point (/proc/<pid>/stat over the
 * same drain). CPU figures hold on a loaded machine; the delays and rates do not. JSON on stdout.
 *
 * --gzip off|both: also (or only) drain with the sink's `gzip: false` (plain line protocol: the
 * gateway does not compress, InfluxDB does not decompress), to compare what each side spends per
 * point.
 *
 *   node --import tsx loadtest/sink-thread.ts [--mb 50] [--rounds 1] [--units 20] [--delay-resolution-ms 20]
 *     [--modes worker,main] [--gzip on|off|both]
 */
import { readFileSync, readdirSync } from 'node:fs'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { DeadLetterStore, frameRecord, InfluxSink, Spool, SPOOL_RECORD_FRAME } from '../streams/index.js'
import { processCpuSeconds } from './bench-cpu.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { testFrame } from '../testkit/frames.js'

/** Points of a default testFrame: 125 ECG instants, one vitals and one position point. */
const FRAME_POINTS = 127

/** CPU time of the main thread and of all the others, µs (/proc/self/task/<tid>/stat, in clock ticks). */
function threadCpuUs (): { main: number, others: number } {
  const tick = 10_000 // USER_HZ is 100 on Linux: 10 ms
  let main = 0
  let others = 0
  for (const tid of readdirSync('/proc/self/task')) {
    let stat: string
    try { stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8') } catch { continue }
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const us = (Number(f[11]) + Number(f[12])) * tick
    if (Number(tid) === process.pid) main += us
    else others += us
  }
  return { main, others }
}

async function buildBacklog (dir: string, mb: number, units: number): Promise<{ frames: number, bytes: number }> {
  const spool = await Spool.open({ dir, maxSpoolBytes: 8 * 1024 * 1024 * 1024 })
  let frames = 0
  try {
    for (let seq = 1; spool.bytes < mb * 1024 * 1024; seq++) {
      // One frame per unit at a time, appended together (group commit).
      await Promise.all(Array.from({ length: units }, (_, u) => {
        const unit = `st-${u}`
        return spool.appendRecord(frameRecord(unit, testFrame({ unit, seq })), FRAME_POINTS, SPOOL_RECORD_FRAME)
      }))
      frames += units
    }
    return { frames, bytes: spool.bytes }
  } finally {
    await spool.close()
  }
}

interface ModeResult {
  mode: 'worker' | 'main'
  /** Whether the bodies were gzipped (the sink's `gzip`). */
  gzip: boolean
  points: number
  drain_s: number
  points_per_s: number
  /** Main thread busy (event loop not idle) per stored point, µs: the drain's cost to alerts. */
  main_thread_busy_us_per_point: number
  /** CPU of the main thread per stored point, µs. */
  main_thread_cpu_us_per_point: number
  /** CPU of the other threads (the worker, libuv's pool, V8's helpers) per stored point, µs. */
  other_threads_cpu_us_per_point: number
  /** Process CPU (every thread) per stored point, µs. */
  process_cpu_us_per_point: number
  /** InfluxDB's CPU (every thread, /proc/<pid>/stat, 10 ms ticks) per stored point, µs. */
  influx_cpu_us_per_point: number
  /** Gateway process and InfluxDB together per stored point, µs. */
  both_cpu_us_per_point: number
  event_loop_delay_p50_ms: number
  event_loop_delay_p99_ms: number
  event_loop_delay_max_ms: number
  /** ECG points InfluxDB holds afterwards (count of field `i`). */
  stored_ecg_points: number
}

async function drain (mode: 'worker' | 'main', gzip: boolean, spoolDir: string, deadDir: string, influx: InfluxServer, db: string, delayResolutionMs: number): Promise<ModeResult> {
  const spool = await Spool.open({ dir: spoolDir, maxSpoolBytes: 8 * 1024 * 1024 * 1024 })
  const deadLetters = await DeadLetterStore.open({ dir: deadDir })
  let points = 0
  const sink = new InfluxSink({ url: influx.url, api: 'v1', db, thread: mode, gzip }, spool, deadLetters, { onWritten: p => { points += p } })
  try {
    await sink.createDatabase()
    await sink.whenReady()
    // Its timer runs on the main thread: at 1 ms it costs about 1.5 µs of main-thread CPU per point here.
    const delay = monitorEventLoopDelay({ resolution: delayResolutionMs })
    const elu0 = performance.eventLoopUtilization()
    const cpu0 = process.cpuUsage()
    const th0 = threadCpuUs()
    const influx0 = await processCpuSeconds(influx.pid)
    const t0 = performance.now()
    delay.enable()
    sink.start()
    await new Promise<void>(resolve => {
      const t = setInterval(() => {
        if (spool.pendingBytes === 0) {
          clearInterval(t)
          resolve()
        }
      }, 50)
    })
    delay.disable()
    const s = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    const th = threadCpuUs()
    const influxUs = (await processCpuSeconds(influx.pid) - influx0) * 1e6
    const elu = performance.eventLoopUtilization(elu0)
    const stored = await influx.count(db, 'ecg', 'i')
    return {
      mode,
      gzip,
      points,
      drain_s: round(s),
      points_per_s: Math.round(points / s),
      main_thread_busy_us_per_point: round(elu.active * 1000 / points),
      main_thread_cpu_us_per_point: round((th.main - th0.main) / points),
      other_threads_cpu_us_per_point: round((th.others - th0.others) / points),
      process_cpu_us_per_point: round((cpu.user + cpu.system) / points),
      influx_cpu_us_per_point: round(influxUs / points),
      both_cpu_us_per_point: round((cpu.user + cpu.system + influxUs) / points),
      event_loop_delay_p50_ms: round(delay.percentile(50) / 1e6),
      event_loop_delay_p99_ms: round(delay.percentile(99) / 1e6),
      event_loop_delay_max_ms: round(delay.max / 1e6),
      stored_ecg_points: stored
    }
  } finally {
    await sink.close(0)
    await spool.close()
    await deadLetters.close()
  }
}

function round (x: number): number { return Math.round(x * 1000) / 1000 }

interface Variant { mode: 'worker' | 'main', gzip: boolean }

export async function runSinkThreadBench (o: { mb: number, rounds: number, units: number, delayResolutionMs: number, modes?: Array<'worker' | 'main'>, gzip?: 'on' | 'off' | 'both' }): Promise<Record<string, unknown>> {
  const gzips = o.gzip === 'both' ? [true, false] : [o.gzip !== 'off']
  const variants: Variant[] = (o.modes ?? ['worker', 'main']).flatMap(mode => gzips.map(gzip => ({ mode, gzip })))
  const work = await mkdtemp(join(tmpdir(), 'ambulink-sink-thread-'))
  const influx = await startInfluxDB({ logLevel: 'warn' })
  try {
    const backlog = await buildBacklog(join(work, 'backlog'), o.mb, o.units)
    const results: ModeResult[] = []
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? variants : [...variants].reverse()
      for (const { mode, gzip } of order) {
        const name = `${mode}_${gzip ? 'gzip' : 'plain'}_${r}`
        const dir = join(work, name)
        await cp(join(work, 'backlog'), join(dir, 'spool'), { recursive: true })
        process.stderr.write(`round ${r + 1}/${o.rounds}: ${mode}, gzip ${gzip ? 'on' : 'off'}\n`)
        results.push(await drain(mode, gzip, join(dir, 'spool'), join(dir, 'dead'), influx, `st_${name}`, o.delayResolutionMs))
        await rm(dir, { recursive: true, force: true })
      }
    }
    const expected = backlog.frames * FRAME_POINTS
    return { backlog_mb: round(backlog.bytes / 1024 / 1024), backlog_frames: backlog.frames, expected_points: expected, all_points_stored: results.every(x => x.points === expected && x.stored_ecg_points === backlog.frames * 125), results }
  } finally {
    await influx.stop()
    await rm(work, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { mb: { type: 'string', default: '50' }, rounds: { type: 'string', default: '1' }, units: { type: 'string', default: '20' }, 'delay-resolution-ms': { type: 'string', default: '20' }, modes: { type: 'string', default: 'worker,main' }, gzip: { type: 'string', default: 'on' } } })
  const modes = values.modes.split(',')
  if (modes.length === 0 || !modes.every(m => m === 'worker' || m === 'main')) throw new Error('--modes: worker, main or worker,main')
  if (values.gzip !== 'on' && values.gzip !== 'off' && values.gzip !== 'both') throw new Error('--gzip: on, off or both')
  const out = await runSinkThreadBench({ mb: Number(values.mb), rounds: Number(values.rounds), units: Number(values.units), delayResolutionMs: Number(values['delay-resolution-ms']), modes: modes as Array<'worker' | 'main'>, gzip: values.gzip })
  process.stdout.write(JSON.stringify(out, null, 2) + '\n')
}
