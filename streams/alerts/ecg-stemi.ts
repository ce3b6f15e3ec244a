/**
 * STEMI from the ECG (issue 9): per unit, the device's 12-lead interpretation and the gateway's
 * own ST measurement on the streamed waveform (st-measure.ts), each judged by the ESC criteria
 * (stemi-criteria.ts) for the patient's sex and age from the crew's assessment. The engine asks
 * for a finding on every frame and raises or updates the `stemi` alert with key `ecg` (the crew's
 * suspicion keeps key ''): see engine.ts. Keeps the last 10 s of all twelve leads per unit for the
 * snapshot a cardiologist opens from the alert (ecg-snapshot.ts).
 *
 * Hot path: a 12-lead frame costs a copy of its samples into the ring (Int16, µV); the median
 * beat analysis runs once per 10 s of new ECG, on a window buffer reused across units.
 *
 * Phase (issue 12, goal 2): units whose tracings started together (a fleet switched on at once,
 * the bench's simulator) would all be analysed in the same 250 ms, every 10 s: about 1 ms of CPU
 * each, 100 units blocked the event loop (and every alert behind it) for 100+ ms. So after a
 * tracing's first analysis (at once, when its first 10 s are in) the next one comes up to 10 s
 * sooner, at the unit's own phase (a hash of its id), and every 10 s after that: each unit is
 * still analysed on its last 10 s at least every 10 s, never later than before.
 */
import type { Frame } from '../../decoders/index.js'
import { EcgSnapshotStore, type EcgSnapshotRows, type StSource } from './ecg-snapshot.js'
import { measureSt } from './st-measure.js'
import { assessStemi, LEAD_NAMES, parseSex, TERRITORY, type LeadName, type StemiPatient, type StemiResult } from './stemi-criteria.js'

/** Length of the analysed ECG and of the snapshot, s: the standard 10 s 12-lead recording. */
export const ECG_WINDOW_S = 10
/** Lowest sample rate analysed (AHA 2007, Kligfield: ≥ 500 Hz recommended for diagnostic ECGs; 250 Hz is the floor we accept). */
export const MIN_ANALYSIS_HZ = 250
const MAX_INT16 = 32_767

export interface EcgFinding {
  verdict: 'met' | 'not_assessable'
  message: string
  /** Largest ST elevation among the leads named, mm (100 µV = 1 mm); null when not assessable. */
  value: number | null
  /** Changes when what the alert says changes (verdict, leads): such an update goes out at once. */
  fingerprint: string
}

interface SourceResult { result: StemiResult, stUv: Partial<Record<LeadName, number>>, note: string }

class UnitEcg {
  encounter = ''
  patient: StemiPatient = { sex: 'unknown', ageYears: null }
  fs = 0
  cap = 0
  ring: Int16Array = new Int16Array(0)
  /** Samples written in total and contiguously (reset by a gap). */
  pos = 0
  filled = 0
  sinceMeasure = 0
  /** Whether this tracing's analyses run at the unit's phase yet (false until its first analysis). */
  phased = false
  /** The unit's phase, a fraction of the 10 s window (phaseOf: a hash of the unit id). */
  phase = 0
  /** Device time just past the last sample, ms. */
  endMs = NaN
  /** endMs at the last analysis (null: none yet). */
  analysedEndMs: number | null = null
  device: SourceResult | null = null
  /** Device time of the frame whose interpretation `device` holds (an older one never replaces it). */
  deviceAtMs = -Infinity
  deviceFlags = { lbbb: false, paced: false }
  gateway: SourceResult | null = null
  /** Leads that have met the criteria during this encounter: the alert names them all, so a lead near its limit cannot make the alert flap. */
  named = new Set<LeadName>()
  /** What the unit's ECG alert last said (EcgFinding.fingerprint). */
  fingerprint = ''
  /** Alert ids waiting for a full 10 s before their snapshot is taken. */
  pendingSnapshots: string[] = []
}

export class EcgStemiWatch {
  private readonly units = new Map<string, UnitEcg>()
  readonly snapshots: EcgSnapshotStore
  /** The analysed 10 s of one unit at a time (see window()). */
  private scratch = new Int16Array(0)

  constructor (snapshotDir: string | null, onError: (err: Error) => void) {
    this.snapshots = new EcgSnapshotStore(snapshotDir, onError)
  }

  /** The crew's assessment: sex and age set the V2-V3 limit. 0 or absent age = unknown. */
  assessment (unit: string, a: { ageYears?: number | null, sex?: string | null }): void {
    const u = this.unit(unit)
    if (a.sex !== undefined && a.sex !== null) u.patient = { ...u.patient, sex: parseSex(a.sex) }
    if (a.ageYears !== undefined && a.ageYears !== null) u.patient = { ...u.patient, ageYears: a.ageYears > 0 ? a.ageYears : null }
  }

