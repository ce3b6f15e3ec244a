/**
 * The alert priority path (issue 12, goal 2), two gateway builds in one run: publish → alert on
 * MQTT, and publish → PUBACK, with a real-time 12-lead fleet streaming and InfluxDB writing on
 * the same machine. The baseline is another checkout (e.g. the commit before the priority path,
 * unpacked with `git archive`, node_modules linked); "current" is this repository. Phases
 * alternate (baseline, current, then current, baseline in the next round) so that a change of the
 * shared machine's load falls on both; each phase gets a fresh gateway, DATA_DIR and database.
 *
 * Latency is the bench's (loadtest/bench-alerts.ts): probe units stream like the others, their
 * systolic pressure crossing the 90 mmHg rule every second; a clinician subscribed to `alerts/#`
 * timestamps each raised/cleared event. Also reported: the fleet's PUBACK latency and the
 * gateway's mean spool append (write + fdatasync, from /metrics): what the alert waited for before.
 *
 *   node --import tsx loadtest/alert-priority.ts --baseline-root DIR [--units 100,200]
 *     [--probes 4] [--warmup-s 10] [--measure-s 30] [--rounds 1]
 *
 * Prints progress on stderr and one JSON object on stdout.
 */
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { Fleet } from '../simulator/fleet.js'
import { startGatewayProcess, type GatewayProcess } from '../testkit/gateway-process.js'
import { startInfluxDB } from '../testkit/influxdb.js'
import { AlertProbes } from './bench-alerts.js'
import { unitIds, writeBenchCredentials } from './bench-credentials.js'

const { values } = parseArgs({
  options: {
    'baseline-root': { type: 'string' },
    units: { type: 'string', default: '100,200' },
    probes: { type: 'string', default: '4' },
    'warmup-s': { type: 'string', default: '10' },
    'measure-s': { type: 'string', default: '30' },
    rounds: { type: 'string', default: '1' },
    /** Keep the work folder (gateway logs) instead of removing it. */
    keep: { type: 'boolean', default: false }
  }
})
if (values['baseline-root'] === undefined) throw new Error('--baseline-root DIR is required (a checkout of the build to compare with)')
const baselineRoot = resolve(values['baseline-root'])
const unitCounts = values.units.split(',').map(Number)
const probeCount = Number(values.probes)
const warmupMs = Number(values['warmup-s']) * 1000
const measureMs = Number(values['measure-s']) * 1000
const rounds = Number(values.rounds)
const log = (msg: string): void => { process.stderr.write(`alert-priority: ${msg}\n`) }

interface Phase {
  build: 'baseline' | 'current'
  units: number
  round: number
  publish_to_alert_ms: { p50: number, p99: number, max: number, count: number }
  puback_ms: { p50: number, p99: number }
  spool_append_mean_ms: number
  frames_acked: number
  loadavg_1m: number
  /** Exit of the gateway before the phase ended (a crash), or null. */
  gateway_exited_during_phase: string | null
}

const work = await mkdtemp(join(tmpdir(), 'ambulink-alert-priority-'))
const influx = await startInfluxDB({ logLevel: 'warn' })
const phases: Phase[] = []
const loadStart = loadavg()[0]!
try {
  const maxUnits = Math.max(...unitCounts)
  const probeIds = unitIds('probe', probeCount)
  const fleetIds = unitIds('amb', maxUnits - probeCount)
  const credsDir = join(work, 'creds')
  const creds = await writeBenchCredentials(credsDir, [...probeIds, ...fleetIds], 1024)
  let n = 0
  for (let round = 1; round <= rounds; round++) {
    for (const units of unitCounts) {
      const order: Array<'baseline' | 'current'> = round % 2 === 1 ? ['baseline', 'current'] : ['current', 'baseline']
      for (const build of order) {
        n++
        log(`round ${round}, ${units} units, ${build}`)
        phases.push(await runPhase(build, units, round, `p${n}`, credsDir, creds, probeIds, fleetIds.slice(0, units - probeCount)))
        const p = phases.at(-1)!
        log(`  alert p50 ${p.publish_to_alert_ms.p50} p99 ${p.publish_to_alert_ms.p99} ms (${p.publish_to_alert_ms.count}), PUBACK p50 ${p.puback_ms.p50} p99 ${p.puback_ms.p99} ms, spool append mean ${p.spool_append_mean_ms} ms`)
      }
    }
  }
} finally {
  await influx.stop()
  if (values.keep === true) log(`work folder kept: ${work}`)
  else await rm(work, { recursive: true, force: true })
}

