// NEWS2 against the Royal College of Physicians 2017 chart (Chart 1 scoring, Chart 2 bands,
// Chart 3 triggers): every band edge of every parameter on both sides, the chart's decimal
// handling, missing and stale parameters (never scored as normal), and the triggers.
import { describe, expect, it } from 'vitest'
import {
  news2, NEWS2_PARAMS, NEWS2_STALENESS_DEFAULTS, scoreAirOrOxygen, scoreConsciousness, scorePulse, scoreRespirationRate,
  scoreSpo2Scale1, scoreSystolic, scoreTemperature, type News2Readings
} from '../streams/alerts/news2.js'

type Row = readonly [value: number, score: number]

// Chart 1 rows; each pair of consecutive rows is one band edge.
const CHART: ReadonlyArray<readonly [string, (v: number) => number, readonly Row[]]> = [
  // Respiration rate: ≤8 → 3 | 9–11 → 1 | 12–20 → 0 | 21–24 → 2 | ≥25 → 3
  ['respiration rate', scoreRespirationRate, [[0, 3], [8, 3], [9, 1], [11, 1], [12, 0], [20, 0], [21, 2], [24, 2], [25, 3], [60, 3]]],
  // SpO2 Scale 1: ≤91 → 3 | 92–93 → 2 | 94–95 → 1 | ≥96 → 0
  ['SpO2 scale 1', scoreSpo2Scale1, [[50, 3], [91, 3], [92, 2], [93, 2], [94, 1], [95, 1], [96, 0], [100, 0]]],
  // Air or oxygen: air → 0 | oxygen → 2
  ['air or oxygen', scoreAirOrOxygen, [[0, 0], [1, 2]]],
  // Systolic BP: ≤90 → 3 | 91–100 → 2 | 101–110 → 1 | 111–219 → 0 | ≥220 → 3
  ['systolic BP', scoreSystolic, [[40, 3], [90, 3], [91, 2], [100, 2], [101, 1], [110, 1], [111, 0], [219, 0], [220, 3], [300, 3]]],
  // Pulse: ≤40 → 3 | 41–50 → 1 | 51–90 → 0 | 91–110 → 1 | 111–130 → 2 | ≥131 → 3
  ['pulse', scorePulse, [[20, 3], [40, 3], [41, 1], [50, 1], [51, 0], [90, 0], [91, 1], [110, 1], [111, 2], [130, 2], [131, 3], [220, 3]]],
  // Consciousness (ACVPU 0=A 1=C 2=V 3=P 4=U): Alert → 0 | new confusion, V, P, U → 3
  ['consciousness', scoreConsciousness, [[0, 0], [1, 3], [2, 3], [3, 3], [4, 3]]],
  // Temperature: ≤35.0 → 3 | 35.1–36.0 → 1 | 36.1–38.0 → 0 | 38.1–39.0 → 1 | ≥39.1 → 2
  ['temperature', scoreTemperature, [[30, 3], [35.0, 3], [35.1, 1], [36.0, 1], [36.1, 0], [38.0, 0], [38.1, 1], [39.0, 1], [39.1, 2], [42, 2]]]
]

describe('NEWS2 Chart 1: every band edge', () => {
  for (const [name, score, rows] of CHART) {
    it.each(rows.map(([v, s]) => ({ v, s })))(`${name} $v scores $s`, ({ v, s }) => {
      expect(score(v)).toBe(s)
    })
  }
})

