/**
 * The references every gateway figure is divided by, measured on the same machine in the same
 * run:
 *
 * - rawInfluxIngest(): what InfluxDB itself can ingest of the same line protocol, posted
 *   straight to /write in batches of `batchLines` lines, gzip (level 1, as the sink), with
 *   `concurrency` requests in flight. Lines are produced and compressed before the clock starts
 *   (the gateway's frames, converted by the gateway's own frameToLines), so only InfluxDB is
 *   measured. Rate = ECG points acknowledged (HTTP 204) per second.
 * - mosquittoReference(): Debian's Mosquitto on a free port with `max_inflight_messages 0` and
 *   `max_queued_messages` raised so it never drops, driven by the same saturating generator
 *   (bench-saturate.ts) with the same frames, QoS 1.
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { gzip as gzipCb, constants as zc } from 'node:zlib'
import { FrameDecoder } from '../decoders/index.js'
import { LineBuffer } from '../streams/storage/line-buffer.js'
import { writeFrameLines } from '../streams/storage/line-protocol.js'
import { StampedFrames } from './bench-frames.js'
import { processCpuSeconds } from './bench-cpu.js'
import { saturate, type SaturateResult } from './bench-saturate.js'
import { createDatabase } from '../testkit/influxdb.js'
import { startMosquitto } from '../testkit/mosquitto.js'
import { spawnManaged, waitFor } from '../testkit/proc.js'

const gzip = promisify(gzipCb)

export interface RawIngestOptions {
  influxUrl: string
  /** For InfluxDB's CPU per point. */
  influxPid?: number
  db: string
  /**
   * v1 (default): `/write?db=` after CREATE DATABASE; v2: `/api/v2/write?org=&bucket=<db>`
   * (VictoriaMetrics, which has no CREATE DATABASE).
   */
  api?: 'v1' | 'v2'
  /** Points to prepare (the run stops when they are written or at maxSeconds). */
  points: number
  batchLines: number
  concurrency: number
  maxSeconds: number
  /** Unit id prefix (fresh series, never mixed with the gateway's). */
  prefix: string
  units: number
  progress: (line: string) => void
}

export interface RawIngestResult {
  batch_lines: number
  concurrency: number
  points: number
  ecg_points: number
  seconds: number
  points_per_s: number
  ecg_points_per_s: number
  /** InfluxDB's CPU per point written, µs (null without its pid). */
  influx_cpu_us_per_point: number | null
}

export interface Batch { body: Buffer, points: number, ecgPoints: number }

/** Builds gzipped batches of line protocol from saturation-style frames. */
export async function prepareBatches (o: Pick<RawIngestOptions, 'units' | 'prefix' | 'points' | 'batchLines'>): Promise<Batch[]> {
  const decoder = new FrameDecoder()
  const sources = Array.from({ length: o.units }, (_, i) => new StampedFrames(`${o.prefix}-${String(i + 1).padStart(4, '0')}`, i, 2 * 3_600_000))
  const out = new LineBuffer(8 * 1024 * 1024)
  const batches: Batch[] = []
  let lines = 0
  let ecg = 0
  let total = 0
  let u = 0
  const flush = async (): Promise<void> => {
    batches.push({ body: await gzip(out.buf.subarray(0, out.length), { level: zc.Z_BEST_SPEED }), points: lines, ecgPoints: ecg })
    out.reset()
    lines = 0
    ecg = 0
  }
  while (total < o.points) {
    const src = sources[u++ % sources.length]!
    const { bytes } = src.next()
    const counts = writeFrameLines(decoder.decode(bytes, src.unitId), out)
    lines += counts.points
    ecg += counts.ecgPoints
    total += counts.points
    if (lines >= o.batchLines) await flush()
  }
  if (lines > 0) await flush()
  return batches
}