  /**
   * Feeds one frame; returns a finding when there is a new verdict to report. `late`: the engine's
   * resend check found it not newer than what the unit already sent (a QoS 1 resend, or a frame
   * arriving out of order). A late frame's ECG is left out unless it is the tracing's exact
   * continuation — appended, it would break the contiguous tracing and restart the 10 s window,
   * or hold its 250 ms twice — and so is its
   * encounter (the previous patient's late frame resets nothing); its interpretation counts only
   * when no newer one was seen. `atMs`: the frame's capture time on the unit's timeline (the
   * engine's frame-order.ts: after a device clock set back, the chunks that follow in seq continue
   * the tracing).
   */
  onFrame (f: Frame, late = false, atMs = f.capturedAtMs): EcgFinding | null {
    const u = this.unit(f.unitId)
    if (f.encounterId !== '' && f.encounterId !== u.encounter) {
      if (late) return null
      // Another patient: what we knew about the last one no longer applies. An empty id says
      // nothing about the patient (issue 9: it never ends an encounter), so it changes nothing.
      if (u.encounter !== '') this.units.set(f.unitId, Object.assign(new UnitEcg(), { phase: u.phase }))
      this.unit(f.unitId).encounter = f.encounterId
    }
    const v = this.units.get(f.unitId)!
    let fresh = false
    // A late frame's ECG is still taken when it is the tracing's exact continuation: a frame is
    // late by its capture time against every frame, so an ECG chunk sent when full, after a vitals
    // frame measured meanwhile, is late yet never held; left out, each such chunk broke the tracing.
    // So is a late frame's ECG that is not older than the tracing held (none held yet, or it starts
    // after its end): a second device on the unit (a defibrillator beside the monitor, each its
    // own boot) whose clock is behind sends every frame late by the unit's timeline, yet its
    // ECG is the only one; left out, its STEMI was never seen.
    if (f.waveforms.length > 0 && (!late || this.continues(v, f, atMs) || this.notOlder(v, f, atMs)) && this.append(v, f, atMs)) fresh = this.measure(v)
    const i = f.interpretation
    if (i !== null && i !== undefined && atMs > v.deviceAtMs) {
      v.deviceAtMs = atMs
      const stUv: Partial<Record<LeadName, number>> = {}
      for (const d of i.stDeviations) stUv[LEAD_NAMES[d.lead - 1]!] = d.microvolts
      v.deviceFlags = { lbbb: i.lbbb, paced: i.paced }
      v.device = { result: assessStemi({ stUv, lbbb: i.lbbb, paced: i.paced, patient: v.patient }), stUv, note: i.statement.slice(0, 120) }
      fresh = true
    }
    if (!fresh) return null
    const out = finding(v)
    if (out !== null && v.fingerprint === '') v.fingerprint = out.fingerprint
    return out
  }

  /** Takes the snapshot for a just-raised (or upgraded) alert now, or once 10 s of ECG are in. */
  capture (unit: string, alertId: string): void {
    const u = this.units.get(unit)
    if (u === undefined) return
    if (u.cap > 0 && u.filled >= u.cap) this.snapshot(u, unit, alertId)
    else if (!u.pendingSnapshots.includes(alertId)) u.pendingSnapshots.push(alertId)
  }

  /** Whether the finding says something new for the unit's alert (verdict or leads), and remembers it. */
  changed (unit: string, fingerprint: string): boolean {
    const u = this.unit(unit)
    const c = u.fingerprint !== fingerprint
    u.fingerprint = fingerprint
    return c
  }

  /** Device time (ms) at the end of the unit's last analysed 10 s, or null before its first analysis. */
  lastAnalysisEndMs (unit: string): number | null { return this.units.get(unit)?.analysedEndMs ?? null }

  /** Drops a unit's ring and findings (the engine forgets silent units without alerts). */
  forget (unit: string): void { this.units.delete(unit) }

  async close (): Promise<void> { await this.snapshots.flush() }

  private unit (id: string): UnitEcg {
    let u = this.units.get(id)
    if (u === undefined) {
      this.units.set(id, u = new UnitEcg())
      u.phase = phaseOf(id)
    }
    return u
  }

  /** Copies a 12-lead frame into the ring; false when the frame is not a diagnostic 12-lead. */
  /** Whether the frame's ECG starts where the tracing held ends (within a sample), at its rate. */
  private continues (u: UnitEcg, f: Frame, atMs: number): boolean {
    const w = f.waveforms[0]!
    return w.sampleRateHz === u.fs && Math.abs(atMs + w.offsetMs - u.endMs) <= 1000 / w.sampleRateHz
  }

