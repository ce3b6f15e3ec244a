/**
 * Who the simulated ambulances carry: most an ordinary patient, a few a STEMI, a stroke or a
 * patient deteriorating on the way in, at rates of the order a receiving hospital sees — so a demo
 * of 60 units looks like a real evening rather than a wall of emergencies.
 *
 * Rates (shares of ambulance patients conveyed; docs/dashboard.md, "Demo fleet"):
 * - STEMI 2 %: NHS England Ambulance Quality Indicators report ~0.5 % of conveyed patients as
 *   STEMI across all hospitals; a primary-PCI centre, where STEMIs are routed, receives a few
 *   times the average share.
 * - Stroke 4 %: suspected stroke is ~2.5-3 % of conveyed patients in the same indicators, again
 *   concentrated on the stroke centre.
 * - Deteriorating 8 %: NEWS ≥ 7 (high clinical risk) in about 1 in 10 to 1 in 15 patients at the
 *   first prehospital assessment (Silcock et al., Resuscitation 2015, Scotland).
 * The rest: `healthy`, i.e. an ordinary transport (normal vital signs, NEWS2 low).
 */
import { Rng } from './rng.js'
import type { PatientProfile } from './vitals.js'

export type PatientMix = Readonly<Record<Exclude<PatientProfile, 'healthy'>, number>>

export const DEMO_PATIENT_MIX: PatientMix = Object.freeze({
  stemi: 0.02, // see above: NHS England AQI, concentrated on the PCI centre
  stroke: 0.04, // see above: NHS England AQI, concentrated on the stroke centre
  deteriorating: 0.08 // see above: Silcock et al. 2015
})

/**
 * Profiles for `n` units: each pathway's expected count rounded (at least one of each once there
 * are 4 units or more, so a small demo still shows every pathway), the rest ordinary, shuffled
 * with `seed` so the same seed gives the same fleet.
 */
export function composeFleet (n: number, seed: number, mix: PatientMix = DEMO_PATIENT_MIX): PatientProfile[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`unit count ${n} must be a non-negative integer`)
  const out: PatientProfile[] = []
  for (const p of ['stemi', 'stroke', 'deteriorating'] as const) {
    let k = Math.round(n * mix[p])
    if (n >= 4) k = Math.max(1, k)
    for (let i = 0; i < k && out.length < n; i++) out.push(p)
  }
  while (out.length < n) out.push('healthy')
  const rng = new Rng(seed)
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
