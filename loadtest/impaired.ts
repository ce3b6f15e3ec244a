/**
 * Bad networks: simulated ambulances stream through ImpairProxy (latency + jitter, bandwidth
 * cap, resets every few seconds like cell handovers, half-open connections) into a gateway
 * writing to a real influxd. Devices use persistent QoS 1 sessions and their store-and-forward
 * queue; resends carry the original timestamps. At the end: zero loss and no extra points in
 * InfluxDB (exact per-unit counts), and the end-to-end delay from device capture to stored,
 * measured by polling InfluxDB for new `vitals` points every `pollMs` (one per unit per second;
 * the delay includes the 250 ms a frame spans before it can be sent, and up to `pollMs` of
 * polling resolution).
 *
 *   node --import tsx loadtest/impaired.ts [--units 6] [--duration-s 120]
 */
import { startTestGateway } from '../testkit/gateway.js'
import { createDatabase, influxQuery, startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { checkStored, numberFlags, percentiles, registerUnits, sleep, type StoreCheck } from '../testkit/fault-harness.js'
import { IMPAIR_DEFAULTS, ImpairProxy, type ImpairOptions, type ImpairStats } from '../testkit/impair-proxy.js'
import { Fleet } from '../simulator/index.js'

export interface ImpairedOptions {
  influx: InfluxServer
  db: string
  units: number
  durationMs: number
  impair?: Partial<Omit<ImpairOptions, 'targetPort'>>
  pollMs?: number
  log?: (msg: string) => void
}

export interface ImpairedResult extends StoreCheck {
  durationMs: number
  impairment: Omit<ImpairOptions, 'targetPort'>
  proxy: ImpairStats
  framesGenerated: number
  framesResent: number
  reconnects: number
  /** Device capture (frame start) → visible in InfluxDB, ms. */
  captureToStoredMs: ReturnType<typeof percentiles>
  /** Publish → PUBACK as the devices saw it, ms. */
  ackLatencyMs: { p50: number, p99: number, max: number }
  drainAfterStopMs: number
}

interface SeriesRow { values?: Array<[number, string]> }

export async function runImpaired (o: ImpairedOptions): Promise<ImpairedResult> {
  const pollMs = o.pollMs ?? 250
  const tg = await startTestGateway({ influxUrl: o.influx.url, influxApi: 'v1', influxDb: o.db, logLevel: 'info' })
  const impairment = { ...IMPAIR_DEFAULTS, ...o.impair }
  const proxy = new ImpairProxy({ ...impairment, targetPort: tg.gw.ports.mqtt! })
  let fleet: Fleet | null = null
  let polling = true
  try {
    await createDatabase(o.influx.url, o.db)
    const port = await proxy.listen()
    const units = await registerUnits(tg.dataDir, 'net', o.units)
    fleet = new Fleet({
      url: `mqtt://127.0.0.1:${port}`,
      units,
      clean: false,
      qos: 1,
      // A half-open link is noticed by the device after 1.5 × keepalive without a PINGRESP.
      keepaliveS: 4,
      reconnectPeriodMs: 500,
      connectTimeoutMs: 5000,
      startTimeoutMs: 60_000,
      drainTimeoutMs: 120_000,
      log: o.log
    })
    await fleet.start()
    const delays: number[] = []
    const seen = new Set<string>()
    const from = Date.now() - 1000
    const poller = (async () => {
      while (polling) {
        await sleep(pollMs)
        const at = Date.now()
        // Per unit and in full each time: a unit that reconnects stores older points after other
        // units' newer ones, and those late points are the ones that matter here.
        const body = await influxQuery(o.influx.url, `SELECT "heart_rate" FROM "vitals" WHERE time > ${from}ms GROUP BY "unit"`, o.db, { epoch: 'ms' }).catch(() => null)
        for (const series of (body?.results?.[0]?.series ?? []) as Array<SeriesRow & { tags?: { unit?: string } }>) {
          for (const [t] of series.values ?? []) {
            const key = `${series.tags?.unit ?? ''}@${t}`
            if (seen.has(key)) continue
            seen.add(key)
            delays.push(at - t)
          }
        }
      }
    })()
    await sleep(o.durationMs)
    const t0 = Date.now()
    const stats = await fleet.stop({ drain: true, timeoutMs: 120_000 })
    while (tg.gw.spool.pendingBytes > 0 && Date.now() - t0 < 120_000) await sleep(100)
    const drainAfterStopMs = Date.now() - t0
    await sleep(pollMs * 2)
    polling = false
    await poller
    const check = await checkStored(o.influx.url, o.db, fleet.unitReports())
    return {
      durationMs: o.durationMs,
      impairment,
      proxy: { ...proxy.stats },
      framesGenerated: stats.framesGenerated,
      framesResent: stats.framesResent,
      reconnects: stats.reconnects,
      captureToStoredMs: percentiles(delays),
      ackLatencyMs: { p50: stats.ackLatencyMs.p50, p99: stats.ackLatencyMs.p99, max: stats.ackLatencyMs.max },
      drainAfterStopMs,
      ...check
    }
  } finally {
    polling = false
    await fleet?.close()
    await proxy.close()
    await tg.close()
  }
}

async function main (): Promise<void> {
  const f = numberFlags(process.argv.slice(2), { units: 6, durationS: 120 })
  const influx = await startInfluxDB()
  try {
    const r = await runImpaired({ influx, db: 'impaired', units: f.units, durationMs: f.durationS * 1000, log: m => { process.stderr.write(m + '\n') } })
    process.stdout.write(JSON.stringify({ scenario: 'impaired-network', ...r, units: r.units.map(u => ({ ...u, ackedSeqRanges: u.ackedSeqRanges.length })) }, null, 2) + '\n')
    process.exitCode = r.lost === 0 && r.extra === 0 ? 0 : 1
  } finally {
    await influx.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
