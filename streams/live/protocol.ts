/**
 * The live feed's wire format, shared by the hub (server) and the dashboard (browser): one copy of
 * the message shapes and of the binary ECG codec. Browser-safe on purpose: no Node imports, only
 * type imports from elsewhere, so esbuild can bundle it into the page. This is the one server file
 * the dashboard may import (a lint rule keeps it so): what the page needs of the alert contract
 * and of NEWS2's scoring (one copy of the RCP thresholds) is re-exported here.
 *
 * JSON text messages carry state (fleet snapshot, unit updates, trends, alerts, NEWS2). ECG goes
 * as binary messages: 12 leads × 500 Hz is 6,000 samples/s per watched unit; as little-endian
 * int16 µV that is 12 kB/s against ~30 kB/s of JSON digits, and the page reads it through a
 * DataView with no parsing and no per-sample allocation while it is busy drawing.
 */
import type { Alert, AlertEvent } from '../alerts/types.js'

export type { Alert, AlertEvent } from '../alerts/types.js'
export { scorePulse, scoreRespirationRate, scoreSpo2Scale1, scoreSystolic, scoreTemperature } from '../alerts/news2.js'

/** Trend columns, in this order: the decoders' VitalSign field names (enum numbers 1..11). */
export const TREND_SIGNS = [
  'heart_rate', 'pulse_rate', 'spo2', 'nibp_systolic', 'nibp_diastolic', 'nibp_mean',
  'respiratory_rate', 'etco2', 'temperature', 'consciousness_acvpu', 'supplemental_o2'
] as const
export type TrendSign = typeof TREND_SIGNS[number]

/** ECG leads by Lead enum number - 1 (bit i of a lead mask is lead i + 1). */
export const LEAD_NAMES = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'] as const
/** An int16 sample with this value means "no signal here" (gap between frames, missing lead). */
export const NO_SAMPLE = -32768

export type News2Band = 'none' | 'low' | 'low-medium' | 'medium' | 'high'

/** The dashboard's view of a unit's NEWS2 (adapted from the alert engine's result). */
export interface News2View {
  /** Sum of the parameters that could be scored (the aggregate when none is missing). */
  total: number
  /** True when at least one of the 7 parameters is missing: the total is a lower bound. */
  partial: boolean
  /** Parameters that could not be scored (never counted as normal). */
  missing: string[]
  /** RCP 2017 clinical risk: low 0-4, low-medium = a single 3, medium 5-6, high ≥ 7; 'none'
   * while an incomplete score could still fall in any band. */
  band: News2Band
  /** Per-parameter score (0..3) by vital-sign field name, for colouring the numerics. */
  scores: Partial<Record<TrendSign, number>>
  /** Unix ms of the numerics it was computed from. */
  at: number
  /** Set when NEWS2 does not apply to this patient (under 16, RCP 2017): the card says why. */
  notApplied?: string
}

export interface PositionView { latitude: number, longitude: number, speedMps: number, headingDeg: number, t: number }

export interface AssessmentView {
  stemiSuspected: boolean
  lamsScore: number
  fastPositive: boolean
  /** Unix ms, 0 = unknown. */
  lastKnownWellMs: number
  ageYears: number
  sex: string
  /** Device time it was reported, Unix ms. */
  t: number
}

/** Where a unit's ECG ring stands: the next sample index, and the epoch that index belongs to. */
export interface EcgCursor { epoch: string, next: number, rateHz: number, leadMask: number }

/** One trend row (1 s bucket): values by TREND_SIGNS order, null where not reported. */
export interface TrendRow {
  index: number
  t: number
  values: Array<number | null>
  position: [lat: number, lon: number, speedMps: number, headingDeg: number] | null
}

export interface UnitView {
  unit: string
  encounter: string
  /** Gateway clock, Unix ms, of the last frame received. */
  lastSeenMs: number
  /** Latest value and device time of each sign reported. */
  numerics: Partial<Record<TrendSign, { value: number, t: number }>>
  position: PositionView | null
  assessment: AssessmentView | null
  news2: News2View | null
  ecg: EcgCursor | null
  /** Trend ring: epoch and the index the next new row will get. */
  trendEpoch: string
  trendNext: number
  /** The newest trend row (the one live updates change), when there is one. */
  row: TrendRow | null
  /** Gateway clock, Unix ms, of this encounter's first frame: the nearest the gateway knows to
   * first medical contact (the crew's monitor goes on at the patient's side). */
  firstSeenMs: number
}

