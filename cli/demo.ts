/**
 * `ambulink demo`: the gateway plus a simulated fleet streaming into it over real MQTT, so a new
 * user sees data flowing at once. Demo units get fresh tokens at every start (nothing secret is
 * kept in plain text); a clinician `demo` user gets a fresh password, printed to this terminal
 * (not to the log) so the dashboard can be opened. Rates are reported while it runs.
 */
import { parseArgs } from 'node:util'
import { Fleet } from '../simulator/fleet.js'
import { composeFleet } from '../simulator/patient-mix.js'
import { progressLine } from './simulate.js'
import type { LeadSet } from '../simulator/frame-source.js'
import { runUntilSignal } from './lifecycle.js'
import { loadConfig } from '../gateway/config.js'
import { addDevice, addUser } from '../gateway/credentials.js'
import { createLogger } from '../gateway/logger.js'
import { startGateway } from '../gateway/server.js'

export async function runDemo (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      units: { type: 'string', default: '5' },
      leads: { type: 'string', default: '12' },
      progress: { type: 'string', default: '5' },
      seed: { type: 'string' }
    }
  })
  const units = Number(values.units)
  const leads = Number(values.leads)
  if (!Number.isInteger(units) || units < 1 || units > 500) {
    process.stderr.write('--units must be a whole number from 1 to 500\n')
    return 2
  }
  if (leads !== 12 && leads !== 1 && leads !== 0) {
    process.stderr.write('--leads must be 12, 1 or 0\n')
    return 2
  }
  // The demo's own log is quieter by default so the progress lines stay readable.
  const config = loadConfig(process.env.LOG_LEVEL === undefined ? { logLevel: 'warn' } : {})
  const log = createLogger(config.logLevel)
  const creds = []
  for (let i = 1; i <= units; i++) {
    const unitId = `amb-${String(i).padStart(2, '0')}`
    creds.push({ unitId, token: await addDevice(config.dataDir, unitId) })
  }
  const password = await addUser(config.dataDir, 'demo', 'clinician')
  const gw = await startGateway(config, { log })
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host
  // A realistic evening: mostly ordinary patients, STEMI, stroke and deterioration at the rates
  // in simulator/patient-mix.ts (one of each at least, from 4 units up).
  const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 32)
  const profiles = composeFleet(units, seed)
  const fleet = new Fleet({
    profiles,
    seed,
    url: `mqtt://${host}:${gw.ports.mqtt ?? 1883}`,
    units: creds,
    leads: leads as LeadSet,
    progressIntervalMs: Number(values.progress) * 1000,
    onProgress: p => { process.stderr.write(progressLine(p) + '\n') },
    log: msg => { process.stderr.write(`simulate: ${msg}\n`) }
  })
  await fleet.start()
  const dashboard = `http://localhost:${gw.ports.http ?? 8080}/`
  process.stderr.write([
    '',
    `Ambulink demo: ${units} ambulances streaming ${leads}-lead ECG, numerics and positions.`,
    `  Patients    ${(['stemi', 'stroke', 'deteriorating', 'healthy'] as const).map(p => `${profiles.filter(x => x === p).length} ${p === 'healthy' ? 'ordinary' : p}`).join(', ')} (seed ${seed})`,
    `  Dashboard   ${dashboard}   (user: demo, password: ${password})`,
    `  Metrics     http://localhost:${gw.ports.http ?? 8080}/metrics`,
    `  Storage     ${config.influxUrl ?? `embedded spool in ${config.dataDir}/spool (set INFLUX_URL to drain into InfluxDB)`}`,
    '  Ctrl-C to stop.',
    ''
  ].join('\n') + '\n')
  return await runUntilSignal(gw, async () => {
    const stats = await fleet.stop({ drain: true, timeoutMs: 3000 })
    process.stderr.write(`demo: ${stats.framesAcked} frames acknowledged, ${stats.pending} pending at stop\n`)
  })
}