  /** Whether the frame's ECG starts no earlier than where the tracing held ends (or none is held). */
  private notOlder (u: UnitEcg, f: Frame, atMs: number): boolean {
    return !(atMs + f.waveforms[0]!.offsetMs < u.endMs)
  }

  private append (u: UnitEcg, f: Frame, atMs: number): boolean {
    const w = f.waveforms
    if (w.length !== 12) { restart(u); return false }
    const fs = w[0]!.sampleRateHz
    const n = w[0]!.samples.length
    for (const x of w) if (x.sampleRateHz !== fs || x.samples.length !== n) { restart(u); return false }
    if (fs < MIN_ANALYSIS_HZ) return false
    if (fs !== u.fs) {
      u.fs = fs
      u.cap = ECG_WINDOW_S * fs
      u.ring = new Int16Array(12 * u.cap)
      u.pos = 0
      restart(u)
      u.sinceMeasure = 0
    }
    const startMs = atMs + w[0]!.offsetMs
    // A gap (or overlap) of more than one sample breaks the tracing: start a new 10 s.
    if (!(Math.abs(startMs - u.endMs) <= 1000 / fs)) { restart(u); u.sinceMeasure = 0 }
    u.endMs = startMs + n * 1000 / fs
    const cap = u.cap
    const ring = u.ring
    const pos = u.pos
    // Per sample (12 leads × 500 Hz per unit): a frame shorter than the ring wraps at most once,
    // so the ring index needs no test per sample; a longer one (never from a device) goes round.
    const head = n <= cap ? Math.min(n, cap - pos) : 0
    for (let l = 0; l < w.length; l++) {
      const x = w[l]!
      const row = (x.lead - 1) * cap
      const k = x.microvoltsPerLsb
      const s = x.samples
      if (head > 0 && k === 1 && s instanceof Int32Array) {
        // The usual scale (decoded samples are whole µV already): no rounding per sample.
        for (let i = 0; i < head; i++) ring[row + pos + i] = clampUv(s[i]!)
        for (let i = head; i < n; i++) ring[row + i - head] = clampUv(s[i]!)
      } else if (head > 0) {
        for (let i = 0; i < head; i++) ring[row + pos + i] = clampUv(Math.round(s[i]! * k))
        for (let i = head; i < n; i++) ring[row + i - head] = clampUv(Math.round(s[i]! * k))
      } else {
        for (let i = 0, at = pos; i < n; i++, at = at + 1 === cap ? 0 : at + 1) ring[row + at] = clampUv(Math.round(s[i]! * k))
      }
    }
    u.pos = (u.pos + n) % cap
    u.filled = Math.min(cap, u.filled + n)
    u.sinceMeasure += n
    if (u.filled >= cap && u.pendingSnapshots.length > 0) {
      for (const id of u.pendingSnapshots) this.snapshot(u, f.unitId, id)
      u.pendingSnapshots = []
    }
    return true
  }

  /**
   * Runs the median-beat analysis once per 10 s of new, contiguous ECG: the first as soon as a
   * tracing has 10 s, the second up to 10 s sooner, at the unit's phase (module comment).
   */
  private measure (u: UnitEcg): boolean {
    if (u.filled < u.cap || u.sinceMeasure < u.cap) return false
    // Counted as already done: the next analysis comes after cap − that many samples (≤ 10 s).
    u.sinceMeasure = u.phased ? 0 : Math.floor(u.phase * u.cap)
    u.phased = true
    u.analysedEndMs = u.endMs
    const leads = this.window(u, true)
    const m = measureSt(leads, u.fs)
    if (!m.ok) {
      u.gateway = null
      return false
    }
    const stUv: Partial<Record<LeadName, number>> = {}
    for (let i = 0; i < 12; i++) stUv[LEAD_NAMES[i]!] = m.stUv[i]!
    const qrsMs = m.jPointMs - m.qrsOnsetMs
    // AHA/ACCF/HRS 2009 (Surawicz): LBBB has QRS ≥ 120 ms. The gateway cannot tell LBBB from
    // other wide QRS, so it says so rather than gating on it (a missed STEMI is the worse error).
    const wide = qrsMs >= 120 ? '; QRS ≥ 120 ms: check for bundle branch block or pacing' : ''
    u.gateway = {
      result: assessStemi({ stUv, lbbb: false, paced: false, patient: u.patient }),
      stUv,
      note: `median of ${m.beats} beats, QRS ${qrsMs} ms, ${Math.round(m.heartRateBpm)} bpm${wide}`
    }
    return true
  }