export async function rawInfluxIngest (o: RawIngestOptions): Promise<RawIngestResult> {
  if (o.api !== 'v2') await createDatabase(o.influxUrl, o.db)
  o.progress(`influx raw: preparing ${o.points} points in batches of ${o.batchLines} lines`)
  const batches = await prepareBatches(o)
  const url = o.api === 'v2' ? `${o.influxUrl}/api/v2/write?org=bench&bucket=${encodeURIComponent(o.db)}&precision=us` : `${o.influxUrl}/write?db=${encodeURIComponent(o.db)}&precision=u`
  let next = 0
  let points = 0
  let ecgPoints = 0
  const cpu0 = o.influxPid !== undefined ? await processCpuSeconds(o.influxPid) : 0
  const t0 = performance.now()
  const deadline = t0 + o.maxSeconds * 1000
  let lastLog = t0
  const worker = async (): Promise<void> => {
    while (next < batches.length && performance.now() < deadline) {
      const b = batches[next++]!
      const res = await fetch(url, { method: 'POST', body: new Uint8Array(b.body.buffer as ArrayBuffer, b.body.byteOffset, b.body.length), headers: { 'content-encoding': 'gzip', 'content-type': 'text/plain; charset=utf-8' } })
      if (res.status !== 204) throw new Error(`${o.api === 'v2' ? '/api/v2/write' : '/write'} HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`)
      await res.arrayBuffer()
      points += b.points
      ecgPoints += b.ecgPoints
      const now = performance.now()
      if (now - lastLog > 1000) {
        lastLog = now
        o.progress(`influx raw: ${((now - t0) / 1000).toFixed(0)} s, ${Math.round(ecgPoints * 1000 / (now - t0))} ECG points/s`)
      }
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, worker))
  const seconds = (performance.now() - t0) / 1000
  const influxCpu = o.influxPid !== undefined ? await processCpuSeconds(o.influxPid) - cpu0 : null
  return {
    batch_lines: o.batchLines,
    concurrency: o.concurrency,
    points,
    ecg_points: ecgPoints,
    seconds: Math.round(seconds * 100) / 100,
    points_per_s: Math.round(points / seconds),
    ecg_points_per_s: Math.round(ecgPoints / seconds),
    influx_cpu_us_per_point: influxCpu === null ? null : Math.round(influxCpu * 1e8 / Math.max(1, points)) / 100
  }
}

export interface MosquittoReferenceOptions {
  units: readonly string[]
  maxFramesPerUnit?: number
  generator?: 'raw' | 'mqttjs'
  window: number
  durationMs: number
  warmupMs: number
  progress: (line: string) => void
}

export async function mosquittoReference (o: MosquittoReferenceOptions): Promise<SaturateResult & { mosquitto_version: string }> {
  const broker = await startMosquitto({
    // Unlimited in-flight and a deep queue: Mosquitto must not be the one dropping (QoS 1).
    extraConfig: ['max_inflight_messages 0', 'max_queued_messages 1000000']
  })
  try {
    const r = await saturateReference(o, broker.url, 'mosquitto', broker.pid)
    return { ...r, mosquitto_version: await mosquittoVersion() }
  } finally {
    await broker.stop()
  }
}

/** The same saturating generator and frames as the gateway's run, against a reference broker at `url` (CPU of `pid`). */
async function saturateReference (o: MosquittoReferenceOptions, url: string, label: string, pid: number): Promise<SaturateResult> {
  return await saturate({
    urls: [url],
    units: o.units,
    token: 'unused',
    window: o.window,
    durationMs: o.durationMs,
    warmupMs: o.warmupMs,
    backdateMs: 2 * 3_600_000,
    maxFramesPerUnit: o.maxFramesPerUnit,
    generator: o.generator,
    label,
    progress: o.progress,
    cpuPids: [pid]
  })
}

async function mosquittoVersion (): Promise<string> {
  const { runCommand, resolveBinary } = await import('../testkit/proc.js')
  const r = await runCommand(resolveBinary('mosquitto'), ['-h'], { timeoutMs: 5000 })
  return /mosquitto version (\S+)/i.exec(r.stdout + r.stderr)?.[1] ?? 'unknown'
}

const AEDES_BARE = fileURLToPath(new URL('./aedes-bare.ts', import.meta.url))
const ROOT = resolve(import.meta.dirname, '..')

export async function aedesReference (o: MosquittoReferenceOptions): Promise<SaturateResult> {
  const proc = spawnManaged(process.execPath, ['--import', 'tsx', AEDES_BARE], { cwd: ROOT })
  try {
    const port = await waitFor(async () => {
      const m = /\{"listening":(\d+)\}/.exec(proc.output())
      return m === null ? undefined : Number(m[1])
    }, { timeoutMs: 20_000, intervalMs: 50, what: 'bare aedes to listen', proc })
    return await saturateReference(o, `mqtt://127.0.0.1:${port}`, 'aedes', proc.pid)
  } finally {
    await proc.stop(2000)
  }
}
