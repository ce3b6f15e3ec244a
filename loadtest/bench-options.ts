/**
 * `ambulink bench` options: one table of defaults for the quick and the full run, validated once
 * with errors that name the option. Every loop of the benchmark is bounded by these numbers.
 */
import { parseArgs } from 'node:util'
import { PRODUCTION_SCRYPT_N } from './bench-credentials.js'

export type BenchStore = 'influxdb' | 'victoriametrics' | 'both'

export interface BenchOptions {
  mode: 'quick' | 'full'
  /** Real-time units (alert probes included); the full run searches instead, from searchFrom. */
  units: number
  /** Of which alert probes (bench-alerts.ts: 4 alert events a second each; 8 give ≥ 300 events in a quick step). */
  probes: number
  /** Seconds of each real-time step. */
  durationS: number
  /** Full run: units tried first, step, and the most ever tried. */
  searchFrom: number
  searchStep: number
  searchTo: number
  /** Saturation: clients, frames in flight per client, seconds, warm-up seconds. */
  satUnits: number
  window: number
  satDurationS: number
  satWarmupS: number
  /** Saturation: most frames per client (0 = bounded by time only; smoke tests). */
  satMaxFrames: number
  /** Saturating clients: raw-publisher.ts (default) or mqtt.js. */
  generator: 'raw' | 'mqttjs'
  /** Extra environment for the gateways (experiments: INFLUX_CONCURRENCY=3, …). */
  gatewayEnv: Record<string, string>
  /** Raw InfluxDB reference: points prepared, lines per batch, requests in flight. */
  rawPoints: number
  rawBatchLines: number
  rawConcurrency: number
  /** Gateway processes (≥ 2: a Redis cluster, and the 1-vs-N throughput ratio is measured). */
  gateways: number
  /** Seconds the spools may take to drain after a phase. */
  drainTimeoutS: number
  /**
   * Seconds of draining the saturation backlog that the sink rate is measured over; 0 = until
   * empty (then the backlog is also counted in InfluxDB). The quick run stops early and
   * discards the rest, which a 10 s saturation makes minutes long.
   */
  sinkSeconds: number
  /**
   * Stores the sink phase and its raw reference run against (issue 12, goal 7), side by side
   * on the same backlog. The real-time steps and the catch-up always write to InfluxDB (their
   * lost counts and stored latencies are InfluxQL queries).
   */
  store: BenchStore
  /**
   * Catch-up (issue 12, goal 6): units streaming (full run; the quick run uses its real-time
   * step's units), seconds InfluxDB is down, and the most seconds the backlog may take to drain
   * after it is back (the step's bound). outageS 0: no catch-up.
   */
  catchupUnits: number
  outageS: number
  catchupMaxS: number
  scryptN: number
  cpuProfDir?: string
  skipReferences: boolean
  keep: boolean
  /**
   * Nice levels below the bench (and so below the gateways) at which InfluxDB's threads run,
   * from each start of it (docs/operations.md: a shared box gives InfluxDB the lower priority).
   */
  influxNice: number
}

export const BENCH_DEFAULTS: Readonly<Record<'quick' | 'full', Omit<BenchOptions, 'cpuProfDir'>>> = Object.freeze({
  quick: {
    mode: 'quick',
    units: 100,
    probes: 8,
    durationS: 15,
    searchFrom: 100,
    searchStep: 100,
    searchTo: 100,
    satUnits: 32,
    window: 8,
    satDurationS: 8,
    satWarmupS: 3,
    satMaxFrames: 0,
    generator: 'raw',
    gatewayEnv: {},
    rawPoints: 500_000,
    rawBatchLines: 5000,
    rawConcurrency: 3,
    gateways: 1,
    drainTimeoutS: 60,
    sinkSeconds: 10,
    store: 'influxdb',
    catchupUnits: 100,
    outageS: 10,
    catchupMaxS: 45,
    scryptN: PRODUCTION_SCRYPT_N,
    skipReferences: false,
    keep: false,
    influxNice: 0
  },
  full: {
    mode: 'full',
    units: 100,
    probes: 8,
    durationS: 60,
    searchFrom: 100,
    searchStep: 50,
    searchTo: 600,
    satUnits: 32,
    window: 8,
    satDurationS: 15,
    satWarmupS: 4,
    satMaxFrames: 0,
    generator: 'raw',
    gatewayEnv: {},
    rawPoints: 3_000_000,
    rawBatchLines: 5000,
    rawConcurrency: 3,
    gateways: 1,
    drainTimeoutS: 300,
    sinkSeconds: 0,
    store: 'both',
    catchupUnits: 200,
    outageS: 600,
    catchupMaxS: 900,
    scryptN: PRODUCTION_SCRYPT_N,
    skipReferences: false,
    keep: false,
    influxNice: 0
  }
})

