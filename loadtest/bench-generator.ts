/**
 * Benchmark of frame generation alone (ECG synthesis + vitals + protobuf encoding, no MQTT):
 * how many frames per second one core produces, and how large they are. Prints JSON.
 *
 *   npx tsx loadtest/bench-generator.ts [seconds per case, default 3]
 */
import { UnitFrameSource, type LeadSet } from '../simulator/frame-source.js'
import { PATIENT_PROFILES } from '../simulator/vitals.js'

interface CaseResult {
  leads: LeadSet
  framesPerSec: number
  /** Units a core could feed in real time at 4 frames/s each. */
  unitsPerCoreRealtime: number
  avgFrameBytes: number
  /** Frame without numerics (3 of 4 frames) and with numerics + position (1 of 4), averaged. */
  avgBytesWithoutNumerics: number
  avgBytesWithNumerics: number
  heapDeltaMB: number
}

function bench (leads: LeadSet, seconds: number): CaseResult {
  // Several units, so the JIT sees every profile and the results are not one patient's.
  const sources = PATIENT_PROFILES.map((profile, i) => new UnitFrameSource({ unitId: `bench-${i}`, startMs: Date.now(), profile, seed: i + 1, leads }))
  for (let i = 0; i < 2000; i++) sources[i % sources.length]!.nextFrame() // warm-up
  const sizes = { with: 0, withN: 0, without: 0, withoutN: 0 }
  const heapBefore = process.memoryUsage().heapUsed
  let frames = 0
  const t0 = performance.now()
  const end = t0 + seconds * 1000
  while (performance.now() < end) {
    for (let k = 0; k < 100; k++) {
      const { bytes, meta } = sources[frames % sources.length]!.nextFrame()
      if (meta.numerics > 0) {
        sizes.with += bytes.length
        sizes.withN++
      } else {
        sizes.without += bytes.length
        sizes.withoutN++
      }
      frames++
    }
  }
  const elapsedS = (performance.now() - t0) / 1000
  const fps = frames / elapsedS
  return {
    leads,
    framesPerSec: Math.round(fps),
    unitsPerCoreRealtime: Math.floor(fps / 4),
    avgFrameBytes: Math.round((sizes.with + sizes.without) / frames),
    avgBytesWithoutNumerics: Math.round(sizes.without / Math.max(1, sizes.withoutN)),
    avgBytesWithNumerics: Math.round(sizes.with / Math.max(1, sizes.withN)),
    heapDeltaMB: Math.round((process.memoryUsage().heapUsed - heapBefore) / 1e5) / 10
  }
}

const seconds = Number(process.argv[2] ?? 3)
const results = ([12, 1, 0] as const).map(leads => bench(leads, seconds))
process.stdout.write(JSON.stringify({ benchmark: 'frame-generation', node: process.version, frameMs: 250, ecgHz: 500, results }, null, 2) + '\n')
