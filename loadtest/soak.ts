/**
 * Soak: a simulated fleet streams into a gateway child process (`ambulink serve`, real InfluxDB)
 * for a long time; once a minute the gateway's RSS, V8 heap, open handles and spool lag are
 * sampled from its /metrics (and /proc). The verdict is whether memory and handles stay flat
 * after the warm-up: the growth between the first and last third of the post-warm-up samples.
 * Prints JSON (also written to --out when given).
 *
 *   node --import tsx loadtest/soak.ts [--units 150] [--minutes 60] [--warmup-minutes 10]
 *                                      [--sample-s 60] [--max-growth 0.1] [--out soak.json]
 */
import { writeFile } from 'node:fs/promises'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Fleet } from '../simulator/fleet.js'
import { metricValue, registerUnits, scrape, waitSpoolDrained } from '../testkit/fault-harness.js'
import { startGatewayProcess } from '../testkit/gateway-process.js'
import { createDatabase, startInfluxDB } from '../testkit/influxdb.js'

const { values } = parseArgs({
  options: {
    units: { type: 'string', default: '150' },
    minutes: { type: 'string', default: '60' },
    'warmup-minutes': { type: 'string', default: '10' },
    'sample-s': { type: 'string', default: '60' },
    'max-growth': { type: 'string', default: '0.1' },
    out: { type: 'string' }
  }
})
const units = Number(values.units)
const minutes = Number(values.minutes)
const warmupMinutes = Number(values['warmup-minutes'])
const sampleS = Number(values['sample-s'])
const maxGrowth = Number(values['max-growth'])

interface Sample { atS: number, rssBytes: number, heapUsedBytes: number, activeHandles: number, spoolLagSeconds: number, spoolPendingBytes: number, framesAccepted: number }

const DB = 'soak'
const dir = await mkdtemp(join(tmpdir(), 'ambulink-soak-'))
const influx = await startInfluxDB({ logLevel: 'warn' })
await createDatabase(influx.url, DB)
const credentials = await registerUnits(dir, 'soak', units)
const gw = await startGatewayProcess({ dataDir: dir, env: { INFLUX_URL: influx.url, INFLUX_API: 'v1', INFLUX_DB: DB, LOG_LEVEL: 'info' }, startTimeoutMs: 120_000 })
const httpUrl = `http://127.0.0.1:${gw.ports.http}`
const fleet = new Fleet({ url: `mqtt://127.0.0.1:${gw.ports.mqtt}`, units: credentials, startTimeoutMs: 120_000 })
const samples: Sample[] = []
const t0 = Date.now()

async function sample (): Promise<Sample> {
  const m = await scrape(httpUrl)
  return {
    atS: Math.round((Date.now() - t0) / 1000),
    rssBytes: await gw.rss(),
    heapUsedBytes: metricValue(m, 'ambulink_nodejs_heap_size_used_bytes') ?? NaN,
    activeHandles: metricValue(m, 'ambulink_nodejs_active_handles_total') ?? NaN,
    spoolLagSeconds: metricValue(m, 'ambulink_spool_lag_seconds') ?? NaN,
    spoolPendingBytes: metricValue(m, 'ambulink_spool_pending_bytes') ?? NaN,
    framesAccepted: metricValue(m, 'ambulink_frames_accepted_total', 'transport="mqtt"') ?? 0
  }
}

/** Relative growth from the first third to the last third of `xs` (means). */
function growth (xs: number[]): number | null {
  if (xs.length < 3) return null
  const k = Math.max(1, Math.floor(xs.length / 3))
  const mean = (a: number[]): number => a.reduce((s, x) => s + x, 0) / a.length
  const first = mean(xs.slice(0, k))
  return first === 0 ? null : (mean(xs.slice(-k)) - first) / first
}

let failure: string | null = null
try {
  await fleet.start()
  samples.push(await sample())
  const endAt = t0 + minutes * 60_000
  while (Date.now() < endAt) {
    await new Promise(resolve => setTimeout(resolve, Math.min(sampleS * 1000, endAt - Date.now())))
    const s = await sample()
    samples.push(s)
    console.error(`soak ${Math.round(s.atS / 60)} min: rss ${Math.round(s.rssBytes / 1e6)} MB, heap ${Math.round(s.heapUsedBytes / 1e6)} MB, handles ${s.activeHandles}, lag ${s.spoolLagSeconds.toFixed(2)} s`)
  }
} catch (err) {
  failure = (err as Error).message
}
const stats = await fleet.stop()
const drainMs = await waitSpoolDrained(httpUrl, 300_000).catch(() => null)
await gw.stop()
await influx.stop()
await rm(dir, { recursive: true, force: true })

const steady = samples.filter(s => s.atS >= warmupMinutes * 60)
const g = {
  rss: growth(steady.map(s => s.rssBytes)),
  heap: growth(steady.map(s => s.heapUsedBytes)),
  handles: growth(steady.map(s => s.activeHandles))
}
const flat = failure === null && g.rss !== null && g.heap !== null && g.handles !== null &&
  g.rss < maxGrowth && g.heap < maxGrowth && g.handles < maxGrowth
const report = {
  benchmark: 'soak',
  units,
  minutes,
  warmupMinutes,
  sampleS,
  maxGrowth,
  failure,
  framesGenerated: stats.framesGenerated,
  framesAcked: stats.framesAcked,
  framesDropped: stats.dropped,
  reconnects: stats.reconnects,
  drainAfterStopMs: drainMs,
  samples,
  growthAfterWarmup: g,
  verdict: failure !== null ? 'failed' : steady.length < 3 ? 'too short to judge (fewer than 3 samples after warm-up)' : flat ? 'flat' : 'growing'
}
const text = JSON.stringify(report, null, 2)
console.log(text)
if (values.out !== undefined) await writeFile(values.out, text + '\n')