describe('NEWS2 decimal handling: readings rounded to the chart resolution (half up)', () => {
  it.each([
    [scoreRespirationRate, 8.4, 3], [scoreRespirationRate, 8.5, 1], [scoreRespirationRate, 20.4, 0], [scoreRespirationRate, 20.5, 2],
    [scoreSpo2Scale1, 91.4, 3], [scoreSpo2Scale1, 91.5, 2], [scoreSpo2Scale1, 95.5, 0],
    [scoreSystolic, 90.4, 3], [scoreSystolic, 90.5, 2], [scoreSystolic, 219.4, 0], [scoreSystolic, 219.5, 3],
    [scorePulse, 40.4, 3], [scorePulse, 40.5, 1], [scorePulse, 130.4, 2], [scorePulse, 130.5, 3],
    // 35.05 is 35.04999… in binary; the chart reading a clinician writes down is 35.1.
    [scoreTemperature, 35.04, 3], [scoreTemperature, 35.05, 1], [scoreTemperature, 36.04, 1], [scoreTemperature, 36.05, 0],
    [scoreTemperature, 38.04, 0], [scoreTemperature, 38.05, 1], [scoreTemperature, 39.04, 1], [scoreTemperature, 39.05, 2]
  ] as const)('%o(%d) = %d', (fn, v, s) => {
    expect(fn(v)).toBe(s)
  })
})

const T = 1_700_000_000_000
const r = (value: number, ageMs = 0): { value: number, atMs: number } => ({ value, atMs: T - ageMs })

/** A complete set scoring 0 everywhere. */
function normal (): News2Readings {
  return {
    respiratory_rate: r(16),
    spo2: r(98),
    supplemental_o2: r(0),
    nibp_systolic: r(125),
    heart_rate: r(72),
    consciousness_acvpu: r(0),
    temperature: r(36.8)
  }
}

describe('NEWS2 aggregate, bands and triggers (Charts 2 and 3)', () => {
  it.each([
    // [overrides, total, band, trigger, priority, anySingle3]
    [{}, 0, 'low', null, null, false],
    [{ heart_rate: r(95) }, 1, 'low', null, null, false],
    [{ heart_rate: r(115), respiratory_rate: r(22) }, 4, 'low', null, null, false],
    [{ consciousness_acvpu: r(1) }, 3, 'low-medium', 'single-parameter', 'medium', true],
    [{ nibp_systolic: r(90) }, 3, 'low-medium', 'single-parameter', 'medium', true],
    [{ heart_rate: r(115), respiratory_rate: r(22), temperature: r(38.5) }, 5, 'medium', 'urgent', 'medium', false],
    [{ heart_rate: r(115), respiratory_rate: r(22), spo2: r(95), temperature: r(38.5) }, 6, 'medium', 'urgent', 'medium', false],
    [{ heart_rate: r(115), respiratory_rate: r(22), supplemental_o2: r(1), spo2: r(95) }, 7, 'high', 'emergency', 'high', false],
    // The chart's maximum: 3+3+2+3+3+3+3.
    [{ heart_rate: r(140), respiratory_rate: r(26), spo2: r(88), supplemental_o2: r(1), nibp_systolic: r(85), consciousness_acvpu: r(4), temperature: r(34.5) }, 20, 'high', 'emergency', 'high', true]
  ] as const)('%o → total %d, band %s, trigger %s', (over, total, band, trigger, priority, single3) => {
    const res = news2({ ...normal(), ...over }, T)
    expect(res.complete).toBe(true)
    expect(res.missing).toEqual([])
    expect(res.total).toBe(total)
    expect(res.partialTotal).toBe(total)
    expect(res.band).toBe(band)
    expect(res.trigger).toBe(trigger)
    expect(res.priority).toBe(priority)
    expect(res.anySingle3).toBe(single3)
  })

  it('reports each parameter with its value, score and time', () => {
    const res = news2({ ...normal(), heart_rate: r(131, 1000) }, T)
    expect(Object.keys(res.parameters)).toEqual([...NEWS2_PARAMS])
    expect(res.parameters.pulse).toEqual({ value: 131, score: 3, atMs: T - 1000 })
    expect(res.parameters.air_or_oxygen).toEqual({ value: 0, score: 0, atMs: T })
  })
})

