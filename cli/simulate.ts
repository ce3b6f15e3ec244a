/**
 * `ambulink simulate`: stream a simulated fleet into a running gateway. Progress lines go to
 * stderr; the final JSON summary alone goes to stdout, so it can be piped into a report.
 * Exit code: 0 when every generated frame was acknowledged, 1 when some were not (or the fleet
 * could not connect), 2 on a usage error.
 */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { SimulatorError } from '../simulator/errors.js'
import { FLEET_DEFAULTS, type FleetOptions, type FleetProgress, type UnitCredentials } from '../simulator/fleet-options.js'
import type { LeadSet } from '../simulator/frame-source.js'
import { Fleet } from '../simulator/fleet.js'
import { PATIENT_PROFILES, type PatientProfile } from '../simulator/vitals.js'

const USAGE = `usage: ambulink simulate --credentials FILE [options]

  --url URL             broker URL (default mqtt://127.0.0.1:1883; also mqtts://…:8883, ws://…:8080/mqtt)
  --credentials FILE    JSON object {"<unitId>": "<token>", …}, e.g. from \`ambulink device add\`
  --units N             use the first N units of the file (default: all)
  --duration S          seconds of device time to stream (default 60; 0 = until Ctrl-C)
  --leads 12|1|0        ECG leads per frame (default ${FLEET_DEFAULTS.leads})
  --qos 1|0             telemetry QoS (default ${FLEET_DEFAULTS.qos})
  --frame-ms MS         frame length (default ${FLEET_DEFAULTS.frameMs})
  --ecg-hz HZ           ECG sample rate (default ${FLEET_DEFAULTS.ecgHz})
  --profiles LIST       comma-separated ${PATIENT_PROFILES.join(',')} (default: all, in turn)
  --window N            frames in flight per unit (default ${FLEET_DEFAULTS.inflightWindow})
  --clean true|false    MQTT clean session (default ${String(FLEET_DEFAULTS.clean)})
  --progress S          seconds between progress lines (default ${FLEET_DEFAULTS.progressIntervalMs / 1000})
  --drain-timeout S     wait this long for outstanding PUBACKs at the end (default ${FLEET_DEFAULTS.drainTimeoutMs / 1000})
  --ca FILE, --cert FILE, --key FILE   TLS material (mqtts/wss; cert+key for mutual TLS)
  --insecure            do not verify the server certificate
  --seed N              reproducible patients
`

class UsageError extends Error {}

export async function runSimulateCli (argv: string[]): Promise<number> {
  let options: FleetOptions
  try {
    options = await parseOptions(argv)
  } catch (err) {
    if (err instanceof UsageError || err instanceof SimulatorError) {
      process.stderr.write(`ambulink simulate: ${err.message}\n\n${USAGE}`)
      return 2
    }
    if ((err as { code?: string }).code === 'HELP') {
      process.stderr.write(USAGE)
      return 0
    }
    throw err
  }

  let fleet: Fleet
  try {
    fleet = new Fleet({
      ...options,
      log: msg => process.stderr.write(`simulate: ${msg}\n`),
      onProgress: p => process.stderr.write(progressLine(p) + '\n')
    })
  } catch (err) {
    if (err instanceof SimulatorError) {
      process.stderr.write(`ambulink simulate: ${err.message}\n`)
      return 2
    }
    throw err
  }

  const wallStart = performance.now()
  try {
    await fleet.start()
  } catch (err) {
    process.stderr.write(`ambulink simulate: ${(err as Error).message}\n`)
    return 1
  }

  // Ctrl-C ends the run early but still drains and prints the summary.
  let interrupted = false
  let onSignal: () => void = () => {}
  const signalled = new Promise<void>(resolve => {
    onSignal = () => {
      interrupted = true
      process.stderr.write('simulate: interrupted, draining…\n')
      resolve()
    }
  })
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    await Promise.race([fleet.whenGenerated(), signalled])
    const stats = await fleet.stop({ drain: true })
    const wallMs = performance.now() - wallStart
    const incomplete = fleet.unitReports().filter(u => u.pending > 0 || u.dropped > 0)
    const summary = {
      url: fleet.options.url,
      units: stats.units,
      leads: fleet.options.leads,
      qos: fleet.options.qos,
      frameMs: fleet.options.frameMs,
      interrupted,
      wallMs: Math.round(wallMs),
      framesPerSec: Math.round(stats.framesAcked / (wallMs / 1000) * 10) / 10,
      ecgPointsPerSec: Math.round(stats.ecgPointsAcked / (wallMs / 1000)),
      stats,
      unitsIncomplete: incomplete.map(u => ({ unitId: u.unitId, pending: u.pending, dropped: u.dropped, ackedSeqRanges: u.ackedSeqRanges }))
    }
    process.stdout.write(JSON.stringify(summary, null, 2) + '\n')
    if (stats.pending > 0 || stats.dropped > 0) {
      process.stderr.write(`simulate: ${stats.pending} frames unacknowledged, ${stats.dropped} dropped\n`)
      return 1
    }
    return 0
  } finally {
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    await fleet.stop()
  }
}

