/**
 * Children (under 16): NEWS2 is not applied — the RCP validated it for adults ≥ 16 only (RCP 2017,
 * "NEWS2 should not be used in children (< 16 years)"); the alert names that on the unit's card.
 * Heart rate, pulse, respiratory rate and systolic pressure use an age-band table instead:
 *
 * - medium: outside the normal range for the age band (APLS: Advanced Paediatric Life Support,
 *   6th ed., 2016, table of normal physiological values, awake child);
 * - critical (high at once): heart rate < 60 /min (ERC Paediatric Life Support 2021: with poor
 *   perfusion, start CPR); heart rate above the supraventricular-tachycardia rate (ERC PLS 2021:
 *   infants > 220, children > 180 /min); systolic hypotension (PALS/AHA 2020: < 70 mmHg in
 *   infants, < 70 + 2 × age in years from 1 to 10, < 90 mmHg from 10).
 *
 * The windows and margins are the adult rule's (rules.ts). docs/alerts.md lists the table.
 */
import type { ThresholdRule } from './rules.js'

/** Under this age (years) NEWS2 is not applied and the table below replaces the adult limits. */
export const PAEDIATRIC_BELOW_YEARS = 16

interface Band {
  /** Upper age bound (exclusive), years. */
  below: number
  hr: [number, number, number, number]   // low, high, critLow, critHigh
  rr: [number, number]                   // low, high
  sbp: [number, number]                  // low, critLow
}

// APLS 6th ed. normal ranges; ERC PLS 2021 and PALS 2020 critical limits (module comment).
const BANDS: readonly Band[] = [
  { below: 1, hr: [110, 160, 60, 220], rr: [30, 40], sbp: [70, 70] },
  { below: 2, hr: [100, 150, 60, 180], rr: [25, 35], sbp: [80, 72] },
  { below: 5, hr: [95, 140, 60, 180], rr: [25, 30], sbp: [80, 74] },
  { below: 12, hr: [80, 120, 60, 180], rr: [20, 25], sbp: [90, 80] },
  { below: 16, hr: [60, 100, 60, 180], rr: [15, 20], sbp: [100, 90] }
]

/** The age band's label for messages and docs, e.g. "2–5 y". */
export function bandLabel (ageYears: number): string {
  let from = 0
  for (const b of BANDS) {
    if (ageYears < b.below) return `${from}–${b.below} y`
    from = b.below
  }
  return 'adult'
}

/**
 * The rules for a child of `ageYears`: the adult rules with the age band's limits for heart rate,
 * pulse, respiratory rate and systolic pressure. null for adults (≥ 16).
 */
export function paediatricRules (rules: readonly ThresholdRule[], ageYears: number): ThresholdRule[] | null {
  const b = BANDS.find(x => ageYears < x.below)
  if (b === undefined) return null
  return rules.map(r => {
    switch (r.sign) {
      case 'heart_rate':
      case 'pulse_rate':
        return Object.freeze({ ...r, low: b.hr[0], high: b.hr[1], critLow: b.hr[2], critHigh: b.hr[3], lowPriority: 'medium', highPriority: 'medium' })
      case 'respiratory_rate':
        return Object.freeze({ ...r, low: b.rr[0], high: b.rr[1], critLow: null, critHigh: null, clearMargin: Math.min(r.clearMargin, 1) })
      case 'nibp_systolic':
        return Object.freeze({ ...r, low: b.sbp[0], high: null, critLow: b.sbp[1] })
      default:
        return r
    }
  })
}
