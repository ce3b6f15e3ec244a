/**
 * Micro-benchmark of the gateway's per-frame CPU work (CPU time), without I/O: protobuf decode + validation,
 * the spool's frame record (point count, copy + crc32: what ingest does since the compact spool),
 * frame → line protocol (what the drain does now, and ingest did before). These are the steps every
 * PUBACK waits for besides the fsync, so their sum bounds frames/s per core. Prints JSON; used
 * for the before/after numbers of hot-path changes (the README (Scale-out), report of issue 6).
 *
 *   npx tsx loadtest/bench-ingest.ts [seconds per step, default 2]
 */
import { crc32 } from 'node:zlib'
import { FrameDecoder, type Frame } from '../decoders/index.js'
import { LineBuffer } from '../streams/storage/line-buffer.js'
import { frameToLines, writeFrameLines } from '../streams/storage/line-protocol.js'
import { countFrameLines } from '../streams/storage/line-protocol.js'
import { frameRecord } from '../streams/storage/frame-record.js'
import { SPOOL_RECORD_HEADER } from '../streams/storage/spool.js'
import { UnitFrameSource } from '../simulator/frame-source.js'
import { PATIENT_PROFILES } from '../simulator/vitals.js'

interface StepResult { step: string, framesPerSec: number, usPerFrame: number }

/** Real simulator frames: 12 leads × 125 samples, numerics and position once a second. */
function makeFrames (count: number): Buffer[] {
  const startMs = Date.now() - 3_600_000
  const sources = PATIENT_PROFILES.map((profile, i) => new UnitFrameSource({ unitId: `bench-${i}`, startMs, profile, seed: i + 1 }))
  const out: Buffer[] = []
  for (let i = 0; out.length < count; i++) out.push(sources[i % sources.length]!.nextFrame().bytes)
  return out
}

/** CPU time, not wall time: on a shared machine the neighbours move the latter far more. */
function time (step: string, seconds: number, fn: (i: number) => void): StepResult {
  for (let i = 0; i < 500; i++) fn(i) // warm-up: let the JIT settle
  let n = 0
  const c0 = process.cpuUsage()
  const end = performance.now() + seconds * 1000
  while (performance.now() < end) {
    for (let k = 0; k < 50; k++) fn(n++)
  }
  const c = process.cpuUsage(c0)
  const s = (c.user + c.system) / 1e6
  return { step, framesPerSec: Math.round(n / s), usPerFrame: Math.round(s * 1e7 / n) / 10 }
}

export function runIngestBench (seconds: number): { benchmark: string, node: string, frameBytes: number, linesBytes: number, steps: StepResult[] } {
  const frames = makeFrames(256)
  const decoder = new FrameDecoder()
  const now = Date.now()
  const decoded: Frame[] = frames.map((b, i) => decoder.decode(b, `bench-${i % PATIENT_PROFILES.length}`, now))
  const texts = decoded.map(f => frameToLines(f).text)
  const bodies = texts.map(t => Buffer.from(t))
  const units = frames.map((_b, i) => `bench-${i % PATIENT_PROFILES.length}`)
  const out = new LineBuffer(64 * 1024, SPOOL_RECORD_HEADER)
  let sink = 0
  const steps = [
    time('decode+validate', seconds, i => { sink += decoder.decode(frames[i & 255]!, units[i & 255]!, now).waveforms.length }),
    time('frameToLines (text, for tests and tools)', seconds, i => { sink += frameToLines(decoded[i & 255]!).points }),
    time('frame record: countFrameLines + frameRecord + crc32 (ingest, compact spool)', seconds, i => {
      sink += countFrameLines(decoded[i & 255]!).points
      const rec = frameRecord(units[i & 255]!, frames[i & 255]!)
      sink += crc32(rec.subarray(8))
    }),
    time('whole ingest path (decode → frame record + crc32)', seconds, i => {
      const f = decoder.decode(frames[i & 255]!, units[i & 255]!, now)
      sink += countFrameLines(f).points
      sink += crc32(frameRecord(units[i & 255]!, frames[i & 255]!).subarray(8))
    }),
    time('writeFrameLines (into the record buffer: the drain now, ingest before)', seconds, i => {
      out.reset()
      sink += writeFrameLines(decoded[i & 255]!, out).points
    }),
    time('record copy (take) + crc32', seconds, i => {
      out.reset()
      out.bytes(bodies[i & 255]!)
      const rec = out.take()
      sink += crc32(rec.subarray(8))
    }),
    time('crc32 only', seconds, i => { sink += crc32(bodies[i & 255]!) }),
    time('whole path before the compact spool (decode → lines → record + crc32)', seconds, i => {
      const f = decoder.decode(frames[i & 255]!, units[i & 255]!, now)
      out.reset()
      writeFrameLines(f, out)
      const rec = out.take()
      sink += crc32(rec.subarray(8))
    })
  ]
  if (sink === 0.5) process.stderr.write('') // keeps the work observable to the JIT
  return {
    benchmark: 'gateway-ingest-cpu',
    node: process.version,
    frameBytes: Math.round(frames.reduce((a, b) => a + b.length, 0) / frames.length),
    linesBytes: Math.round(bodies.reduce((a, b) => a + b.length, 0) / bodies.length),
    steps
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(JSON.stringify(runIngestBench(Number(process.argv[2] ?? 2)), null, 2) + '\n')
}
