// A smoke run of `ambulink bench` with tiny numbers: the real servers (InfluxDB, the gateway as
// a child process, Mosquitto) and every phase, checking the report's shape and that no
// acknowledged frame is missing from InfluxDB. Not a performance assertion: rates on a shared
// CI machine mean nothing; the benchmark itself lives in loadtest/ and prints JSON.
import { describe, expect, it } from 'vitest'
import { BENCH_DEFAULTS, validateBenchOptions } from '../loadtest/bench-options.js'
import { mostWithin, runBench } from '../loadtest/bench.js'

describe('units_stored_p99_le_1s (goal 1 of issue 12)', () => {
  const step = (units: number, sustained: boolean, p99: number) => ({ units, sustained, publish_to_stored_ms: { p99 } })
  it('is the most units of a sustained step within the bound, not the most sustained', () => {
    // A full search as on the 2-core machine: 125 sustained but over 1 s, 138 within it, 150 not.
    const search = [step(100, true, 610), step(150, false, 8624), step(125, true, 2466), step(138, true, 853)]
    expect(mostWithin(search, 1000)).toBe(138)
    expect(mostWithin(search.slice(0, 3), 1000)).toBe(100)
  })
  it('never counts a step that was not sustained, and is null when no step met both', () => {
    expect(mostWithin([step(200, false, 300), step(100, true, 1001)], 1000)).toBeNull()
    expect(mostWithin([], 1000)).toBeNull()
  })
})

