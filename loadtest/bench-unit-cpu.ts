/**
 * Goal 1's projection (issue 12): CPU per unit-second of the gateway process(es) and of
 * InfluxDB in a real-time step, and how many units a 2-core box running only those two would
 * hold. The load generator (the simulated fleet, in the bench's own process) is left out: on the
 * shared bench machine it takes a large part of the two cores, on a hospital's box it does not
 * exist.
 *
 * The window runs from the end of the step's warm-up to the end of generation (or to the moment
 * InfluxDB is killed, in a catch-up step): the processes' utime + stime over it ÷ (units × its
 * seconds). That is the steady-state cost when the step keeps up; when it does not (spool or
 * device backlog growing), work left for later is not counted and the projection is too high —
 * read it together with the step's `sustained`.
 */
import { processCpuSeconds } from './bench-cpu.js'

/** CPU a 2-core box has per second, ms. */
const BOX_CPU_MS_PER_S = 2000
/**
 * Share of the box the projection plans to use: 30 % kept for bursts (a fleet reconnecting and
 * flushing its queues), garbage-collector peaks, the OS, and a catch-up after an InfluxDB outage.
 */
export const PROJECTION_HEADROOM = 0.7

export interface UnitSecondCpu {
  /** Length of the window, s, and the units streaming over it. */
  window_s: number
  units: number
  /** Process CPU over the window ÷ (units × window_s), ms per unit-second. */
  gateway_ms_per_unit_s: number
  influx_ms_per_unit_s: number
  /** 2000 ms ÷ (gateway + InfluxDB ms per unit-second): every CPU-second of the box used. */
  projected_units_2core: number | null
  /** The same × PROJECTION_HEADROOM. */
  projected_units_2core_with_headroom: number | null
  headroom: number
}

/** Samples the processes' CPU at start() and at the first stop(); later stops change nothing. */
export class UnitCpuWindow {
  private start0: { at: number, gw: number, influx: number } | null = null
  private end: { at: number, gw: number, influx: number } | null = null
  private stopping: Promise<void> | null = null

  constructor (private readonly gatewayPids: () => readonly number[], private readonly influxPid: () => number) {}

  async start (): Promise<void> {
    if (this.start0 === null && this.stopping === null) this.start0 = await this.sample()
  }

  async stop (): Promise<void> {
    this.stopping ??= (async () => { if (this.start0 !== null) this.end = await this.sample() })()
    await this.stopping
  }

  result (units: number): UnitSecondCpu | null {
    if (this.start0 === null || this.end === null) return null
    const s = (this.end.at - this.start0.at) / 1000
    if (s <= 0 || units <= 0) return null
    return unitSecondCpu(units, s, this.end.gw - this.start0.gw, this.end.influx - this.start0.influx)
  }

  private async sample (): Promise<{ at: number, gw: number, influx: number }> {
    const [gw, influx] = await Promise.all([
      Promise.all(this.gatewayPids().map(processCpuSeconds)).then(xs => xs.reduce((a, b) => a + b, 0)),
      processCpuSeconds(this.influxPid())
    ])
    return { at: Date.now(), gw, influx }
  }
}

/** The projection from CPU seconds used by `units` over `seconds`. */
export function unitSecondCpu (units: number, seconds: number, gatewayCpuS: number, influxCpuS: number): UnitSecondCpu {
  const gw = gatewayCpuS * 1000 / (units * seconds)
  const influx = influxCpuS * 1000 / (units * seconds)
  const perUnit = gw + influx
  return {
    window_s: Math.round(seconds * 10) / 10,
    units,
    gateway_ms_per_unit_s: Math.round(gw * 1000) / 1000,
    influx_ms_per_unit_s: Math.round(influx * 1000) / 1000,
    projected_units_2core: perUnit > 0 ? Math.floor(BOX_CPU_MS_PER_S / perUnit) : null,
    projected_units_2core_with_headroom: perUnit > 0 ? Math.floor(BOX_CPU_MS_PER_S * PROJECTION_HEADROOM / perUnit) : null,
    headroom: PROJECTION_HEADROOM
  }
}