export interface Hospital { name: string, latitude: number, longitude: number }

export type ServerMessage =
  | { type: 'snapshot', epoch: string, now: number, user: { name: string, role: string }, hospital: Hospital, units: UnitView[], alerts: Alert[], assignments: Assignment[] }
  | { type: 'assignment', assignment: Assignment }
  | { type: 'unit', unit: UnitView }
  | { type: 'trend', unit: string, epoch: string, from: number, t: number[], cols: Array<Array<number | null>>, positions: Array<TrendRow['position']> }
  | { type: 'alert', event: AlertEvent }
  | { type: 'alerts', unit: string, alerts: Alert[] }
  | { type: 'news2', unit: string, news2: News2View }
  | { type: 'news2history', unit: string, points: Array<{ t: number, total: number | null, partial: boolean }> }
  | { type: 'gone', unit: string }
  | { type: 'bye', reason: string }

/** Cursors a client sends back on reconnect so the hub resends only what it missed. */
export interface UnitResume { trendEpoch?: string, trendNext?: number, ecgEpoch?: string, ecgNext?: number }

export type ClientMessage =
  | { type: 'hello', watch: string[], resume: Record<string, UnitResume> }
  | { type: 'watch', unit: string, resume?: UnitResume }
  | { type: 'unwatch', unit: string }
  | { type: 'resync', unit: string, trendFrom: number }

// ---- binary ECG chunk ----------------------------------------------------------------------
// Little-endian. Header, then the unit id, padded to even, then int16 µV, lead-major, for each
// lead whose bit is set in leadMask (ascending lead number):
//   0 u8 kind = 1 | 1 u8 version = 1 | 2 u16 rateHz | 4 u16 leadMask | 6 u16 n (samples per lead)
//   8 f64 startIndex | 16 f64 startMs | 24 u8 unit id length | 25.. unit id (ASCII: id pattern)
//   then u8 epoch length, epoch (ASCII): the ring the indices belong to

export const ECG_KIND = 1
const VERSION = 1
const HEADER = 25

export interface EcgChunk {
  unit: string
  /** The ring's epoch: indices from another epoch do not continue these. */
  epoch: string
  rateHz: number
  leadMask: number
  /** Index of the first sample in the unit's ECG stream (the resume cursor). */
  startIndex: number
  /** Device time of the first sample, Unix ms. */
  startMs: number
  /** Samples per lead. */
  n: number
  /** Samples as little-endian int16, lead-major (view into the message). */
  samples: DataView
}

function popcount (x: number): number {
  let c = 0
  for (let v = x; v !== 0; v &= v - 1) c++
  return c
}

/** Bytes an encoded chunk takes. */
export function ecgChunkBytes (unit: string, epoch: string, leadMask: number, n: number): number {
  const head = HEADER + unit.length + 1 + epoch.length
  return head + (head & 1) + popcount(leadMask) * n * 2
}

/**
 * Encodes a chunk. `read(leadIndex, i)` returns sample i (0..n-1) of lead leadIndex (0..11) as
 * int16 µV; a callback rather than arrays so the hub can copy straight out of its ring.
 */
export function encodeEcgChunk (
  out: Uint8Array, unit: string, epoch: string, rateHz: number, leadMask: number, startIndex: number, startMs: number, n: number,
  read: (lead: number, i: number) => number
): Uint8Array {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength)
  dv.setUint8(0, ECG_KIND)
  dv.setUint8(1, VERSION)
  dv.setUint16(2, rateHz, true)
  dv.setUint16(4, leadMask, true)
  dv.setUint16(6, n, true)
  dv.setFloat64(8, startIndex, true)
  dv.setFloat64(16, startMs, true)
  dv.setUint8(24, unit.length)
  let off = HEADER
  for (let i = 0; i < unit.length; i++) dv.setUint8(off++, unit.charCodeAt(i) & 0x7f)
  dv.setUint8(off++, epoch.length)
  for (let i = 0; i < epoch.length; i++) dv.setUint8(off++, epoch.charCodeAt(i) & 0x7f)
  off += off & 1
  for (let lead = 0; lead < 12; lead++) {
    if ((leadMask & (1 << lead)) === 0) continue
    for (let i = 0; i < n; i++, off += 2) dv.setInt16(off, read(lead, i), true)
  }
  return out
}

