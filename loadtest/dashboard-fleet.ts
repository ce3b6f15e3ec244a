/**
 * A demo-like fleet for the dashboard's browser tests and rendering benchmark: `n` units over
 * real MQTT into a gateway, with the demo's patient mix (simulator/patient-mix.ts). The STEMI
 * units stream 12-lead ECG at 500 Hz in 250 ms frames (their page is the one opened); the others
 * numerics, positions and assessments once a second without ECG, which is what the fleet and
 * incoming boards draw, at a fraction of the machine's time.
 */
import { Fleet } from '../simulator/fleet.js'
import { composeFleet } from '../simulator/patient-mix.js'
import type { PatientProfile } from '../simulator/vitals.js'

export interface DashboardFleet {
  /** Unit id → profile. */
  profiles: Map<string, PatientProfile>
  stop: () => Promise<void>
}

export async function startDashboardFleet (opts: {
  mqttUrl: string
  n: number
  seed: number
  addDevice: (unit: string) => Promise<string>
  /** Unit ids are `${prefix}NNN`. */
  prefix?: string
}): Promise<DashboardFleet> {
  const profiles = composeFleet(opts.n, opts.seed)
  const map = new Map<string, PatientProfile>()
  const ecg: Array<{ unitId: string, token: string }> = []
  const plain: Array<{ unitId: string, token: string }> = []
  const ecgProfiles: PatientProfile[] = []
  const plainProfiles: PatientProfile[] = []
  for (let i = 0; i < opts.n; i++) {
    const unitId = `${opts.prefix ?? 'LUX-'}${String(i + 1).padStart(3, '0')}`
    const p = profiles[i]!
    map.set(unitId, p)
    const cred = { unitId, token: await opts.addDevice(unitId) }
    if (p === 'stemi') { ecg.push(cred); ecgProfiles.push(p) } else { plain.push(cred); plainProfiles.push(p) }
  }
  // Every MQTT login costs a scrypt check on the gateway: hundreds at once on a busy machine take
  // a while, so the fleet waits longer than its defaults for them.
  const patience = { connectTimeoutMs: 60_000, startTimeoutMs: 300_000 }
  const fleets: Fleet[] = []
  if (ecg.length > 0) fleets.push(new Fleet({ url: opts.mqttUrl, units: ecg, profiles: ecgProfiles, leads: 12, seed: opts.seed, ...patience }))
  if (plain.length > 0) fleets.push(new Fleet({ url: opts.mqttUrl, units: plain, profiles: plainProfiles, leads: 0, frameMs: 1000, seed: opts.seed + 1, ...patience }))
  await Promise.all(fleets.map(f => f.start()))
  let stopped: Promise<void> | null = null
  return {
    profiles: map,
    // Safe to call twice (a test may stop the fleet before cleanup does).
    stop: async () => { await (stopped ??= Promise.all(fleets.map(f => f.stop({ drain: false, timeoutMs: 2000 }))).then(() => {})) }
  }
}
