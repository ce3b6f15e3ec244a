/**
 * ESC STEMI criteria on a 12-lead ECG's ST deviations (pure). Sources:
 * - Byrne RA et al. 2023 ESC Guidelines for the management of acute coronary syndromes,
 *   Eur Heart J 2023;44:3720-3826, section 3.2.1.1 and Table 4 (ECG criteria);
 * - Thygesen K et al. Fourth Universal Definition of Myocardial Infarction (2018), Eur Heart J
 *   2019;40:237-269, "ECG manifestations of acute myocardial ischaemia (absent LVH and LBBB)".
 *
 * New ST elevation at the J point in ≥ 2 contiguous leads: ≥ 1 mm (0.1 mV) in every lead other
 * than V2-V3; in V2-V3 ≥ 2 mm in men ≥ 40 y, ≥ 2.5 mm in men < 40 y, ≥ 1.5 mm in women whatever
 * their age. LBBB and ventricular pacing distort the ST segment: the criteria do not apply.
 * Whether the elevation is *new* only a clinician can say; the alert says "criteria met".
 */

/** Leads in Lead enum order (LEAD_I = 1 … LEAD_V6 = 12): index = enum value − 1. */
export const LEAD_NAMES = ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'] as const
export type LeadName = (typeof LEAD_NAMES)[number]

/** 4th UDMI: ≥ 1 mm (0.1 mV) in all leads other than V2-V3. 1 mm = 100 µV at 10 mm/mV. */
export const ST_LIMIT_UV = 100
/** 4th UDMI / ESC 2023: V2-V3 ≥ 2 mm in men ≥ 40 y. */
export const ST_LIMIT_V2V3_MEN_40_UV = 200
/** 4th UDMI / ESC 2023: V2-V3 ≥ 2.5 mm in men < 40 y. */
export const ST_LIMIT_V2V3_MEN_UNDER_40_UV = 250
/** 4th UDMI / ESC 2023: V2-V3 ≥ 1.5 mm in women regardless of age. */
export const ST_LIMIT_V2V3_WOMEN_UV = 150
/** 4th UDMI: the men's V2-V3 limit changes at 40 years. */
export const ST_AGE_SPLIT_YEARS = 40

export type Territory = 'inferior' | 'lateral' | 'anterior'
/**
 * Territory each lead faces (4th UDMI, "contiguous lead groups"): inferior II, III, aVF;
 * lateral I, aVL, V5, V6; anterior/septal V1-V4. aVR faces no territory of its own: it is in no
 * contiguous pair (its elevation with widespread depression suggests left-main or multivessel
 * ischaemia, ESC 2023, which this automatic check does not claim to detect).
 */
export const TERRITORY: Readonly<Partial<Record<LeadName, Territory>>> = {
  II: 'inferior', III: 'inferior', aVF: 'inferior',
  I: 'lateral', aVL: 'lateral', V5: 'lateral', V6: 'lateral',
  V1: 'anterior', V2: 'anterior', V3: 'anterior', V4: 'anterior'
}

/**
 * Contiguous pairs. Within the inferior group and within the lateral group (I, aVL, V5, V6) every
 * pair; across the chest the neighbours in the V1-V6 sequence (V1-V2 … V5-V6). Not contiguous:
 * an inferior lead with a lateral limb lead (II with I), or V-leads two apart (V1 with V3).
 */
export const CONTIGUOUS_PAIRS: ReadonlyArray<readonly [LeadName, LeadName]> = [
  ['II', 'III'], ['II', 'aVF'], ['III', 'aVF'],
  ['I', 'aVL'], ['I', 'V5'], ['I', 'V6'], ['aVL', 'V5'], ['aVL', 'V6'],
  ['V1', 'V2'], ['V2', 'V3'], ['V3', 'V4'], ['V4', 'V5'], ['V5', 'V6']
]

export type Sex = 'male' | 'female' | 'unknown'

export interface StemiPatient {
  sex: Sex
  /** null = unknown */
  ageYears: number | null
}