/** Decodes a chunk; null when the message is not an ECG chunk of this version. */
export function decodeEcgChunk (buf: ArrayBuffer): EcgChunk | null {
  if (buf.byteLength < HEADER) return null
  const dv = new DataView(buf)
  if (dv.getUint8(0) !== ECG_KIND || dv.getUint8(1) !== VERSION) return null
  const len = dv.getUint8(24)
  if (HEADER + len + 1 > buf.byteLength) return null
  let unit = ''
  let off = HEADER
  for (let i = 0; i < len; i++) unit += String.fromCharCode(dv.getUint8(off++))
  const elen = dv.getUint8(off++)
  if (off + elen > buf.byteLength) return null
  let epoch = ''
  for (let i = 0; i < elen; i++) epoch += String.fromCharCode(dv.getUint8(off++))
  const leadMask = dv.getUint16(4, true)
  const n = dv.getUint16(6, true)
  off += off & 1
  const bytes = popcount(leadMask) * n * 2
  if (off + bytes > buf.byteLength) return null
  return {
    unit,
    epoch,
    rateHz: dv.getUint16(2, true),
    leadMask,
    startIndex: dv.getFloat64(8, true),
    startMs: dv.getFloat64(16, true),
    n,
    samples: new DataView(buf, off, bytes)
  }
}

// ---- team views -----------------------------------------------------------------------------
// What a team has in its face. One copy, used by the page (filtering) and the gateway
// (validating what a user saves). A view decides what is shown first, never what exists: the page
// always counts what lies outside the view, and a high-priority alert there stays one click away.

export type TeamViewId = 'ed' | 'cath' | 'stroke' | 'custom'
export const TEAM_VIEW_IDS: readonly TeamViewId[] = ['ed', 'cath', 'stroke', 'custom']
export const TEAM_VIEW_LABELS: Readonly<Record<TeamViewId, string>> = {
  ed: 'Emergency department', cath: 'Cath lab', stroke: 'Stroke unit', custom: 'Custom'
}
/** Alert kinds the page knows by name (the custom filter's checkboxes); others may appear. */
export const KNOWN_ALERT_KINDS = ['threshold', 'news2', 'device_alarm', 'stemi', 'stroke', 'signal_loss'] as const

export interface ViewSpec {
  id: TeamViewId
  /** Custom only: kinds left out. An exclusion list, so a kind added later is shown until excluded. */
  excludeKinds?: string[]
  /** Custom only: the lowest priority shown (default low: all). */
  minPriority?: Alert['priority']
  /** Custom only: unit ids shown; empty or absent = every unit. */
  units?: string[]
}

export const DEFAULT_VIEW: Readonly<ViewSpec> = Object.freeze({ id: 'ed' })

/** What a view needs to know about the unit an alert is about. */
export interface UnitContext {
  /** The crew suspects STEMI, or the unit has a STEMI alert: a cardiac patient. */
  cardiac: boolean
  /** FAST positive or LAMS ≥ 4, or a stroke alert. */
  stroke: boolean
}

const PRIORITY_RANK: Readonly<Record<Alert['priority'], number>> = { low: 1, medium: 2, high: 3 }

/**
 * Device alarm codes that are cardiac (arrhythmias, heart-rate and ST alarms). Monitors name them
 * differently; matched loosely on the code. The cath lab sees these for every unit.
 */
const CARDIAC_ALARM = /(^|_)(VF|VT|VFIB|VTACH|ASYSTOLE|ARRHYTHMIA|BRADY|TACHY|PVC|AFIB|ST|HR|PACER|PAUSE|IRREG)(_|$)/i

