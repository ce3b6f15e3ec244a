// ESC 2023 / Fourth Universal Definition of MI STEMI criteria, table-driven at every threshold
// edge: V2-V3 limits by sex and age, the 1 mm limit elsewhere, contiguous vs non-contiguous
// leads, unknown sex or age (most sensitive limit, said so), LBBB and paced rhythm.
import { describe, expect, it } from 'vitest'
import { assessStemi, parseSex, v2v3Limit, type LeadName, type StemiPatient } from '../streams/alerts/stemi-criteria.js'

const MAN_40: StemiPatient = { sex: 'male', ageYears: 40 }
const MAN_39: StemiPatient = { sex: 'male', ageYears: 39 }
const WOMAN_30: StemiPatient = { sex: 'female', ageYears: 30 }
const WOMAN_80: StemiPatient = { sex: 'female', ageYears: 80 }
const UNKNOWN: StemiPatient = { sex: 'unknown', ageYears: null }
const MAN_AGE_UNKNOWN: StemiPatient = { sex: 'male', ageYears: null }

function st (values: Partial<Record<LeadName, number>>): Partial<Record<LeadName, number>> {
  // Every other lead measured at 0 µV, as a 12-lead device reports.
  const all: Partial<Record<LeadName, number>> = {}
  for (const l of ['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'] as const) all[l] = 0
  return { ...all, ...values }
}

describe('V2-V3 limit by sex and age', () => {
  it.each([
    // patient, V2 = V3 (µV), met?
    [MAN_40, 200, true], [MAN_40, 199, false],
    [{ sex: 'male', ageYears: 75 } as StemiPatient, 200, true],
    [MAN_39, 250, true], [MAN_39, 249, false], [MAN_39, 200, false],
    [WOMAN_30, 150, true], [WOMAN_30, 149, false],
    [WOMAN_80, 150, true], [WOMAN_80, 149, false],
    // Unknown sex: the most sensitive limit (women's 1.5 mm).
    [UNKNOWN, 150, true], [UNKNOWN, 149, false],
    // Man of unknown age: the lower of the men's limits (2 mm).
    [MAN_AGE_UNKNOWN, 200, true], [MAN_AGE_UNKNOWN, 199, false]
  ])('%o with V2 = V3 = %i µV: met %s', (patient, uv, met) => {
    const r = assessStemi({ stUv: st({ V2: uv, V3: uv }), lbbb: false, paced: false, patient })
    expect(r.verdict).toBe(met ? 'met' : 'not_met')
    expect(r.leads).toEqual(met ? ['V2', 'V3'] : [])
    if (met) expect(r.territories).toEqual(['anterior'])
  })

  it('says when it used the most sensitive limit', () => {
    expect(v2v3Limit(UNKNOWN)).toEqual({ uv: 150, note: 'sex unknown: most sensitive V2-V3 ≥ 1.5 mm used' })
    expect(v2v3Limit(MAN_AGE_UNKNOWN).note).toContain('age unknown')
    expect(v2v3Limit(MAN_39).uv).toBe(250)
    expect(v2v3Limit(WOMAN_80).uv).toBe(150)
  })
})

describe('1 mm in every lead other than V2-V3', () => {
  it.each([
    [{ II: 100, III: 100 }, ['II', 'III'], ['inferior']],
    [{ II: 100, III: 99 }, [], []],
    [{ II: 99, aVF: 250 }, [], []],
    [{ III: 100, aVF: 100 }, ['III', 'aVF'], ['inferior']],
    [{ I: 100, aVL: 100 }, ['I', 'aVL'], ['lateral']],
    [{ V5: 100, V6: 100 }, ['V5', 'V6'], ['lateral']],
    [{ I: 100, V6: 100 }, ['I', 'V6'], ['lateral']],
    [{ V1: 100, V2: 150 }, ['V1', 'V2'], ['anterior']], // woman: V2 at its 1.5 mm limit
    [{ V1: 100, V2: 149 }, [], []],
    [{ V3: 150, V4: 100 }, ['V3', 'V4'], ['anterior']],
    [{ V4: 100, V5: 100 }, ['V4', 'V5'], ['anterior', 'lateral']],
    // V2-V3 leads do not take the 1 mm limit: 1.2 mm in V2 and V3 is below a woman's 1.5 mm.
    [{ V2: 120, V3: 120 }, [], []]
  ])('woman, ST %o → leads %o (%o)', (values, leads, territories) => {
    const r = assessStemi({ stUv: st(values), lbbb: false, paced: false, patient: WOMAN_80 })
    expect(r.leads).toEqual(leads)
    expect(r.territories).toEqual(territories)
    expect(r.verdict).toBe(leads.length > 0 ? 'met' : 'not_met')
  })
})

describe('contiguity', () => {
  it.each([
    // Elevation past the limit in two leads that are not contiguous: not met.
    [{ II: 300, I: 300 }],
    [{ III: 300, aVL: 300 }],
    [{ V1: 300, V3: 300 }],
    [{ V2: 300, V4: 300 }],
    [{ II: 300, V5: 300 }],
    // A single lead, however high.
    [{ aVF: 500 }],
    // aVR is in no contiguous pair.
    [{ aVR: 300, III: 300 }],
    [{ aVR: 300, aVL: 300 }]
  ])('%o is not met', values => {
    const r = assessStemi({ stUv: st(values), lbbb: false, paced: false, patient: MAN_40 })
    expect(r.verdict).toBe('not_met')
    expect(r.leads).toEqual([])
  })

  it('names every lead of a run and both territories', () => {
    const r = assessStemi({ stUv: st({ V1: 150, V2: 300, V3: 350, V4: 300, V5: 150, I: 120, aVL: 110, III: -150 }), lbbb: false, paced: false, patient: MAN_40 })
    expect(r.leads).toEqual(['I', 'aVL', 'V1', 'V2', 'V3', 'V4', 'V5'])
    expect(r.territories).toEqual(['lateral', 'anterior'])
  })

  it('ST depression never counts as elevation', () => {
    expect(assessStemi({ stUv: st({ II: -300, III: -300 }), lbbb: false, paced: false, patient: MAN_40 }).verdict).toBe('not_met')
  })
})

describe('LBBB and paced rhythm', () => {
  it.each([
    [true, false, 'LBBB'], [false, true, 'paced rhythm'], [true, true, 'LBBB and paced rhythm']
  ])('lbbb %s paced %s: not assessable (%s), even with elevation', (lbbb, paced, reason) => {
    const r = assessStemi({ stUv: st({ II: 300, III: 300 }), lbbb, paced, patient: MAN_40 })
    expect(r.verdict).toBe('not_assessable')
    expect(r.reason).toBe(reason)
    expect(r.leads).toEqual([])
  })

  it('fewer than two measured leads: not assessable, never "not met"', () => {
    const r = assessStemi({ stUv: { II: 300 }, lbbb: false, paced: false, patient: MAN_40 })
    expect(r.verdict).toBe('not_assessable')
  })
})

describe('parseSex', () => {
  it.each([['male', 'male'], ['M', 'male'], ['female', 'female'], ['f', 'female'], ['', 'unknown'], ['other', 'unknown']])('%s → %s', (s, want) => {
    expect(parseSex(s)).toBe(want)
  })
})
