/**
 * Crash safety: the real gateway (`ambulink serve`, a child process) is SIGKILLed again and again
 * while persistent-session QoS 1 devices stream, and restarted on the same DATA_DIR and ports.
 * Some kills come from outside at a moment the clock picks (mid-batch); others from inside, at a
 * named crash point (streams/crash-point.ts: an fsync in flight, a write to InfluxDB in flight,
 * InfluxDB written but the spool cursor not moved, a segment rotation, a cursor commit).
 * At the end every frame a device got a PUBACK for must be in InfluxDB exactly once.
 *
 *   node --import tsx loadtest/crash.ts [--units 10] [--frame-ms 50] [--rounds 3]
 *
 * Prints one JSON object. A short version runs in CI (test/faults-crash.test.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CrashPointName } from '../streams/storage/crash-point.js'
import { startGatewayProcess, type GatewayProcess } from '../testkit/gateway-process.js'
import { createDatabase } from '../testkit/influxdb.js'
import { checkStored, numberFlags, registerUnits, sleep, waitSpoolDrained, type StoreCheck } from '../testkit/fault-harness.js'
import { Fleet } from '../simulator/index.js'

export type CrashStep =
  | { kind: 'signal', label: string, afterMs: number }
  | { kind: 'point', label: string, point: CrashPointName, hit: number }

export interface CrashOptions {
  influxUrl: string
  db: string
  units: number
  frameMs: number
  steps: readonly CrashStep[]
  /** How long the last (uncrashed) run streams before the devices drain and stop, ms. */
  settleMs: number
  /** A crash point not reached within this time is replaced by an outside SIGKILL, ms. */
  pointTimeoutMs: number
  log?: (msg: string) => void
}

export interface CrashRun {
  label: string
  how: string
  /** 'SIGKILL' when the process died by a kill, as intended. */
  signal: string | null
  uptimeMs: number
  framesAckedDuringRun: number
}

export interface CrashResult extends StoreCheck {
  unitsCount: number
  frameMs: number
  runs: CrashRun[]
  framesGenerated: number
  framesResent: number
  reconnects: number
  drainMs: number
}

/** The standard sequence: one kill at every kind of moment. */
export function crashSteps (rounds: number): CrashStep[] {
  const steps: CrashStep[] = []
  for (let r = 0; r < rounds; r++) {
    steps.push(
      { kind: 'signal', label: 'mid-batch (outside SIGKILL while devices stream)', afterMs: 900 + r * 370 },
      { kind: 'point', label: 'mid-fsync (record handed to group commit, fdatasync in flight)', point: 'spool-append-inflight', hit: 120 + r * 97 },
      { kind: 'point', label: 'durable, PUBACK not sent', point: 'spool-durable', hit: 90 + r * 53 },
      { kind: 'point', label: 'mid-flush (InfluxDB write request in flight)', point: 'sink-posting', hit: 3 + r },
      { kind: 'point', label: 'flushed (InfluxDB acknowledged, cursor not moved)', point: 'sink-written', hit: 4 + r },
      { kind: 'point', label: 'segment rotation (old segment still flushing)', point: 'spool-rotate', hit: 1 + r },
      { kind: 'point', label: 'cursor commit (old segments not yet deleted)', point: 'spool-commit', hit: 5 + r }
    )
  }
  return steps
}

function envFor (step: CrashStep | undefined): Record<string, string> {
  return step?.kind === 'point' ? { AMBULINK_CRASH_AT: `${step.point}:${step.hit}` } : { AMBULINK_CRASH_AT: '' }
}

