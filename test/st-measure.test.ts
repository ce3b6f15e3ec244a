// ST measurement on the streamed waveform (median beat, J point, J+60 ms against the PR
// baseline) on the simulator's 12-lead ECG: its inferior and anterior STEMIs are detected with
// the right leads, and its normal ECG is not, over several seeds, heart rates and noise levels.
import { describe, expect, it } from 'vitest'
import { EcgSynth, type StemiKind } from '../simulator/ecg.js'
import { assessStemi, LEAD_NAMES, type LeadName, type StemiPatient } from '../streams/alerts/stemi-criteria.js'
import { detectQrs, measureSt } from '../streams/alerts/st-measure.js'

const FS = 500
const SEEDS = [1, 2, 3, 17, 99]
const RATES = [50, 75, 100, 120]
const NOISE = [0, 6, 20]
const PATIENTS: StemiPatient[] = [{ sex: 'male', ageYears: 62 }, { sex: 'female', ageYears: 70 }, { sex: 'unknown', ageYears: null }]

function tenSeconds (stemi: StemiKind, bpm: number, seed: number, noise: number): Int32Array[] {
  const s = new EcgSynth({ stemi, heartRateBpm: bpm, seed, noiseMicrovolts: noise, sampleRateHz: FS })
  return s.next(10 * FS).map(a => Int32Array.from(a))
}

function stOf (leads: Int32Array[]): Partial<Record<LeadName, number>> {
  const m = measureSt(leads, FS)
  if (!m.ok) throw new Error(m.reason)
  return Object.fromEntries(LEAD_NAMES.map((l, i) => [l, m.stUv[i]!]))
}

const cases: Array<[StemiKind, number, number, number]> = []
for (const stemi of ['none', 'inferior', 'anterior'] as const) for (const seed of SEEDS) for (const bpm of RATES) for (const noise of NOISE) cases.push([stemi, seed, bpm, noise])

describe('measureSt on the simulator ECG', () => {
  it.each(cases)('%s, seed %i, %i bpm, noise %i µV', (stemi, seed, bpm, noise) => {
    const stUv = stOf(tenSeconds(stemi, bpm, seed, noise))
    for (const patient of PATIENTS) {
      const r = assessStemi({ stUv, lbbb: false, paced: false, patient })
      if (stemi === 'none') {
        expect(r.verdict, JSON.stringify(stUv)).toBe('not_met')
      } else if (stemi === 'inferior') {
        expect(r.verdict).toBe('met')
        expect(r.leads).toEqual(['II', 'III', 'aVF'])
        expect(r.territories).toEqual(['inferior'])
      } else {
        expect(r.verdict).toBe('met')
        expect(r.territories[0] === 'anterior' || r.territories.includes('anterior')).toBe(true)
        for (const l of ['V1', 'V2', 'V3', 'V4'] as const) expect(r.leads).toContain(l)
        for (const l of ['II', 'III', 'aVF'] as const) expect(r.leads).not.toContain(l)
      }
    }
  })

  it('shows reciprocal depression opposite an inferior infarct (I, aVL)', () => {
    const st = stOf(tenSeconds('inferior', 70, 5, 6))
    expect(st.aVL!).toBeLessThan(-50)
    expect(st.III!).toBeGreaterThan(st.II!)
  })

  it('finds every beat of 10 s', () => {
    for (const bpm of RATES) {
      const peaks = detectQrs(tenSeconds('none', bpm, 3, 6), FS)
      // 10 s at `bpm` ± HRV and the random start phase: within one beat of the expected count.
      expect(Math.abs(peaks.length - 10 * bpm / 60)).toBeLessThanOrEqual(1.5)
    }
  })

  it('refuses what it cannot measure instead of reporting 0', () => {
    expect(measureSt([], FS).ok).toBe(false)
    const flat = Array.from({ length: 12 }, () => new Int32Array(5000))
    expect(measureSt(flat, FS).ok).toBe(false)
    const short = tenSeconds('inferior', 60, 1, 6).map(a => a.subarray(0, 1500))
    expect(measureSt(short, FS)).toMatchObject({ ok: false })
  })
})