export interface StemiInput {
  /** ST deviation per lead at J+60 ms, µV (+ elevation); missing leads are simply not assessed. */
  stUv: Readonly<Partial<Record<LeadName, number>>>
  lbbb: boolean
  paced: boolean
  patient: StemiPatient
}

export type StemiVerdict = 'met' | 'not_met' | 'not_assessable'

export interface StemiResult {
  verdict: StemiVerdict
  /** Leads with elevation at or past their limit that have a contiguous partner also past its limit (lead order). */
  leads: LeadName[]
  territories: Territory[]
  /** The V2-V3 limit applied, µV, and why (e.g. "woman: 1.5 mm", "sex unknown: most sensitive 1.5 mm used"). */
  v2v3LimitUv: number
  limitNote: string
  /** For not_assessable: "LBBB", "paced rhythm", or "fewer than 2 leads measured". */
  reason: string | null
}

/** The V2-V3 limit for this patient; unknown sex or age takes the most sensitive applicable value. */
export function v2v3Limit (p: StemiPatient): { uv: number, note: string } {
  if (p.sex === 'female') return { uv: ST_LIMIT_V2V3_WOMEN_UV, note: 'woman: V2-V3 ≥ 1.5 mm' }
  if (p.sex === 'male') {
    if (p.ageYears === null) return { uv: ST_LIMIT_V2V3_MEN_40_UV, note: 'man, age unknown: most sensitive V2-V3 ≥ 2 mm used' }
    return p.ageYears >= ST_AGE_SPLIT_YEARS
      ? { uv: ST_LIMIT_V2V3_MEN_40_UV, note: 'man ≥ 40 y: V2-V3 ≥ 2 mm' }
      : { uv: ST_LIMIT_V2V3_MEN_UNDER_40_UV, note: 'man < 40 y: V2-V3 ≥ 2.5 mm' }
  }
  return { uv: ST_LIMIT_V2V3_WOMEN_UV, note: 'sex unknown: most sensitive V2-V3 ≥ 1.5 mm used' }
}

/** The ST elevation limit of one lead for this patient, µV. */
export function leadLimitUv (lead: LeadName, v2v3Uv: number): number {
  return lead === 'V2' || lead === 'V3' ? v2v3Uv : ST_LIMIT_UV
}

/** Applies the criteria. */
export function assessStemi (input: StemiInput): StemiResult {
  const { uv, note } = v2v3Limit(input.patient)
  const base = { v2v3LimitUv: uv, limitNote: note, leads: [] as LeadName[], territories: [] as Territory[] }
  if (input.lbbb || input.paced) {
    const reason = input.lbbb && input.paced ? 'LBBB and paced rhythm' : input.lbbb ? 'LBBB' : 'paced rhythm'
    return { ...base, verdict: 'not_assessable', reason }
  }
  let measured = 0
  for (const l of LEAD_NAMES) if (Number.isFinite(input.stUv[l])) measured++
  if (measured < 2) return { ...base, verdict: 'not_assessable', reason: 'fewer than 2 leads measured' }

  const past = (l: LeadName): boolean => {
    const v = input.stUv[l]
    return v !== undefined && Number.isFinite(v) && v >= leadLimitUv(l, uv)
  }
  const hit = new Set<LeadName>()
  for (const [a, b] of CONTIGUOUS_PAIRS) {
    if (past(a) && past(b)) { hit.add(a); hit.add(b) }
  }
  const leads = LEAD_NAMES.filter(l => hit.has(l))
  const territories: Territory[] = []
  for (const l of leads) {
    const t = TERRITORY[l]!
    if (!territories.includes(t)) territories.push(t)
  }
  return { ...base, leads, territories, verdict: leads.length > 0 ? 'met' : 'not_met', reason: null }
}

/** "male"/"M"/"man" → male, "female"/"F"/"woman" → female, anything else → unknown. */
export function parseSex (s: string | null | undefined): Sex {
  const v = (s ?? '').trim().toLowerCase()
  if (v === 'male' || v === 'm' || v === 'man') return 'male'
  if (v === 'female' || v === 'f' || v === 'woman') return 'female'
  return 'unknown'
}