export const BENCH_USAGE = `usage: ambulink bench [--quick] [options]

Starts a private InfluxDB and gateway(s) on 127.0.0.1, streams a simulated fleet into them,
measures the references (raw InfluxDB ingest, Mosquitto) in the same run, and prints one JSON
object on stdout (progress on stderr). --quick takes under 3 minutes; the full run searches the
most units sustained with lost = 0 and stable lag, then streams 200 units through a 10-minute
InfluxDB outage and its catch-up (30-45 minutes in all).

  --quick                 short run at --units
  --units N               real-time units, alert probes included (default 100)
  --probes N              alert probe units, 4 alert events a second each (default 8)
  --duration S            seconds per real-time step (quick 15, full 60)
  --search-from N --search-step N --search-to N   full run's unit search (100, 50, 600)
  --sat-units N           saturating clients (default 32)
  --window N              frames in flight per saturating client (default 8)
  --sat-duration S        seconds per saturation run, warm-up included (quick 8, full 15)
  --sat-warmup S          seconds of each saturation run not measured (quick 3, full 4)
  --sat-max-frames N      most frames per saturating client (default 0: time only)
  --generator raw|mqttjs  saturating clients: hand-encoded QoS 1 (default) or mqtt.js
  --raw-points N          points for the raw InfluxDB reference (quick 500000, full 3000000;
                          prepared and gzipped before the clock starts)
  --raw-batch N           lines per raw write (default 5000)
  --raw-concurrency N     raw writes in flight (default 3)
  --gateways N            gateway processes sharing a Redis (default 1)
  --drain-timeout S       longest wait for the spools to drain (quick 60, full 300)
  --sink-seconds S        measure the sink over this much draining, then discard the rest
                          (quick 10; full 0 = drain it all and count it in InfluxDB)
  --store S               influxdb (quick), victoriametrics or both (full): the sink phase and
                          its raw reference per store, on the same backlog (the VictoriaMetrics
                          sink writes through the v2 API); real time and catch-up use InfluxDB
  --catchup-units N       full run: units streaming through the InfluxDB outage (200); the
                          quick run's real-time step goes on into the outage at --units
  --outage S              seconds InfluxDB is down in the catch-up step (quick 10, full 600;
                          0 = no catch-up step)
  --catchup-max S         most seconds the backlog may take to drain after it (quick 45, full 900)
  --gateway-env NAME=V    extra gateway environment, repeatable (e.g. INFLUX_CONCURRENCY=3)
  --influx-nice N         run InfluxDB's threads N nice levels below the bench and gateways
                          (0-19, capped at nice 19; default 0)
  --scrypt-n N            scrypt cost of the bench credentials (default ${PRODUCTION_SCRYPT_N}, production)
  --cpu-prof DIR          write each gateway's V8 CPU profile to DIR
  --skip-references       gateway only (no raw InfluxDB, no Mosquitto)
  --keep                  keep the temp folder (logs, spools)
`

export class BenchUsageError extends Error {
  readonly code = 'AMB_ERR_BENCH_OPTION'
}

const INT_OPTIONS: Record<string, keyof BenchOptions> = {
  units: 'units',
  probes: 'probes',
  duration: 'durationS',
  'search-from': 'searchFrom',
  'search-step': 'searchStep',
  'search-to': 'searchTo',
  'sat-units': 'satUnits',
  window: 'window',
  'sat-duration': 'satDurationS',
  'sat-warmup': 'satWarmupS',
  'sat-max-frames': 'satMaxFrames',
  'raw-points': 'rawPoints',
  'raw-batch': 'rawBatchLines',
  'raw-concurrency': 'rawConcurrency',
  gateways: 'gateways',
  'drain-timeout': 'drainTimeoutS',
  'sink-seconds': 'sinkSeconds',
  'catchup-units': 'catchupUnits',
  outage: 'outageS',
  'catchup-max': 'catchupMaxS',
  'influx-nice': 'influxNice',
  'scrypt-n': 'scryptN'
}

