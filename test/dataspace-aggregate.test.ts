// The summarising rules of the planned `aggregated` level (streams/dataspace/aggregate.ts), as
// pure functions: binned statistics, binned duration, the shifted week only, fresh subjects.
import { describe, expect, it } from 'vitest'
import { binDown, summariseEncounter, weekOf } from '../streams/dataspace/aggregate.js'

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
  it('bins min, median, max and count per field, duration to 10 min, and keeps only the shifted week', () => {
    const shiftUs = -3 * 86_400_000_000 // three days back: into the previous week
    const s = summariseEncounter(rows(), ['heart_rate', 'spo2'], shiftUs)!
    expect(s.fields).toEqual({
      heart_rate: { count: 0, min: 65, median: 85, max: 110 },
      spo2: { count: 0, min: 90, median: 94, max: 98 }
    })
    expect(s.durationMin).toBe(30)
    expect(s.week).toBe('2026-02-23')
    // No exact value of the input survives, nor any time finer than the week.
    const text = JSON.stringify(s)
    for (const v of [73, 88, 101, 67, 93, 79, 112, 97, 95, 99, 91]) expect(text).not.toMatch(new RegExp(`[^0-9.]${v}[^0-9]`))
    expect(text).not.toMatch(/T\d\d:|10:17|37/)
  })

  it('gives a fresh subject at every extract, so two extracts cannot be joined on it', () => {
    const a = summariseEncounter(rows(), ['heart_rate'], 0)!
    const b = summariseEncounter(rows(), ['heart_rate'], 0)!
    expect(a.subject).toMatch(/^[0-9a-f-]{36}$/)
    expect(a.subject).not.toBe(b.subject)
    expect({ ...a, subject: '' }).toEqual({ ...b, subject: '' })
  })

  it('refuses fields it has no bin width for, and returns null for an encounter without rows', () => {
    expect(() => summariseEncounter(rows(), ['temperature'], 0)).toThrow(/no bin width for temperature/)
    expect(summariseEncounter([], ['heart_rate'], 0)).toBeNull()
    expect(summariseEncounter([{ timeUs: T0, values: [null] }], ['heart_rate'], 0)!.fields.heart_rate).toBeNull()
  })

  it('bins down without float noise, and finds Monday across a month edge', () => {
    expect(binDown(36.7, 0.5)).toBe(36.5)
    expect(binDown(119.99, 10)).toBe(110)
    expect(weekOf(Date.UTC(2026, 2, 1, 23, 59))).toBe('2026-02-23') // Sunday
    expect(weekOf(Date.UTC(2026, 2, 2, 0, 0))).toBe('2026-03-02') // Monday
  })
})
