// The summarising rules of the planned `aggregated` level (streams/dataspace/aggregate.ts), as
// pure functions: binned statistics, binned duration, no time, fresh subjects; and the grant rules.
import { describe, expect, it } from 'vitest'
import { aggregatedGrantProblem, binDown, summariseEncounter, summaryColumns, summaryValues } from '../streams/dataspace/aggregate.js'

// Wed 2026-03-04 10:17:23.456789 UTC, in µs.
const T0 = Date.UTC(2026, 2, 4, 10, 17, 23, 456) * 1000 + 789

function rows (): Array<{ timeUs: number, values: Array<number | null> }> {
  // No input is a multiple of its bin width, so any exact value released would show.
  const hr = [73, 88, 101, 67, 93, 79, 112]
  const spo2 = [97, 95, 93, null, 99, 91, 93]
  // 7 samples over 37 min 41.5 s.
  return hr.map((h, i) => ({ timeUs: T0 + i * 376_916_666, values: [h, spo2[i]!] }))
}

describe('aggregated summaries', () => {
  it('bins min, median, max and count per field, duration to 10 min, and releases no time', () => {
    const s = summariseEncounter(rows(), ['heart_rate', 'spo2'])!
    expect(s.fields).toEqual({
      heart_rate: { count: 0, min: 65, median: 85, max: 110 },
      spo2: { count: 0, min: 90, median: 94, max: 98 }
    })
    expect(s.durationMin).toBe(30)
    // No week, date or time of day: the shifted week was a stable per-permit key (aggregate.ts).
    expect(Object.keys(s).sort()).toEqual(['durationMin', 'fields', 'subject'])
    expect(summaryColumns(['heart_rate'])).toEqual(['duration_min', 'heart_rate_count', 'heart_rate_min', 'heart_rate_median', 'heart_rate_max'])
    expect(summaryValues(s, ['spo2'])).toEqual([30, 0, 90, 94, 98])
    // No exact value of the input survives, nor any time finer than the week.
    const text = JSON.stringify({ ...s, subject: '' }) // the random UUID may hold any digits
    for (const v of [73, 88, 101, 67, 93, 79, 112, 97, 95, 99, 91]) expect(text).not.toMatch(new RegExp(`[^0-9.]${v}[^0-9]`))
    expect(text).not.toMatch(/T\d\d:|10:17|37/)
  })

  it('gives a fresh subject at every extract, so two extracts cannot be joined on it', () => {
    const a = summariseEncounter(rows(), ['heart_rate'])!
    const b = summariseEncounter(rows(), ['heart_rate'])!
    expect(a.subject).toMatch(/^[0-9a-f-]{36}$/)
    expect(a.subject).not.toBe(b.subject)
    expect({ ...a, subject: '' }).toEqual({ ...b, subject: '' })
  })

  it('refuses fields it has no bin width for, and returns null for an encounter without rows', () => {
    expect(() => summariseEncounter(rows(), ['temperature'])).toThrow(/no bin width for temperature/)
    expect(summariseEncounter([], ['heart_rate'])).toBeNull()
    expect(summariseEncounter([{ timeUs: T0, values: [null] }], ['heart_rate'])!.fields.heart_rate).toBeNull()
  })

  it('bins down without float noise', () => {
    expect(binDown(36.7, 0.5)).toBe(36.5)
    expect(binDown(119.99, 10)).toBe(110)
  })

  it('grants level aggregated on vitals only, with summarisable fields and demographics', () => {
    expect(aggregatedGrantProblem(['vitals'], undefined)).toBeNull()
    expect(aggregatedGrantProblem(['vitals'], { vitals: ['heart_rate', 'age', 'sex'] })).toBeNull()
    expect(aggregatedGrantProblem(['vitals', 'ecg'], undefined)).toMatch(/not ecg/)
    expect(aggregatedGrantProblem(['vitals'], { vitals: ['heart_rate', 'temperature'] })).toMatch(/no summary of temperature/)
  })
})