export function parseBenchArgs (argv: string[]): BenchOptions {
  const options: Record<string, { type: 'string' | 'boolean', multiple?: boolean }> = {
    quick: { type: 'boolean' },
    'skip-references': { type: 'boolean' },
    keep: { type: 'boolean' },
    'cpu-prof': { type: 'string' },
    generator: { type: 'string' },
    store: { type: 'string' },
    'gateway-env': { type: 'string', multiple: true },
    help: { type: 'boolean' }
  }
  for (const k of Object.keys(INT_OPTIONS)) options[k] = { type: 'string' }
  const { values } = parseArgs({ args: argv, options, allowPositionals: false })
  if (values.help === true) throw new BenchUsageError('help')
  const o: BenchOptions = { ...BENCH_DEFAULTS[values.quick === true ? 'quick' : 'full'] }
  for (const [flag, key] of Object.entries(INT_OPTIONS)) {
    const raw = values[flag]
    if (raw === undefined) continue
    const n = Number(raw)
    if (!Number.isSafeInteger(n) || n < 0) throw new BenchUsageError(`--${flag} must be a whole number ≥ 0, got ${JSON.stringify(raw)}`)
    ;(o as unknown as Record<string, number>)[key] = n
  }
  if (values.quick === true && values.units !== undefined) o.searchFrom = o.searchTo = o.units
  if (typeof values['cpu-prof'] === 'string') o.cpuProfDir = values['cpu-prof']
  o.gatewayEnv = {}
  for (const kv of (values['gateway-env'] ?? []) as string[]) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(kv)
    if (m === null) throw new BenchUsageError(`--gateway-env takes NAME=value, got ${JSON.stringify(kv)}`)
    o.gatewayEnv[m[1]!] = m[2]!
  }
  if (values.generator !== undefined) {
    if (values.generator !== 'raw' && values.generator !== 'mqttjs') throw new BenchUsageError(`--generator must be raw or mqttjs, got ${JSON.stringify(values.generator)}`)
    o.generator = values.generator
  }
  if (values.store !== undefined) {
    if (values.store !== 'influxdb' && values.store !== 'victoriametrics' && values.store !== 'both') throw new BenchUsageError(`--store must be influxdb, victoriametrics or both, got ${JSON.stringify(values.store)}`)
    o.store = values.store
  }
  o.skipReferences = values['skip-references'] === true
  o.keep = values.keep === true
  return validateBenchOptions(o)
}

export function validateBenchOptions (o: BenchOptions): BenchOptions {
  const positive = (name: string, v: number): void => { if (!(Number.isSafeInteger(v) && v >= 1)) throw new BenchUsageError(`${name} must be a positive integer, got ${v}`) }
  positive('--units', o.units)
  positive('--duration', o.durationS)
  positive('--sat-units', o.satUnits)
  positive('--window', o.window)
  positive('--sat-duration', o.satDurationS)
  positive('--raw-batch', o.rawBatchLines)
  positive('--raw-concurrency', o.rawConcurrency)
  positive('--gateways', o.gateways)
  positive('--search-step', o.searchStep)
  if (o.influxNice > 19) throw new BenchUsageError(`--influx-nice must be within 0..19, got ${o.influxNice}`)
  if (o.probes >= o.units) throw new BenchUsageError(`--probes ${o.probes} must be fewer than --units ${o.units}`)
  if (o.searchFrom <= o.probes) throw new BenchUsageError(`--search-from ${o.searchFrom} must exceed --probes ${o.probes}`)
  if (o.mode === 'full' && o.outageS > 0 && o.catchupUnits <= o.probes) throw new BenchUsageError(`--catchup-units ${o.catchupUnits} must exceed --probes ${o.probes}`)
  if (o.searchTo < o.searchFrom) throw new BenchUsageError(`--search-to ${o.searchTo} must be ≥ --search-from ${o.searchFrom}`)
  if (o.satWarmupS >= o.satDurationS) o.satWarmupS = Math.max(0, o.satDurationS - 1)
  if (o.scryptN < 2 || (o.scryptN & (o.scryptN - 1)) !== 0) throw new BenchUsageError(`--scrypt-n must be a power of 2, got ${o.scryptN}`)
  return o
}
