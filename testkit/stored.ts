/**
 * What reached InfluxDB, measured from outside the gateway:
 *
 * - countLost(): frames acknowledged to devices (PUBACK) but missing from InfluxDB after the
 *   drain. Exact, with InfluxQL: every 12-lead frame writes one `ecg` point per sample instant
 *   (125 per 250 ms frame) at distinct timestamps, so per unit the count of `ecg` points in the
 *   device-time window of its acknowledged frames must be 125 × frames. Where it is not (or the
 *   acknowledged seqs are not one range), the unit is counted frame by frame with
 *   GROUP BY time(250ms) aligned on its frames.
 * - waitForDrain(): the gateways' spools are empty (every acknowledged byte is in InfluxDB).
 * - StoredLatencyProbe: publish → stored. See its comment.
 */
import { influxQuery, type InfluxJson } from './influxdb.js'

/** One unit's acknowledged frames (Fleet.unitReports(), the alert probes, saturation runs). */
export interface BenchUnitReport {
  unitId: string
  /** Device time of frame 1's start, Unix ms. */
  startMs: number
  frameMs: number
  acked: number
  ackedSeqRanges: Array<[number, number]>
  ecgPointsAcked: number
}

export interface LostCount {
  /** Acknowledged frames missing from InfluxDB. */
  lost: number
  /** Acknowledged frames checked. */
  checked: number
  /** ECG points found in the acknowledged frames' windows. */
  ecgPointsStored: number
  /** Units with at least one missing frame (first few). */
  unitsWithLoss: string[]
}

const PARALLEL_QUERIES = 6

export async function countLost (influxUrl: string, db: string, reports: readonly BenchUnitReport[]): Promise<LostCount> {
  const out: LostCount = { lost: 0, checked: 0, ecgPointsStored: 0, unitsWithLoss: [] }
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < reports.length) {
      const r = reports[next++]!
      if (r.acked === 0) continue
      out.checked += r.acked
      const perFrame = Math.round(r.ecgPointsAcked / r.acked)
      const first = r.ackedSeqRanges[0]![0]
      const last = r.ackedSeqRanges[r.ackedSeqRanges.length - 1]![1]
      const from = r.startMs + (first - 1) * r.frameMs
      const to = r.startMs + last * r.frameMs
      const stored = await countIn(influxUrl, db, r.unitId, from, to)
      out.ecgPointsStored += stored
      if (r.ackedSeqRanges.length === 1 && stored === r.acked * perFrame) continue
      const missing = await missingFrames(influxUrl, db, r, perFrame)
      if (missing > 0) {
        out.lost += missing
        if (out.unitsWithLoss.length < 10) out.unitsWithLoss.push(`${r.unitId} (${missing})`)
      }
    }
  }
  await Promise.all(Array.from({ length: PARALLEL_QUERIES }, worker))
  return out
}

async function countIn (url: string, db: string, unit: string, fromMs: number, toMs: number): Promise<number> {
  const body: InfluxJson = await influxQuery(url, `SELECT COUNT(ii) FROM ecg WHERE unit = '${unit}' AND time >= ${fromMs}ms AND time < ${toMs}ms`, db)
  const v: unknown = body.results?.[0]?.series?.[0]?.values?.[0]?.[1]
  return typeof v === 'number' ? v : 0
}

/** Acknowledged frames of one unit with fewer than `perFrame` ECG points stored. */
async function missingFrames (url: string, db: string, r: BenchUnitReport, perFrame: number): Promise<number> {
  const first = r.ackedSeqRanges[0]![0]
  const last = r.ackedSeqRanges[r.ackedSeqRanges.length - 1]![1]
  const from = r.startMs + (first - 1) * r.frameMs
  const to = r.startMs + last * r.frameMs
  const offset = ((r.startMs % r.frameMs) + r.frameMs) % r.frameMs
  const body: InfluxJson = await influxQuery(url,
    `SELECT COUNT(ii) FROM ecg WHERE unit = '${r.unitId}' AND time >= ${from}ms AND time < ${to}ms GROUP BY time(${r.frameMs}ms, ${offset}ms)`, db, { epoch: 'ms' })
  const rows: unknown[][] = body.results?.[0]?.series?.[0]?.values ?? []
  const stored = new Map<number, number>()
  for (const row of rows) stored.set(Math.round(((row[0] as number) - r.startMs) / r.frameMs) + 1, typeof row[1] === 'number' ? row[1] : 0)
  let missing = 0
  for (const [a, b] of r.ackedSeqRanges) {
    for (let seq = a; seq <= b; seq++) if ((stored.get(seq) ?? 0) < perFrame) missing++
  }
  return missing
}

/** Reads a gateway's /metrics (loopback: no token). */
export async function readMetrics (httpUrl: string): Promise<Map<string, number>> {
  const res = await fetch(`${httpUrl}/metrics`, { signal: AbortSignal.timeout(5000) })
  const text = await res.text()
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const sp = line.lastIndexOf(' ')
    const name = line.slice(0, sp)
    // Labelled series are summed under their bare name as well.
    const bare = name.includes('{') ? name.slice(0, name.indexOf('{')) : name
    const v = Number(line.slice(sp + 1))
    out.set(name, v)
    if (bare !== name) out.set(bare, (out.get(bare) ?? 0) + v)
  }
  return out
}

/**
 * Waits until every gateway's spool is drained into InfluxDB (spool pending bytes 0).
 * Resolves with the time it took, or rejects after `timeoutMs`.
 */
