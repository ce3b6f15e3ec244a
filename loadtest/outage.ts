/**
 * InfluxDB outage under load. A fleet streams in real time into a gateway writing to a real
 * influxd, which is (1) killed for `outageMs` and restarted, then (2) hung with SIGSTOP for
 * `hangMs` (the sink's INFLUX_TIMEOUT_MS must fire: a hung server never answers) and resumed.
 * Ingest goes on into the spool throughout; `ambulink_spool_lag_seconds` is sampled from
 * /metrics every 250 ms to show the lag rising and falling; at the end every acknowledged point
 * must be in InfluxDB exactly once.
 *
 * Drain policy: the spool is FIFO. After recovery the sink writes the backlog oldest first, in
 * batches of INFLUX_BATCH_POINTS, and live frames queue behind it; they reach InfluxDB once the
 * backlog is through (the "drainMs" figures). Live views do not wait for that: the dashboard and
 * the alert engine are fed from ingest, before the spool. Interleaving live data ahead of the
 * backlog would need a second read position and out-of-order commits in the spool; FIFO keeps a
 * single cursor, which is what makes the crash-safety argument simple.
 *
 *   node --import tsx loadtest/outage.ts [--units 8] [--outage-ms 30000] [--hang-ms 30000]
 */
import { startTestGateway } from '../testkit/gateway.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { checkStored, metricValue, numberFlags, registerUnits, scrape, sleep, type StoreCheck } from '../testkit/fault-harness.js'
import { Fleet } from '../simulator/index.js'

export interface OutageOptions {
  influx: InfluxServer
  db: string
  units: number
  frameMs: number
  /** InfluxDB killed for this long, ms (0 = skip). */
  outageMs: number
  /** InfluxDB SIGSTOPped for this long, ms (0 = skip). */
  hangMs: number
  /** INFLUX_TIMEOUT_MS given to the gateway. */
  influxTimeoutMs: number
  /** Healthy streaming before, between and after the faults, ms. */
  calmMs: number
  log?: (msg: string) => void
}

export interface PhaseFigures {
  fault: 'kill' | 'sigstop'
  durationMs: number
  /** Highest ambulink_spool_lag_seconds seen during the fault and the drain. */
  peakLagSeconds: number
  /** From recovery (restart / SIGCONT) until the lag is back under 1 s. */
  drainMs: number
  lagAfterSeconds: number
  /** The lag came back under 1 s within 90 s of the recovery (the backlog drained). */
  drained: boolean
  /** Frames acknowledged to devices while InfluxDB was unavailable. */
  framesAckedDuringFault: number
  /** Frames the fleet generated meanwhile (its real-time pace on this machine). */
  framesGeneratedDuringFault: number
}

export interface OutageResult extends StoreCheck {
  phases: PhaseFigures[]
  /** ambulink_spool_lag_seconds every 250 ms: [seconds since start, lag]. */
  lagSeries: Array<[number, number]>
  influxRetries: number
  /** Retry log lines naming the sink's request timeout (SIGSTOP phase). */
  timeoutRetries: number
  framesGenerated: number
  maxAckLatencyMs: number
}

export async function runOutage (o: OutageOptions): Promise<OutageResult> {
  const log = o.log ?? (() => {})
  const tg = await startTestGateway({
    influxUrl: o.influx.url,
    influxApi: 'v1',
    influxDb: o.db,
    influxTimeoutMs: o.influxTimeoutMs,
    logLevel: 'info'
  })
  let fleet: Fleet | null = null
  let sampler: NodeJS.Timeout | null = null
  try {
    const units = await registerUnits(tg.dataDir, 'outage', o.units)
    fleet = new Fleet({ url: tg.mqttUrl, units, frameMs: o.frameMs, clean: false, qos: 1, log })
    await fleet.start()
    const t0 = Date.now()
    const lagSeries: Array<[number, number]> = []
    let lag = 0
    sampler = setInterval(() => {
      scrape(tg.httpUrl).then(text => {
        lag = metricValue(text, 'ambulink_spool_lag_seconds') ?? lag
        lagSeries.push([Math.round((Date.now() - t0) / 100) / 10, Math.round(lag * 100) / 100])
      }, () => {})
    }, 250)
    const f = fleet
    const phase = async (fault: 'kill' | 'sigstop', durationMs: number): Promise<PhaseFigures> => {
      const acked0 = f.stats().framesAcked
      const generated0 = f.stats().framesGenerated
      const from = lagSeries.length
      if (fault === 'kill') o.influx.kill('SIGKILL')
      else o.influx.kill('SIGSTOP')
      log(`InfluxDB ${fault} for ${durationMs} ms`)
      await sleep(durationMs)
      const framesAckedDuringFault = f.stats().framesAcked - acked0
      const framesGeneratedDuringFault = f.stats().framesGenerated - generated0
      if (fault === 'kill') await o.influx.restart()
      else o.influx.kill('SIGCONT')
      const recovered = Date.now()
      // Wait for the lag to fall back (bounded): the sink backs off up to 15 s between retries.
      await sleep(600)
      const deadline = recovered + 90_000
      while (lag >= 1 && Date.now() < deadline) await sleep(100)
      const drainMs = Date.now() - recovered
      const drained = lag < 1
      const peak = Math.max(0, ...lagSeries.slice(from).map(s => s[1]))
      await sleep(o.calmMs)
      return { fault, durationMs, peakLagSeconds: peak, drainMs, drained, lagAfterSeconds: lag, framesAckedDuringFault, framesGeneratedDuringFault }
    }
    await sleep(o.calmMs)
    const phases: PhaseFigures[] = []
    if (o.outageMs > 0) phases.push(await phase('kill', o.outageMs))
    if (o.hangMs > 0) phases.push(await phase('sigstop', o.hangMs))
    const stats = await fleet.stop({ drain: true, timeoutMs: 30_000 })
    const deadline = Date.now() + 60_000
    while (tg.gw.spool.pendingBytes > 0 && Date.now() < deadline) await sleep(100)
    clearInterval(sampler)
    sampler = null
    const check = await checkStored(o.influx.url, o.db, fleet.unitReports())
    const text = await scrape(tg.httpUrl)
    return {
      phases,
      lagSeries,
      influxRetries: metricValue(text, 'ambulink_influx_write_retries_total') ?? 0,
      timeoutRetries: tg.logs().split('\n').filter(l => l.includes('timed out after') && l.includes('retrying')).length,
      framesGenerated: stats.framesGenerated,
      maxAckLatencyMs: stats.ackLatencyMs.max,
      ...check
    }
  } finally {
    if (sampler !== null) clearInterval(sampler)
    await fleet?.close()
    await tg.close()
  }
}

async function main (): Promise<void> {
  const f = numberFlags(process.argv.slice(2), { units: 8, frameMs: 250, outageMs: 30_000, hangMs: 30_000, influxTimeoutMs: 2000 })
  const influx = await startInfluxDB()
  try {
    const r = await runOutage({ influx, db: 'outage', units: f.units, frameMs: f.frameMs, outageMs: f.outageMs, hangMs: f.hangMs, influxTimeoutMs: f.influxTimeoutMs, calmMs: 3000, log: m => { process.stderr.write(m + '\n') } })
    process.stdout.write(JSON.stringify({ scenario: 'influx-outage', ...r }, null, 2) + '\n')
    process.exitCode = r.lost === 0 && r.extra === 0 ? 0 : 1
  } finally {
    await influx.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
