// Goal 1's projection (loadtest/bench-unit-cpu.ts): CPU per unit-second and the units a 2-core
// box would hold, from CPU seconds measured over a window — the arithmetic, table-driven.
import { describe, expect, it } from 'vitest'
import { PROJECTION_HEADROOM, unitSecondCpu } from '../loadtest/bench-unit-cpu.js'

describe('unitSecondCpu', () => {
  it.each([
    // units, seconds, gateway CPU s, InfluxDB CPU s → gateway ms/unit-s, InfluxDB ms/unit-s, units on 2 cores, with headroom
    [100, 10, 1, 3, 1, 3, 500, 350],
    [282, 20, 2.538, 17.371, 0.45, 3.08, 566, 396],
    [10, 4, 0.04, 0, 1, 0, 2000, 1400],
    [5, 2, 0, 0, 0, null, null, null]
  ])('%i units over %i s, gateway %f s, InfluxDB %f s', (units, s, gw, influx, gwMs, influxMs, projected, headroom) => {
    const r = unitSecondCpu(units, s, gw, influx)
    expect(r.gateway_ms_per_unit_s).toBeCloseTo(gwMs, 3)
    if (influxMs !== null) expect(r.influx_ms_per_unit_s).toBeCloseTo(influxMs, 3)
    expect(r.projected_units_2core).toBe(projected)
    expect(r.projected_units_2core_with_headroom).toBe(headroom)
    expect(r.headroom).toBe(PROJECTION_HEADROOM)
  })
})
