/**
 * What the dashboard needs from the alert engine (gw.alerts), and the translation of its NEWS2
 * result into the page's view. Typed structurally so the dashboard depends on the engine's public
 * surface only.
 */
import type { News2Param, News2Result } from '../../streams/index.js'
import type { Alert, AlertEvent } from '../../streams/index.js'
import type { News2View, TrendSign } from '../../streams/index.js'

export interface AlertEngineLike {
  on: (event: 'alert', listener: (e: AlertEvent) => void) => unknown
  off: (event: 'alert', listener: (e: AlertEvent) => void) => unknown
  /** Records the acknowledgement by a named clinician; resolves (or returns) the alert, or a falsy value when unknown. */
  acknowledge: (id: string, by: string) => unknown
  openAlerts: () => Alert[]
  alertsFor: (unit: string) => Alert[]
  news2For: (unit: string) => News2Result | null | undefined
  news2History?: (unit: string) => unknown
  /** (issue 9) The 10 s 12-lead snapshot of an ECG STEMI alert, or null. */
  ecgSnapshot?: (alertId: string) => Promise<unknown>
  /** Sets the encounter's SpO2 scale (audited: who, when); false for an unknown unit. */
  setSpo2ScaleBy?: (unit: string, scale: 1 | 2, by: string) => Promise<boolean>
  /** False for a patient NEWS2 does not apply to (under 16). */
  news2Applies?: (unit: string) => boolean
}

/** The card's NEWS2 for a child: not a score (RCP 2017 validated NEWS2 for adults ≥ 16 only). */
export const NEWS2_NOT_APPLIED = 'Under 16: NEWS2 not applied (RCP 2017); paediatric limits by age band'

/** NEWS2 chart parameter → the vital-sign fields (trend columns) it colours. */
const PARAM_SIGNS: Readonly<Record<News2Param, readonly TrendSign[]>> = {
  respiration_rate: ['respiratory_rate'],
  spo2: ['spo2'],
  air_or_oxygen: ['supplemental_o2'],
  systolic_bp: ['nibp_systolic'],
  pulse: ['heart_rate', 'pulse_rate'],
  consciousness: ['consciousness_acvpu'],
  temperature: ['temperature']
}

export function news2View (r: News2Result): News2View {
  const scores: News2View['scores'] = {}
  let at = 0
  for (const [param, p] of Object.entries(r.parameters) as Array<[News2Param, News2Result['parameters'][News2Param]]>) {
    if ('missing' in p) continue
    for (const sign of PARAM_SIGNS[param]) scores[sign] = p.score
    if (p.atMs > at) at = p.atMs
  }
  return {
    total: r.complete && r.total !== null ? r.total : r.partialTotal,
    partial: !r.complete,
    missing: [...r.missing],
    band: r.band ?? 'none',
    scores,
    at
  }
}

/** The engine's NEWS2 history as (time, total, partial) points, whatever shape its entries take. */
export function news2Points (history: unknown): Array<{ t: number, total: number | null, partial: boolean }> {
  if (!Array.isArray(history)) return []
  const out: Array<{ t: number, total: number | null, partial: boolean }> = []
  for (const h of history as unknown[]) {
    if (typeof h !== 'object' || h === null) continue
    const e = h as Record<string, unknown>
    const t = [e.atMs, e.t, e.at, e.time].find(v => typeof v === 'number')
    const result = (typeof e.result === 'object' && e.result !== null ? e.result : e) as Record<string, unknown>
    const complete = result.complete !== false && result.total !== null
    const total = typeof result.total === 'number' ? result.total : typeof result.partialTotal === 'number' ? result.partialTotal : null
    if (typeof t === 'number') out.push({ t, total, partial: !complete })
  }
  return out
}
