/**
 * Cost of STEMI-from-the-ECG: (1) measureSt on 10 s of 12 leads at 500 Hz (median-beat analysis,
 * once per 10 s per unit in the engine); (2) AlertEngine.onFrame per 250 ms 12-lead frame with
 * and without the waveform (the difference is the ring copy plus the amortised analysis).
 * Run: npx tsx loadtest/bench-stemi.ts   (prints JSON)
 */
import { FrameDecoder, type Frame } from '../decoders/index.js'
import { EcgSynth } from '../simulator/ecg.js'
import { UnitFrameSource } from '../simulator/frame-source.js'
import { AlertEngine } from '../streams/alerts/index.js'
import { measureSt } from '../streams/alerts/st-measure.js'

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1]!
}

async function main (): Promise<void> {
  const windows = Array.from({ length: 20 }, (_, i) => new EcgSynth({ stemi: i % 2 === 0 ? 'inferior' : 'none', heartRateBpm: 60 + i * 3, seed: i + 1 }).next(5000).map(a => Int16Array.from(a)))
  for (const w of windows.slice(0, 5)) measureSt(w, 500) // warm-up
  const measureMs = windows.map(w => { const c = process.cpuUsage(); measureSt(w, 500); const u = process.cpuUsage(c); return (u.user + u.system) / 1000 })

  const start = Date.now() - 700_000
  const src = new UnitFrameSource({ unitId: 'u1', startMs: start, profile: 'stemi', seed: 3 })
  const dec = new FrameDecoder()
  const frames: Frame[] = []
  for (let i = 0; i < 2400; i++) frames.push(dec.decode(src.nextFrame().bytes, 'u1', Date.now()))
  const run = async (strip: boolean): Promise<number> => {
    const engine = await AlertEngine.open({ tickIntervalMs: 0, now: () => start })
    // CPU time, not wall time: on a shared machine the wall clock mostly measures the neighbours.
    const c = process.cpuUsage()
    for (const f of frames) engine.onFrame(strip ? { ...f, waveforms: [], interpretation: null } : f, f.capturedAtMs)
    const used = process.cpuUsage(c)
    const perFrameUs = (used.user + used.system) / frames.length
    await engine.close()
    return perFrameUs
  }
  await run(false) // warm-up
  const withEcg = median([await run(false), await run(false), await run(false)])
  const withoutEcg = median([await run(true), await run(true), await run(true)])
  console.log(JSON.stringify({
    measureSt10s12LeadCpuMs: { median: Math.round(median(measureMs) * 100) / 100, max: Math.round(Math.max(...measureMs) * 100) / 100, n: measureMs.length },
    engineOnFrameCpuUs: { with12Lead: Math.round(withEcg * 10) / 10, withoutWaveform: Math.round(withoutEcg * 10) / 10, frames: frames.length }
  }))
}

await main()