export async function runCrash (o: CrashOptions): Promise<CrashResult> {
  const log = o.log ?? (() => {})
  const root = await mkdtemp(join(tmpdir(), 'ambulink-crash-'))
  const dataDir = join(root, 'data')
  let gp: GatewayProcess | null = null
  let fleet: Fleet | null = null
  let failed = true
  try {
    await createDatabase(o.influxUrl, o.db)
    const units = await registerUnits(dataDir, 'crash', o.units)
    gp = await startGatewayProcess({
      dataDir,
      env: {
        INFLUX_URL: o.influxUrl,
        INFLUX_API: 'v1',
        INFLUX_DB: o.db,
        // Small segments and batches: rotations, commits and writes happen many times a second.
        SPOOL_SEGMENT_BYTES: String(256 * 1024),
        INFLUX_BATCH_POINTS: '2000',
        INFLUX_LINGER_MS: '5',
        ...envFor(o.steps[0])
      }
    })
    fleet = new Fleet({
      url: `mqtt://127.0.0.1:${gp.ports.mqtt}`,
      units,
      frameMs: o.frameMs,
      clean: false,
      qos: 1,
      reconnectPeriodMs: 200,
      connectTimeoutMs: 3000,
      keepaliveS: 10,
      drainTimeoutMs: 60_000,
      log
    })
    await fleet.start()
    const runs: CrashRun[] = []
    let diedStarting = false
    for (let i = 0; i < o.steps.length; i++) {
      const step = o.steps[i]!
      const t0 = Date.now()
      const acked0 = fleet.stats().framesAcked
      let how: string
      if (diedStarting && step.kind === 'point') {
        how = `crash point ${step.point}:${step.hit} during start-up (devices reconnected before HTTP listened)`
      } else if (step.kind === 'signal') {
        await sleep(step.afterMs)
        await gp.kill()
        how = `SIGKILL from outside after ${step.afterMs} ms`
      } else {
        const exited = await Promise.race([gp.exited.then(() => true), sleep(o.pointTimeoutMs).then(() => false)])
        if (!exited) await gp.kill()
        how = exited ? `crash point ${step.point}:${step.hit}` : `crash point ${step.point}:${step.hit} not reached in ${o.pointTimeoutMs} ms; SIGKILL from outside`
      }
      const exit = await gp.exited
      runs.push({ label: step.label, how, signal: exit.signal, uptimeMs: Date.now() - t0, framesAckedDuringRun: fleet.stats().framesAcked - acked0 })
      log(`run ${i + 1}: ${how} (${exit.signal ?? exit.code})`)
      const next = o.steps[i + 1]
      diedStarting = !(await gp.restart(envFor(next), { mayExitBeforeListening: next?.kind === 'point' }))
    }
    await sleep(o.settleMs)
    const stats = await fleet.stop({ drain: true, timeoutMs: 60_000 })
    const drainMs = await waitSpoolDrained(`http://127.0.0.1:${gp.ports.http}`, 60_000)
    const check = await checkStored(o.influxUrl, o.db, fleet.unitReports())
    failed = check.lost > 0 || check.extra > 0
    return {
      unitsCount: o.units,
      frameMs: o.frameMs,
      runs,
      framesGenerated: stats.framesGenerated,
      framesResent: stats.framesResent,
      reconnects: stats.reconnects,
      drainMs,
      ...check
    }
  } finally {
    await fleet?.close()
    await gp?.stop()
    // Kept for a post-mortem (spool segments, cursor, gateway log) when something went wrong.
    if (failed) log(`crash run failed: data and gateway log kept in ${root}`)
    else await rm(root, { recursive: true, force: true })
  }
}

async function main (): Promise<void> {
  const f = numberFlags(process.argv.slice(2), { units: 10, frameMs: 50, rounds: 3 })
  const { startInfluxDB } = await import('../testkit/influxdb.js')
  const influx = await startInfluxDB()
  try {
    const t0 = Date.now()
    const result = await runCrash({
      influxUrl: influx.url,
      db: 'crash',
      units: f.units,
      frameMs: f.frameMs,
      steps: crashSteps(f.rounds),
      settleMs: 3000,
      pointTimeoutMs: 15_000,
      log: msg => { process.stderr.write(msg + '\n') }
    })
    process.stdout.write(JSON.stringify({ scenario: 'crash', wallMs: Date.now() - t0, ...result }, null, 2) + '\n')
    process.exitCode = result.lost === 0 && result.extra === 0 ? 0 : 1
  } finally {
    await influx.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