const ratios = unitCounts.map(units => {
  const of = (b: 'baseline' | 'current'): Phase[] => phases.filter(p => p.build === b && p.units === units)
  const mean = (xs: Phase[], f: (p: Phase) => number): number => xs.reduce((a, p) => a + f(p), 0) / Math.max(1, xs.length)
  const b = of('baseline')
  const c = of('current')
  return {
    units,
    alert_p50_current_over_baseline: round2(mean(c, p => p.publish_to_alert_ms.p50) / mean(b, p => p.publish_to_alert_ms.p50)),
    alert_p99_current_over_baseline: round2(mean(c, p => p.publish_to_alert_ms.p99) / mean(b, p => p.publish_to_alert_ms.p99))
  }
})
process.stdout.write(JSON.stringify({ baseline_root: baselineRoot, loadavg_1m_start: round2(loadStart), loadavg_1m_end: round2(loadavg()[0]!), phases, ratios }) + '\n')

async function runPhase (build: 'baseline' | 'current', units: number, round: number, db: string, credsDir: string, creds: Awaited<ReturnType<typeof writeBenchCredentials>>, probeIds: string[], fleetIds: string[]): Promise<Phase> {
  const dataDir = join(work, db)
  let gw: GatewayProcess | null = null
  try {
    // One credentials file for every phase (as the bench does): linked into each DATA_DIR.
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    await symlink(join(credsDir, 'credentials.json'), join(dataDir, 'credentials.json'))
    gw = await startGatewayProcess({
      dataDir,
      root: build === 'baseline' ? baselineRoot : undefined,
      env: { INFLUX_URL: influx.url, INFLUX_API: 'v1', INFLUX_DB: db, LOG_LEVEL: 'info' }
    })
    let exited: string | null = null
    void gw.exited.then(i => { exited = JSON.stringify(i) })
    const url = `mqtt://127.0.0.1:${gw.ports.mqtt}`
    const fleet = new Fleet({ url, units: fleetIds.map(unitId => ({ unitId, token: creds.token })), startTimeoutMs: 120_000, drainTimeoutMs: 30_000, log: msg => { log(`fleet: ${msg}`) } })
    const probes = new AlertProbes({ url, clinicianUrl: url, units: probeIds, token: creds.token, clinician: creds.clinician, log: msg => { log(`probe: ${msg}`) } })
    await probes.connect()
    await fleet.start()
    const t0 = Date.now()
    probes.start(fleet.startedAtMs)
    await new Promise(resolve => setTimeout(resolve, warmupMs))
    const before = spoolAppend(await metricsOf(gw))
    await new Promise(resolve => setTimeout(resolve, measureMs))
    const after = spoolAppend(await metricsOf(gw))
    const alert = probes.summary(t0 + warmupMs, Date.now())
    const load = loadavg()[0]!
    await probes.stop(5000)
    const stats = await fleet.stop({ drain: false })
    return {
      build,
      units,
      round,
      publish_to_alert_ms: alert,
      puback_ms: { p50: round2(stats.ackLatencyMs.p50), p99: round2(stats.ackLatencyMs.p99) },
      spool_append_mean_ms: round2((after.sum - before.sum) / Math.max(1, after.count - before.count) * 1000),
      frames_acked: stats.framesAcked,
      loadavg_1m: round2(load),
      gateway_exited_during_phase: exited
    }
  } finally {
    await gw?.stop()
  }
}

/** The gateway's /metrics text; '' when it does not answer in time (an overloaded machine). */
async function metricsOf (gw: GatewayProcess): Promise<string> {
  return await gw.metrics().catch((err: Error) => { log(`/metrics did not answer: ${err.message}`); return '' })
}

/** Sum (s) and count of ambulink_spool_append_duration_seconds (NaN when /metrics did not answer). */
function spoolAppend (metrics: string): { sum: number, count: number } {
  const num = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN)
  return { sum: num('ambulink_spool_append_duration_seconds_sum'), count: num('ambulink_spool_append_duration_seconds_count') }
}

function round2 (x: number): number { return Math.round(x * 100) / 100 }