  /**
   * The last 10 s, oldest first, one Int16Array per lead. With `scratch`, views of one buffer the
   * watch reuses (the analysis runs synchronously and keeps nothing of them): no 120 kB copy per
   * unit every 10 s for the GC to collect (issue 12).
   */
  private window (u: UnitEcg, scratch = false): Int16Array[] {
    if (scratch && this.scratch.length < 12 * u.cap) this.scratch = new Int16Array(12 * u.cap)
    const out: Int16Array[] = []
    for (let l = 0; l < 12; l++) {
      const row = u.ring.subarray(l * u.cap, (l + 1) * u.cap)
      const a = scratch ? this.scratch.subarray(l * u.cap, (l + 1) * u.cap) : new Int16Array(u.cap)
      a.set(row.subarray(u.pos), 0)
      a.set(row.subarray(0, u.pos), u.cap - u.pos)
      out.push(a)
    }
    return out
  }

  private snapshot (u: UnitEcg, unit: string, alertId: string): void {
    const src = (s: SourceResult | null): StSource | null => s === null
      ? null
      : { stUv: { ...s.stUv }, verdict: s.result.verdict, leads: [...s.result.leads], note: s.note }
    const snap: EcgSnapshotRows = {
      version: 1,
      alertId,
      unit,
      startMs: Math.round(u.endMs - ECG_WINDOW_S * 1000),
      sampleRateHz: u.fs,
      leads: [...LEAD_NAMES],
      rows: this.window(u),
      device: src(u.device),
      gateway: src(u.gateway),
      limitNote: (u.device ?? u.gateway)?.result.limitNote ?? ''
    }
    this.snapshots.save(snap)
  }
}

/** A broken tracing starts its 10 s again, and its phase with its first analysis. */
function restart (u: UnitEcg): void {
  u.filled = 0
  u.phased = false
}

/**
 * The unit's analysis phase in [0, 1): FNV-1a of its id, then MurmurHash3's finaliser (FNV alone
 * leaves the high bits of ids that differ in the last digit close together). The same unit has
 * the same phase in any process; 100 units `amb-0001`… fall at most 5 into one 250 ms.
 */
export function phaseOf (unit: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < unit.length; i++) h = Math.imul(h ^ unit.charCodeAt(i), 0x01000193)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return (h >>> 0) / 2 ** 32
}

function clampUv (uv: number): number {
  return uv > MAX_INT16 ? MAX_INT16 : uv < -MAX_INT16 ? -MAX_INT16 : uv
}

const mm = (uv: number | undefined): string => uv === undefined ? '—' : (uv / 100).toFixed(1)

/** Combines the two sources into what the alert says. */
function finding (u: UnitEcg): EcgFinding | null {
  const d = u.device
  const g = u.gateway
  const flags = u.deviceFlags
  if (flags.lbbb || flags.paced) {
    const reason = d?.result.reason ?? 'LBBB'
    return {
      verdict: 'not_assessable',
      message: `12-lead ECG: ${reason} reported by the device: STEMI cannot be assessed automatically; ` +
        'a cardiologist must read the ECG (ESC 2023: with ischaemic symptoms, manage as STEMI)' +
        (d !== null && d.note !== '' ? `. Device: "${d.note}"` : ''),
      value: null,
      fingerprint: 'na/' + reason
    }
  }
  const dm = d?.result.verdict === 'met'
  const gm = g?.result.verdict === 'met'
  if (!dm && !gm) return null
  for (const l of dm ? d.result.leads : []) u.named.add(l)
  for (const l of gm ? g.result.leads : []) u.named.add(l)
  const leads = LEAD_NAMES.filter(l => u.named.has(l))
  // The territory with the most leads first: "(anterior, lateral)" for V1-V5 with I.
  const count = new Map<string, number>()
  for (const l of leads) count.set(TERRITORY[l]!, (count.get(TERRITORY[l]!) ?? 0) + 1)
  const terr = [...count.keys()].sort((a, b) => count.get(b)! - count.get(a)!)
  const source = dm && gm ? 'device interpretation and gateway measurement' : dm ? 'device interpretation' : 'gateway measurement'
  const figures = leads.map(l => `${l} ${mm(d?.stUv[l])} / ${mm(g?.stUv[l])} mm`).join(', ')
  let value = 0
  for (const l of leads) value = Math.max(value, d?.stUv[l] ?? -Infinity, g?.stUv[l] ?? -Infinity)
  const limit = (d ?? g)!.result.limitNote
  const statement = d !== null && d.note !== '' ? `. Device: "${d.note}"` : ''
  return {
    verdict: 'met',
    message: `STEMI criteria met on the 12-lead ECG (${source}): ST elevation in ${leads.join(', ')} (${terr.join(', ')}). ` +
      `ST at J+60 ms, device / gateway: ${figures}; limits ≥ 1 mm, ${limit}${statement}`,
    value: Math.round(value / 10) / 10,
    fingerprint: 'met/' + leads.join(',')
  }
}
