/**
 * How long LiveHub.push() takes per frame with nobody watching and with a frozen dashboard page
 * watching (moved here from test/live-hub.test.ts: a timing figure is a measurement, not a test).
 * Prints JSON. Run: npx tsx loadtest/live-hub-push.ts [--frames 4000]
 */
import { parseArgs } from 'node:util'
import { FrameDecoder, encodeFrame, type Frame } from '../decoders/index.js'
import { LiveHub } from '../streams/live/hub.js'
import type { LiveSink } from '../streams/live/subscriber.js'

const { values } = parseArgs({ options: { frames: { type: 'string', default: '4000' } } })
const n = Number(values.frames)
const decoder = new FrameDecoder()
const T0 = Date.now() - 3_600_000

function frame (seq: number): Frame {
  const startMs = T0 + (seq - 1) * 250
  return decoder.decode(encodeFrame({
    unitId: 'AMB-1',
    bootId: 'b1',
    seq,
    capturedAtMs: startMs,
    encounterId: 'enc-1',
    numerics: [{ sign: 1, value: 60 + (seq % 40), offsetMs: 0 }],
    waveforms: Array.from({ length: 12 }, (_, l) => ({ lead: l + 1, sampleRateHz: 500, microvoltsPerLsb: 1, offsetMs: 0, samples: Array.from({ length: 125 }, (_, k) => ((k * 7 + l * 131) % 2001) - 1000) }))
  }), 'AMB-1', startMs + 1000)
}

const frames = Array.from({ length: 2 * n }, (_, i) => frame(i + 1))
const hub = new LiveHub({ hospital: { name: 'H', latitude: 49.63, longitude: 6.17 }, blockedTimeoutMs: 60_000, highWaterBytes: 32 * 1024, maxQueueBytes: 128 * 1024 })
const time = (from: number, to: number): number[] => {
  const out: number[] = []
  for (let i = from; i < to; i++) {
    const t = performance.now()
    hub.push(frames[i]!)
    out.push(performance.now() - t)
  }
  return out.sort((a, b) => a - b)
}
const stats = (xs: number[]): { p50Ms: number, p99Ms: number, maxMs: number, totalMs: number } => ({
  p50Ms: xs[Math.floor(xs.length * 0.5)]!,
  p99Ms: xs[Math.floor(xs.length * 0.99)]!,
  maxMs: xs[xs.length - 1]!,
  totalMs: xs.reduce((a, b) => a + b, 0)
})
const baseline = time(0, n)
// A page that never calls back: every send stays in flight, the queue sheds old ECG.
const frozen: LiveSink = { send: () => {}, close: () => {}, terminate: () => {} }
hub.subscribe(frozen, { name: 'frozen', role: 'clinician' }).handle({ type: 'hello', watch: ['AMB-1'], resume: {} })
const withFrozen = time(n, 2 * n)
await hub.close()
console.log(JSON.stringify({ benchmark: 'live-hub-push', frames: n, nobodyWatching: stats(baseline), frozenPageWatching: stats(withFrozen) }, null, 2))
