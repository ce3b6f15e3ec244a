/**
 * Shared by the fault scripts (crash.ts, outage.ts, overload.ts, impaired.ts) and their CI tests:
 * register units, wait for the gateway's spool to drain, and compare what InfluxDB holds per
 * unit with what the devices were acknowledged. The comparison is exact: `lost` is acked points
 * missing from InfluxDB, `extra` is points InfluxDB holds beyond the acked ones (a replay that
 * did not write identical points would show up here, as would a frame stored without a PUBACK
 * that the device then failed to resend).
 */
import { addDevice } from '../gateway/credentials.js'
import { influxCount } from './influxdb.js'
import type { UnitCredentials, UnitReport } from '../simulator/index.js'

export async function registerUnits (dataDir: string, prefix: string, n: number): Promise<UnitCredentials[]> {
  const out: UnitCredentials[] = []
  for (let i = 1; i <= n; i++) {
    const unitId = `${prefix}-${String(i).padStart(2, '0')}`
    out.push({ unitId, token: await addDevice(dataDir, unitId) })
  }
  return out
}

export interface UnitCheck {
  unit: string
  framesAcked: number
  ackedSeqRanges: Array<[number, number]>
  acked: { ecg: number, vitals: number, position: number }
  stored: { ecg: number, vitals: number, position: number }
  lost: number
  extra: number
}

export interface StoreCheck {
  units: UnitCheck[]
  framesAcked: number
  pointsAcked: number
  pointsStored: number
  lost: number
  extra: number
}

/** Counts per unit in InfluxDB (v1 /query) against the fleet's acknowledged totals. */
export async function checkStored (influxUrl: string, db: string, reports: readonly UnitReport[]): Promise<StoreCheck> {
  const units: UnitCheck[] = []
  for (const r of reports) {
    const where = `"unit" = '${r.unitId}'`
    // Every ECG point carries all leads (12 or lead II only): count the one always present.
    const stored = {
      ecg: await influxCount(influxUrl, db, 'ecg', 'ii', where),
      vitals: await influxCount(influxUrl, db, 'vitals', 'heart_rate', where),
      position: await influxCount(influxUrl, db, 'position', 'latitude', where)
    }
    const acked = { ecg: r.ecgPointsAcked, vitals: r.vitalsPointsAcked, position: r.positionsAcked }
    let lost = 0
    let extra = 0
    for (const k of ['ecg', 'vitals', 'position'] as const) {
      lost += Math.max(0, acked[k] - stored[k])
      extra += Math.max(0, stored[k] - acked[k])
    }
    units.push({ unit: r.unitId, framesAcked: r.acked, ackedSeqRanges: r.ackedSeqRanges, acked, stored, lost, extra })
  }
  const sum = (f: (u: UnitCheck) => number): number => units.reduce((a, u) => a + f(u), 0)
  return {
    units,
    framesAcked: sum(u => u.framesAcked),
    pointsAcked: sum(u => u.acked.ecg + u.acked.vitals + u.acked.position),
    pointsStored: sum(u => u.stored.ecg + u.stored.vitals + u.stored.position),
    lost: sum(u => u.lost),
    extra: sum(u => u.extra)
  }
}

/** Reads one sample from Prometheus text (the first series whose labels contain `labels`). */
export function metricValue (text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (labels === '' ? !(rest.startsWith(' ') || rest.startsWith('{')) : !rest.includes(labels)) continue
    const v = Number(line.slice(line.lastIndexOf(' ') + 1))
    if (Number.isFinite(v)) return v
  }
  return undefined
}

export async function scrape (httpUrl: string): Promise<string> {
  const res = await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(15_000) })
  return await res.text()
}

/** Polls /metrics until the spool holds nothing InfluxDB has not acknowledged. */
export async function waitSpoolDrained (httpUrl: string, timeoutMs: number, log?: (msg: string) => void): Promise<number> {
  const t0 = Date.now()
  let logged = t0
  for (;;) {
    const pending = metricValue(await scrape(httpUrl).catch(() => ''), 'ambulink_spool_pending_bytes')
    if (log !== undefined && Date.now() - logged > 10_000) {
      logged = Date.now()
      log(`spool pending ${String(pending)} bytes after ${Math.round((logged - t0) / 1000)} s`)
    }
    if (pending === 0) return Date.now() - t0
    if (Date.now() - t0 > timeoutMs) throw new Error(`spool not drained after ${timeoutMs} ms (pending ${String(pending)} bytes)`)
    await sleep(200)
  }
}

export function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

export function percentiles (values: readonly number[]): { count: number, p50: number, p90: number, p99: number, max: number } {
  if (values.length === 0) return { count: 0, p50: 0, p90: 0, p99: 0, max: 0 }
  const s = [...values].sort((a, b) => a - b)
  const at = (q: number): number => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]!)
  return { count: s.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: Math.round(s[s.length - 1]!) }
}

/** Parses `--name value` flags into numbers (the scripts' only options). */
export function numberFlags<T extends Record<string, number>> (argv: readonly string[], defaults: T): T {
  const out: Record<string, number> = { ...defaults }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (!a.startsWith('--')) continue
    const key = a.slice(2).replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())
    if (!(key in defaults)) throw new Error(`unknown option ${a}; known: ${Object.keys(defaults).map(k => '--' + k).join(' ')}`)
    const v = Number(argv[++i])
    if (!Number.isFinite(v)) throw new Error(`${a} needs a number`)
    out[key] = v
  }
  return out as T
}