async function parseOptions (argv: string[]): Promise<FleetOptions> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
        credentials: { type: 'string' },
        units: { type: 'string' },
        duration: { type: 'string', default: '60' },
        leads: { type: 'string' },
        qos: { type: 'string' },
        'frame-ms': { type: 'string' },
        'ecg-hz': { type: 'string' },
        profiles: { type: 'string' },
        window: { type: 'string' },
        clean: { type: 'string' },
        progress: { type: 'string' },
        'drain-timeout': { type: 'string' },
        ca: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        insecure: { type: 'boolean', default: false },
        seed: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false }
      }
    })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const v = parsed.values
  if (v.help) throw Object.assign(new Error('help'), { code: 'HELP' })
  if (v.credentials === undefined) throw new UsageError('--credentials FILE is required')

  let units = await readCredentials(v.credentials)
  if (v.units !== undefined) {
    const n = int('--units', v.units, 1)
    if (n > units.length) throw new UsageError(`--units ${n}, but ${v.credentials} holds only ${units.length} units`)
    units = units.slice(0, n)
  }
  const durationS = num('--duration', v.duration, 0)
  const leads = v.leads === undefined ? undefined : int('--leads', v.leads, 0)
  if (leads !== undefined && leads !== 0 && leads !== 1 && leads !== 12) throw new UsageError('--leads must be 12, 1 or 0')
  const qos = v.qos === undefined ? undefined : int('--qos', v.qos, 0)
  if (qos !== undefined && qos !== 0 && qos !== 1) throw new UsageError('--qos must be 1 or 0')
  let profiles: PatientProfile[] | undefined
  if (v.profiles !== undefined) {
    profiles = v.profiles.split(',').map(s => s.trim()) as PatientProfile[]
    const bad = profiles.find(p => !PATIENT_PROFILES.includes(p))
    if (bad !== undefined) throw new UsageError(`--profiles: unknown profile ${JSON.stringify(bad)} (known: ${PATIENT_PROFILES.join(', ')})`)
  }
  if (v.clean !== undefined && v.clean !== 'true' && v.clean !== 'false') throw new UsageError('--clean must be true or false')

  const mqttOptions: NonNullable<FleetOptions['mqttOptions']> = {}
  if (v.ca !== undefined) mqttOptions.ca = await readFile(v.ca)
  if (v.cert !== undefined) mqttOptions.cert = await readFile(v.cert)
  if (v.key !== undefined) mqttOptions.key = await readFile(v.key)
  if (v.insecure) mqttOptions.rejectUnauthorized = false

  return {
    url: v.url,
    units,
    durationMs: durationS > 0 ? durationS * 1000 : undefined,
    leads: leads as LeadSet | undefined,
    qos: qos as 0 | 1 | undefined,
    frameMs: v['frame-ms'] === undefined ? undefined : int('--frame-ms', v['frame-ms'], 1),
    ecgHz: v['ecg-hz'] === undefined ? undefined : int('--ecg-hz', v['ecg-hz'], 1),
    profiles,
    inflightWindow: v.window === undefined ? undefined : int('--window', v.window, 1),
    clean: v.clean === undefined ? undefined : v.clean === 'true',
    progressIntervalMs: v.progress === undefined ? undefined : Math.round(num('--progress', v.progress, 0.1) * 1000),
    drainTimeoutMs: v['drain-timeout'] === undefined ? undefined : Math.round(num('--drain-timeout', v['drain-timeout'], 0.001) * 1000),
    seed: v.seed === undefined ? undefined : int('--seed', v.seed, 0),
    mqttOptions
  }
}

async function readCredentials (file: string): Promise<UnitCredentials[]> {
  let data: unknown
  try {
    data = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw new SimulatorError('AMB_ERR_SIM_CREDENTIALS', `cannot read credentials ${file}: ${(err as Error).message}`, { cause: err })
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new SimulatorError('AMB_ERR_SIM_CREDENTIALS', `${file} must hold a JSON object {"<unitId>": "<token>", …}`)
  }
  const units: UnitCredentials[] = []
  for (const [unitId, token] of Object.entries(data)) {
    if (typeof token !== 'string') throw new SimulatorError('AMB_ERR_SIM_CREDENTIALS', `${file}: the token of ${unitId} is not a string`)
    units.push({ unitId, token })
  }
  if (units.length === 0) throw new SimulatorError('AMB_ERR_SIM_CREDENTIALS', `${file} lists no units`)
  return units
}

function num (name: string, s: string, min: number): number {
  const n = Number(s)
  if (s.trim() === '' || !Number.isFinite(n) || n < min) throw new UsageError(`${name} ${JSON.stringify(s)} must be a number ≥ ${min}`)
  return n
}

function int (name: string, s: string, min: number): number {
  const n = num(name, s, min)
  if (!Number.isInteger(n)) throw new UsageError(`${name} ${JSON.stringify(s)} must be a whole number`)
  return n
}

/** One human-readable progress line (also used by `ambulink demo`). */
export function progressLine (p: FleetProgress): string {
  const l = p.ackLatencyMs
  return `simulate: t=${(p.elapsedMs / 1000).toFixed(0)}s connected ${p.connected}/${p.units}` +
    ` acked ${p.framesAcked} frames (${p.framesPerSec.toFixed(1)}/s, ${Math.round(p.ecgPointsPerSec)} ECG points/s, ${(p.bytesPerSec / 1e6).toFixed(2)} MB/s)` +
    ` ack p50 ${l.p50} ms p99 ${l.p99} ms max ${l.max} ms pending ${p.pending} dropped ${p.dropped} reconnects ${p.reconnects} errors ${p.errors}`
}