describe('ambulink bench (smoke)', () => {
  it('runs every phase and reports the contract fields with lost = 0', async () => {
    const lines: string[] = []
    const report = await runBench(validateBenchOptions({
      ...BENCH_DEFAULTS.quick,
      units: 5,
      probes: 2,
      durationS: 5,
      searchFrom: 5,
      searchTo: 5,
      satUnits: 3,
      window: 2,
      satDurationS: 2,
      satWarmupS: 0,
      satMaxFrames: 40,
      rawPoints: 20_000,
      drainTimeoutS: 30,
      outageS: 3,
      store: 'both',
      catchupMaxS: 45,
      scryptN: 1024
    }), line => { lines.push(line) })

    for (const key of ['units', 'frames_per_s', 'ecg_points_per_s', 'lost', 'publish_to_stored_p50_ms', 'publish_to_stored_p99_ms',
      'publish_to_alert_p50_ms', 'publish_to_alert_p99_ms', 'gateway_rss_mb', 'influx_raw_points_per_s', 'sink_ratio',
      'mosquitto_msgs_per_s', 'broker_ratio', 'rss_mb_per_unit', 'gateway_cpu_us_per_frame', 'gateway_cpu_us_per_point',
      'aedes_msgs_per_s', 'ingest_vs_aedes_ratio', 'spool_bytes_per_frame_byte',
      'publish_to_alert_p95_ms', 'publish_to_alert_max_ms', 'publish_to_alert_count'] as const) {
      expect(typeof report[key], key).toBe('number')
    }
    expect(report.units).toBe(5)
    expect(report.lost).toBe(0)
    expect(report.realtime.lost_detail.checked).toBeGreaterThan(0)
    expect(report.saturation.gateway.lost).toBe(0)
    expect(report.realtime.publish_to_alert_ms.count, 'alerts measured').toBeGreaterThan(0)
    // Goal 2's keys (issue 12): the probes run in their own process and flip on every 250 ms
    // frame; every event is matched to the frame that caused it (by its reading's device time).
    expect(report.publish_to_alert_count).toBe(report.realtime.publish_to_alert_ms.count)
    expect(report.realtime.alerts_unmatched).toBe(0)
    expect(report.publish_to_alert_p50_ms).toBeLessThanOrEqual(report.publish_to_alert_p95_ms)
    expect(report.publish_to_alert_p95_ms).toBeLessThanOrEqual(report.publish_to_alert_p99_ms)
    expect(report.publish_to_alert_p99_ms).toBeLessThanOrEqual(report.publish_to_alert_max_ms)
    expect(report.realtime.publish_to_stored_ms.count, 'stored latencies measured').toBeGreaterThan(0)
    expect(report.gateway_rss_mb).toBeGreaterThan(10)
    // Issue 12 keys: present and consistent with the figures they derive from (no timing bounds).
    expect(report.rss_mb_per_unit).toBeCloseTo(report.gateway_rss_mb / report.units, 1)
    // Goal 1's own test beside `units`: the step's p99 decides it, whatever it was.
    expect(report.units_stored_p99_le_1s).toBe(report.publish_to_stored_p99_ms <= 1000 ? 5 : null)
    expect(report.definitions.units_stored_p99_le_1s).toBeTruthy()
    expect(report.gateway_cpu_us_per_frame).toBe(report.saturation.gateway.publish.broker_cpu_us_per_frame)
    expect(report.gateway_cpu_us_per_frame!).toBeGreaterThan(0)
    // Process CPU comes from /proc in 10 ms clock ticks: the smoke run's small backlog may drain
    // in less than one tick on an idle machine, so 0 is a possible reading here (never negative).
    expect(report.gateway_cpu_us_per_point).toBeGreaterThanOrEqual(0)
    expect(Number.isFinite(report.gateway_cpu_us_per_point)).toBe(true)
    expect(report.aedes_msgs_per_s!).toBeGreaterThan(0)
    expect(report.saturation.aedes!.errors).toBe(0)
    expect(report.ingest_vs_aedes_ratio).toBeCloseTo(report.gateway_msgs_per_s / report.aedes_msgs_per_s!, 2)
    // Goal 1's projection: gateway and InfluxDB CPU per unit-second over the real-time step.
    const uc = report.realtime.unit_cpu!
    expect(uc.window_s).toBeGreaterThan(0)
    expect(uc.units).toBe(report.units)
    expect(report.gateway_cpu_ms_per_unit_s).toBe(uc.gateway_ms_per_unit_s)
    expect(report.influx_cpu_ms_per_unit_s).toBe(uc.influx_ms_per_unit_s)
    expect(report.gateway_cpu_ms_per_unit_s!).toBeGreaterThan(0)
    expect(report.influx_cpu_ms_per_unit_s!).toBeGreaterThanOrEqual(0)
    const perUnit = report.gateway_cpu_ms_per_unit_s! + report.influx_cpu_ms_per_unit_s!
    expect(Math.abs(report.projected_units_2core! - 2000 / perUnit)).toBeLessThanOrEqual(1 + 0.01 * 2000 / perUnit)
    expect(report.projected_units_2core_with_headroom).toBeLessThan(report.projected_units_2core!)
    for (const key of ['gateway_cpu_ms_per_unit_s', 'influx_cpu_ms_per_unit_s', 'projected_units_2core', 'projected_units_2core_with_headroom'] as const) {
      expect(report.definitions[key], key).toBeTruthy()
    }
    // The acknowledged frames were spooled (the saturation run has no InfluxDB to drain to).
    expect(report.saturation.gateway.publish.bytes_acked_total).toBeGreaterThan(0)
    expect(report.spool_bytes_per_frame_byte!).toBeGreaterThan(0)
    // Goal 5: frames are spooled whole, not as line protocol (≤ 1.5 bytes per frame byte).
    expect(report.spool_bytes_per_frame_byte!).toBeLessThanOrEqual(1.5)
    expect(report.spool_ecg_hours_per_gb!).toBeGreaterThan(0)
    // Catch-up (goal 6): InfluxDB was killed and restarted under the quick run's stream; every
    // acknowledged frame of the step is in InfluxDB, and the catch-up is timed from its return.
    expect(report.catchup).toEqual(report.realtime)
    expect(report.catchup!.lost).toBe(0)
    expect(report.catchup!.lost_detail.checked).toBeGreaterThan(0)
    expect(report.catchup!.catchup!.outage_s).toBeGreaterThanOrEqual(3)
    expect(typeof report.catchup_s).toBe('number')
    expect(report.catchup_s).toBe(report.catchup!.catchup!.catchup_s)
    expect(report.goals.catchup_lost_0).toBe(true)
    // Goal 7: the same backlog drained into VictoriaMetrics (v2 write API) as into InfluxDB,
    // all of it, and each store's raw reference measured.
    const influx = report.stores.influxdb!
    const vm = report.stores.victoriametrics!
    expect(influx.sink.complete).toBe(true)
    expect(vm.sink.complete).toBe(true)
    expect(vm.sink.store).toBe('victoriametrics')
    expect(vm.sink.backlog_bytes).toBe(influx.sink.backlog_bytes)
    expect(vm.sink.points_since_restart).toBeGreaterThan(0)
    expect(vm.sink.points_since_restart).toBe(influx.sink.points_since_restart)
    expect(vm.raw!.points).toBeGreaterThan(0)
    expect(vm.store_rss_mb).toBeGreaterThan(0)
    expect(report.gateway_sink_points_per_s).toBe(influx.sink_ecg_points_per_s)
    // Machine-readable: the report survives a JSON round trip unchanged.
    expect(JSON.parse(JSON.stringify(report))).toEqual(report)
    expect(lines.some(l => l.includes('realtime'))).toBe(true)
  }, 240_000)
})