export async function waitForDrain (httpUrls: readonly string[], timeoutMs: number, progress?: (line: string) => void): Promise<number> {
  const t0 = Date.now()
  let lastLog = 0
  for (;;) {
    let pending = 0
    for (const u of httpUrls) pending += (await readMetrics(u)).get('ambulink_spool_pending_bytes') ?? 0
    if (pending === 0) return Date.now() - t0
    if (Date.now() - t0 > timeoutMs) throw new Error(`spool not drained after ${timeoutMs} ms: ${pending} bytes pending`)
    if (progress !== undefined && Date.now() - lastLog > 2000) {
      lastLog = Date.now()
      progress(`draining: ${(pending / 1e6).toFixed(1)} MB still to write to InfluxDB`)
    }
    // Not faster: each scrape costs the gateway prom-client's default collectors.
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/**
 * Publish → stored latency, by polling InfluxDB: every `pollMs` one query asks for the latest
 * `ecg` timestamp of a few sampled units (LAST(ii) … GROUP BY unit, only over points newer than
 * what was already seen, so each poll reads a few hundred points). Frame k of a unit counts as
 * stored at the first poll that sees its last sample; its publish time is the moment the
 * simulated device completes it and hands it to MQTT (device time start + k·250 ms; real-time
 * fleets send a frame as soon as its 250 ms are captured). The sink writes a unit's frames in
 * order, so one timestamp per unit covers all its earlier frames.
 *
 * Resolution: the poll interval (the point became queryable at most `pollMs` before it was
 * seen); the poll time taken is the midpoint of the query's request and response.
 */
export class StoredLatencyProbe {
  private readonly state: Array<{ unit: string, startMs: number, nextFrame: number, lastUs: number }>
  private readonly samples: number[] = []
  /** Wall time of each sample, to compare the start of a run with its end (stable lag). */
  private readonly sampleAt: number[] = []
  private timer: NodeJS.Timeout | null = null
  private wake: (() => void) | null = null
  private running: Promise<void> | null = null
  private stopped = false
  private readonly regex: string

  constructor (
    private readonly influxUrl: string,
    private readonly db: string,
    units: ReadonlyArray<{ unitId: string, startMs: number }>,
    private readonly frameMs = 250,
    private readonly lastSampleOffsetUs = 248_000,
    private readonly pollMs = 25
  ) {
    this.state = units.map(u => ({ unit: u.unitId, startMs: u.startMs, nextFrame: 1, lastUs: u.startMs * 1000 - 1 }))
    this.regex = `/^(${units.map(u => u.unitId.replace(/[.]/g, '\\.')).join('|')})$/`
  }

  start (): void {
    const loop = async (): Promise<void> => {
      while (!this.stopped) {
        const t0 = Date.now()
        try { await this.poll() } catch { /* InfluxDB busy: the next poll catches up */ }
        const wait = this.pollMs - (Date.now() - t0)
        if (wait > 0 && !this.stopped) {
          await new Promise<void>(resolve => {
            this.wake = resolve
            this.timer = setTimeout(resolve, wait)
          })
        }
      }
    }
    this.running = loop()
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.wake?.()
    await this.running
  }

  private async poll (): Promise<void> {
    const since = Math.min(...this.state.map(s => s.lastUs))
    const sent = Date.now()
    const body: InfluxJson = await influxQuery(this.influxUrl, `SELECT LAST(ii) FROM ecg WHERE unit =~ ${this.regex} AND time > ${since}u GROUP BY unit`, this.db, { epoch: 'u' })
    const at = (sent + Date.now()) / 2
    for (const series of (body.results?.[0]?.series ?? []) as Array<{ tags?: { unit?: string }, values?: unknown[][] }>) {
      const s = this.state.find(x => x.unit === series.tags?.unit)
      const us = series.values?.[0]?.[0]
      if (s === undefined || typeof us !== 'number' || us <= s.lastUs) continue
      s.lastUs = us
      for (;;) {
        const lastSampleUs = (s.startMs + (s.nextFrame - 1) * this.frameMs) * 1000 + this.lastSampleOffsetUs
        if (lastSampleUs > us) break
        this.samples.push(at - (s.startMs + s.nextFrame * this.frameMs))
        this.sampleAt.push(at)
        s.nextFrame++
      }
    }
  }

  /** Latencies in ms, of frames seen stored from `sinceMs` up to `untilMs` (wall clock). */
  summary (sinceMs = 0, untilMs = Infinity): { p50: number, p99: number, max: number, count: number } {
    return percentiles(this.samples.filter((_x, i) => this.sampleAt[i]! >= sinceMs && this.sampleAt[i]! <= untilMs))
  }

  /**
   * Latencies of the first and the last third of the run (by wall time), up to `untilMs`:
   * is lag growing?
   */
  thirds (untilMs = Infinity): { first: { p50: number, p99: number }, last: { p50: number, p99: number } } {
    const at = this.sampleAt.filter(t => t <= untilMs)
    if (at.length === 0) return { first: { p50: 0, p99: 0 }, last: { p50: 0, p99: 0 } }
    const t0 = at[0]!
    const span = at[at.length - 1]! - t0
    const pick = (from: number, to: number): number[] => this.samples.filter((_x, i) => this.sampleAt[i]! - t0 >= from * span && this.sampleAt[i]! - t0 <= to * span && this.sampleAt[i]! <= untilMs)
    const f = percentiles(pick(0, 1 / 3))
    const l = percentiles(pick(2 / 3, 1))
    return { first: { p50: f.p50, p99: f.p99 }, last: { p50: l.p50, p99: l.p99 } }
  }
}

export function percentiles (xs: readonly number[]): { p50: number, p99: number, max: number, count: number } {
  if (xs.length === 0) return { p50: 0, p99: 0, max: 0, count: 0 }
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number): number => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 10) / 10
  return { p50: at(0.5), p99: at(0.99), max: Math.round(s[s.length - 1]! * 10) / 10, count: s.length }
}
