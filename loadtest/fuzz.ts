/**
 * Fuzzes the decoder (in-process) and the HTTP ingest endpoint (a real gateway) with mutated
 * valid frames, random bytes, huge declared lengths and deep nesting. Every input must come out
 * accepted or rejected with a stable code: any other exception is a crash, an HTTP 5xx or a
 * dropped connection is a failure, a single decode over 1 s is a hang. Memory is measured
 * before and after (after a GC when run with --expose-gc) and must stay flat.
 *
 *   node --expose-gc --import tsx loadtest/fuzz.ts [--inputs 1000000] [--http-inputs 20000] [--seed 1]
 *
 * Prints one JSON object; exit code 1 on any crash, hang or HTTP failure. CI: test/fuzz.test.ts.
 */
import { Agent, request } from 'node:http'
import { FrameDecoder, FrameError } from '../decoders/index.js'
import { startTestGateway } from '../testkit/gateway.js'
import { numberFlags } from '../testkit/fault-harness.js'
import { FuzzInputs, INPUT_KINDS, type InputKind } from './fuzz-inputs.js'

export interface FuzzOptions {
  inputs: number
  httpInputs: number
  seed: number
  /** Stop generating after this long even if `inputs` is not reached, ms. */
  timeLimitMs: number
}

interface KindTally { inputs: number, accepted: number }
interface MemDelta { rssBeforeMiB: number, rssAfterMiB: number, heapBeforeMiB: number, heapAfterMiB: number }

function delta (before: { rss: number, heap: number }, after: { rss: number, heap: number }): MemDelta {
  return { rssBeforeMiB: round1(before.rss / MiB), rssAfterMiB: round1(after.rss / MiB), heapBeforeMiB: round1(before.heap / MiB), heapAfterMiB: round1(after.heap / MiB) }
}

export interface FuzzResult {
  seed: number
  decoder: {
    inputs: number
    accepted: number
    rejected: Record<string, number>
    byKind: Record<InputKind, KindTally>
    crashes: number
    crashSamples: Array<{ index: number, kind: InputKind, error: string }>
    maxDecodeMs: number
    inputsPerSec: number
  }
  http: { sent: number, byStatus: Record<string, number>, byCode: Record<string, number>, failures: number, failureSamples: string[] }
  /** Decoder phase alone, then the HTTP phase (from after its first 10% of requests, gateway warm). */
  memory: { decoder: MemDelta, http: MemDelta, gc: boolean }
  wallMs: number
}

const UNIT = 'fuzz-01'
const MiB = 1024 * 1024

function memory (): { rss: number, heap: number } {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  const m = process.memoryUsage()
  return { rss: m.rss, heap: m.heapUsed }
}

function bump (o: Record<string, number>, k: string): void { o[k] = (o[k] ?? 0) + 1 }

function fuzzDecoder (o: FuzzOptions, nowMs: number, result: FuzzResult): void {
  const decoder = new FrameDecoder()
  const gen = new FuzzInputs(o.seed, UNIT, nowMs)
  const d = result.decoder
  const deadline = Date.now() + o.timeLimitMs
  const t0 = performance.now()
  for (let i = 0; i < o.inputs; i++) {
    if ((i & 1023) === 0 && Date.now() > deadline) break
    const { kind, bytes } = gen.next()
    const k = d.byKind[kind]
    k.inputs++
    d.inputs++
    const s = performance.now()
    try {
      decoder.decode(bytes, UNIT, nowMs)
      d.accepted++
      k.accepted++
    } catch (err) {
      if (err instanceof FrameError) bump(d.rejected, err.code)
      else {
        d.crashes++
        if (d.crashSamples.length < 10) d.crashSamples.push({ index: i, kind, error: String((err as Error).stack ?? err).slice(0, 500) })
      }
    }
    const ms = performance.now() - s
    if (ms > d.maxDecodeMs) d.maxDecodeMs = Math.round(ms * 100) / 100
  }
  d.inputsPerSec = Math.round(d.inputs / ((performance.now() - t0) / 1000))
}