describe('NEWS2 missing parameters: reported, never scored as normal', () => {
  it('an empty set is all missing, total null, band unknown', () => {
    const res = news2({}, T)
    expect(res.complete).toBe(false)
    expect(res.total).toBeNull()
    expect(res.partialTotal).toBe(0)
    expect(res.missing).toEqual([...NEWS2_PARAMS])
    expect(res.band).toBeNull()
    expect(res.trigger).toBeNull()
    for (const p of NEWS2_PARAMS) expect(res.parameters[p]).toEqual({ missing: 'absent' })
  })

  it('a partial total below every threshold gives no band (it could still be anything)', () => {
    const { temperature: _t, ...rest } = normal()
    const res = news2(rest, T)
    expect(res.missing).toEqual(['temperature'])
    expect(res.total).toBeNull()
    expect(res.partialTotal).toBe(0)
    expect(res.band).toBeNull()
  })

  it('triggers fire on a partial total that already meets a threshold, and on a single 3', () => {
    const urgent = news2({ heart_rate: r(115), respiratory_rate: r(22), temperature: r(38.5) }, T)
    expect([urgent.complete, urgent.total, urgent.partialTotal, urgent.trigger, urgent.band]).toEqual([false, null, 5, 'urgent', 'medium'])
    const emergency = news2({ heart_rate: r(135), spo2: r(90), supplemental_o2: r(1) }, T)
    expect([emergency.partialTotal, emergency.trigger, emergency.priority, emergency.band]).toEqual([8, 'emergency', 'high', 'high'])
    const single = news2({ consciousness_acvpu: r(2) }, T)
    expect([single.partialTotal, single.anySingle3, single.trigger, single.priority, single.band]).toEqual([3, true, 'single-parameter', 'medium', 'low-medium'])
  })

  it('a reading older than its staleness is missing (stale): 5 min default, 15 min for NIBP and temperature', () => {
    const fiveMin = NEWS2_STALENESS_DEFAULTS.spo2
    const fifteen = NEWS2_STALENESS_DEFAULTS.systolic_bp
    expect([fiveMin, fifteen, NEWS2_STALENESS_DEFAULTS.temperature]).toEqual([300_000, 900_000, 900_000])
    const res = news2({
      ...normal(),
      spo2: r(88, fiveMin + 1),           // stale: would score 3
      respiratory_rate: r(16, fiveMin),   // exactly at the bound: still fresh
      nibp_systolic: r(85, fifteen - 1),  // fresh: scores 3
      temperature: r(36.8, fifteen + 1)   // stale
    }, T)
    expect(res.parameters.spo2).toEqual({ missing: 'stale' })
    expect(res.parameters.temperature).toEqual({ missing: 'stale' })
    expect(res.parameters.respiration_rate).toMatchObject({ score: 0 })
    expect(res.parameters.systolic_bp).toMatchObject({ score: 3 })
    expect(res.missing).toEqual(['spo2', 'temperature'])
    expect(res.partialTotal).toBe(3)
    expect(res.complete).toBe(false)
  })

  it('staleness is configurable per parameter', () => {
    const res = news2({ ...normal(), spo2: r(98, 60_000) }, T, { ...NEWS2_STALENESS_DEFAULTS, spo2: 30_000 })
    expect(res.missing).toEqual(['spo2'])
  })

  it('pulse is the heart rate, falling back to the oximeter pulse rate when HR is missing or stale', () => {
    const { heart_rate: _hr, ...noHr } = normal()
    expect(news2({ ...noHr, pulse_rate: r(135) }, T).parameters.pulse).toMatchObject({ value: 135, score: 3 })
    expect(news2({ ...noHr, heart_rate: r(70, 400_000), pulse_rate: r(45) }, T).parameters.pulse).toMatchObject({ value: 45, score: 1 })
    expect(news2({ ...normal(), pulse_rate: r(135) }, T).parameters.pulse).toMatchObject({ value: 72, score: 0 })
    expect(news2({ ...noHr, heart_rate: r(70, 400_000) }, T).parameters.pulse).toEqual({ missing: 'stale' })
  })
})