/** Whether `a` belongs in view `v`. Kinds unknown to this version count as "everything else":
 * the ED and any custom view that does not exclude them show them. */
export function alertInView (a: Alert, v: ViewSpec, ctx: UnitContext): boolean {
  const kind: string = a.kind
  switch (v.id) {
    case 'ed': return true
    case 'cath':
      if (kind.includes('stemi')) return true // also a device's own STEMI interpretation
      if (kind === 'device_alarm') return CARDIAC_ALARM.test(a.key) || ctx.cardiac
      if (kind === 'threshold') return a.key === 'heart_rate' || a.key === 'pulse_rate' || ctx.cardiac
      // NEWS2, signal loss and the rest: for the cath lab's own (cardiac) patients.
      return ctx.cardiac && !kind.includes('stroke')
    case 'stroke':
      return kind.includes('stroke')
    case 'custom': {
      if (v.excludeKinds?.includes(kind) === true) return false
      if (PRIORITY_RANK[a.priority] < PRIORITY_RANK[v.minPriority ?? 'low']) return false
      if (v.units !== undefined && v.units.length > 0 && !v.units.includes(a.unit)) return false
      return true
    }
  }
}

/** Whether a unit shows on the fleet and incoming boards of view `v` (the ED and custom: all). */
export function unitInView (unit: string, v: ViewSpec, ctx: UnitContext): boolean {
  switch (v.id) {
    case 'ed': return true
    case 'cath': return ctx.cardiac
    case 'stroke': return ctx.stroke
    case 'custom': return v.units === undefined || v.units.length === 0 || v.units.includes(unit)
  }
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** A view from untrusted JSON (a saved preference, a request body); null when malformed. */
export function parseViewSpec (v: unknown): ViewSpec | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null
  const o = v as Record<string, unknown>
  if (!TEAM_VIEW_IDS.includes(o.id as TeamViewId)) return null
  const id = o.id as TeamViewId
  if (id !== 'custom') return Object.keys(o).length === 1 ? { id } : null
  const out: ViewSpec = { id }
  for (const k of Object.keys(o)) if (!['id', 'excludeKinds', 'minPriority', 'units'].includes(k)) return null
  if (o.excludeKinds !== undefined) {
    if (!Array.isArray(o.excludeKinds) || o.excludeKinds.length > 32 || !o.excludeKinds.every(k => typeof k === 'string' && /^[a-z0-9_]{1,40}$/.test(k))) return null
    out.excludeKinds = o.excludeKinds as string[]
  }
  if (o.minPriority !== undefined) {
    if (o.minPriority !== 'low' && o.minPriority !== 'medium' && o.minPriority !== 'high') return null
    out.minPriority = o.minPriority
  }
  if (o.units !== undefined) {
    if (!Array.isArray(o.units) || o.units.length > 500 || !o.units.every(u => typeof u === 'string' && ID.test(u))) return null
    out.units = o.units as string[]
  }
  return out
}

// ---- incoming patients: acknowledge and assign ------------------------------------------------

export type AssignmentAction = 'acknowledged' | 'cath_lab_activated' | 'stroke_team_standby' | 'resus_ready' | 'handed_over' | 'cleared'
export const ASSIGNMENT_ACTIONS: readonly AssignmentAction[] = ['acknowledged', 'cath_lab_activated', 'stroke_team_standby', 'resus_ready', 'handed_over', 'cleared']
export const ASSIGNMENT_LABELS: Readonly<Record<AssignmentAction, string>> = {
  acknowledged: 'Acknowledged',
  cath_lab_activated: 'Cath lab activated',
  stroke_team_standby: 'Stroke team on standby',
  resus_ready: 'Resus bay ready',
  handed_over: 'Handed over',
  cleared: 'Cleared'
}

/** The latest acknowledge-and-assign for a unit's encounter, recorded with who and when. */
export interface Assignment {
  unit: string
  /** Pseudonymous encounter id: a new patient in the same ambulance starts with none. */
  encounter: string
  action: AssignmentAction
  by: string
  /** Unix ms, gateway clock. */
  at: number
}