async function fuzzHttp (o: FuzzOptions, result: FuzzResult): Promise<void> {
  const tg = await startTestGateway({ logLevel: 'warn' })
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  try {
    const token = await tg.addDevice(UNIT)
    const gen = new FuzzInputs(o.seed + 1, UNIT, Date.now())
    const h = result.http
    const url = new URL(`${tg.httpUrl}/api/v1/units/${UNIT}/telemetry`)
    const post = (body: Buffer): Promise<{ status: number, text: string }> => new Promise((resolve, reject) => {
      const r = request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-protobuf', 'content-length': body.length }, timeout: 10_000 }, res => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => { if (text.length < 2000) text += c })
        res.on('end', () => { resolve({ status: res.statusCode ?? 0, text }) })
        res.on('error', reject)
      })
      r.on('timeout', () => { r.destroy(new Error('request timed out (hang)')) })
      r.on('error', reject)
      r.end(body)
    })
    let next = 0
    let warm: { rss: number, heap: number } | null = null
    const worker = async (): Promise<void> => {
      while (next < o.httpInputs) {
        next++
        if (warm === null && next >= o.httpInputs / 10) warm = memory()
        const { bytes } = gen.next()
        h.sent++
        try {
          const { status, text } = await post(bytes)
          bump(h.byStatus, String(status))
          let code = 'accepted'
          try { code = (JSON.parse(text) as { code?: string }).code ?? 'accepted' } catch { code = 'unparsable-answer' }
          bump(h.byCode, code)
          if (status >= 500 || code === 'unparsable-answer') {
            h.failures++
            if (h.failureSamples.length < 10) h.failureSamples.push(`${status} ${text.slice(0, 200)}`)
          }
        } catch (err) {
          h.failures++
          if (h.failureSamples.length < 10) h.failureSamples.push((err as Error).message)
        }
      }
    }
    await Promise.all(Array.from({ length: 8 }, worker))
    result.memory.http = delta(warm ?? memory(), memory())
    const health = await fetch(`${tg.httpUrl}/healthz`)
    if (health.status !== 200) {
      h.failures++
      h.failureSamples.push(`/healthz answered ${health.status} after fuzzing`)
    }
  } finally {
    agent.destroy()
    await tg.close()
  }
}

export async function runFuzz (o: FuzzOptions): Promise<FuzzResult> {
  const t0 = Date.now()
  const byKind = Object.fromEntries(INPUT_KINDS.map(k => [k, { inputs: 0, accepted: 0 }])) as Record<InputKind, KindTally>
  const result: FuzzResult = {
    seed: o.seed,
    decoder: { inputs: 0, accepted: 0, rejected: {}, byKind, crashes: 0, crashSamples: [], maxDecodeMs: 0, inputsPerSec: 0 },
    http: { sent: 0, byStatus: {}, byCode: {}, failures: 0, failureSamples: [] },
    memory: { decoder: delta({ rss: 0, heap: 0 }, { rss: 0, heap: 0 }), http: delta({ rss: 0, heap: 0 }, { rss: 0, heap: 0 }), gc: typeof (globalThis as { gc?: unknown }).gc === 'function' },
    wallMs: 0
  }
  // Warm up (JIT, protobufjs' generated decoders) before the "before" measurement.
  fuzzDecoder({ ...o, inputs: Math.min(5000, o.inputs) }, Date.now(), { ...result, decoder: { ...result.decoder, rejected: {}, byKind: structuredClone(byKind), crashSamples: [] } })
  const before = memory()
  fuzzDecoder(o, Date.now(), result)
  result.memory.decoder = delta(before, memory())
  if (o.httpInputs > 0) await fuzzHttp(o, result)
  result.wallMs = Date.now() - t0
  return result
}

function round1 (x: number): number { return Math.round(x * 10) / 10 }

async function main (): Promise<void> {
  const f = numberFlags(process.argv.slice(2), { inputs: 1_000_000, httpInputs: 20_000, seed: 1, timeLimitMs: 20 * 60_000 })
  const r = await runFuzz(f)
  process.stdout.write(JSON.stringify({ scenario: 'fuzz', ...r }, null, 2) + '\n')
  process.exitCode = r.decoder.crashes === 0 && r.http.failures === 0 && r.decoder.maxDecodeMs < 1000 ? 0 : 1
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
