// The hand-written Waveform decoder (decoders/waveform-decode.ts) against the protobufjs
// generated decoder it replaces: the same result or the same failure, on simulator frames and
// on thousands of mutated and truncated ones; and the digit writer of the line protocol against
// String(). Both sit on the per-sample path, so they are checked exhaustively rather than trusted.
import protobuf from 'protobufjs'
import { describe, expect, it } from 'vitest'
import { PROTO_PATH, decodeWire, encodeFrame } from '../decoders/index.js'
import { UnitFrameSource } from '../simulator/frame-source.js'
import { Rng } from '../simulator/rng.js'
import { LineBuffer, writeInt } from '../streams/storage/line-buffer.js'

const reference = protobuf.loadSync(PROTO_PATH).lookupType('ambulink.v1.TelemetryFrame')

/** Waveforms as plain data, or the kind of error: what both decoders must agree on. */
function outcome (decode: () => unknown): string {
  try {
    const m = decode() as { waveforms?: Array<{ lead: number, sampleRateHz: number, microvoltsPerLsb: number, offsetMs: number, samples: ArrayLike<number> }> }
    return JSON.stringify((m.waveforms ?? []).map(w => [w.lead, w.sampleRateHz, w.microvoltsPerLsb, w.offsetMs, Array.from(w.samples)]))
  } catch (err) {
    return `error: ${(err as Error).constructor.name}`
  }
}

describe('Waveform decoder', () => {
  it('decodes samples into Int32Arrays with the values protobufjs decodes', () => {
    const bytes = encodeFrame({ unitId: 'u', waveforms: [{ lead: 2, sampleRateHz: 500, microvoltsPerLsb: 2.5, offsetMs: -3, samples: [0, 1, -1, 63, -64, 64, 8191, -8192, 32000, -32000, 2 ** 30, -(2 ** 31), 2 ** 31 - 1] }] })
    const w = decodeWire(bytes).waveforms[0]!
    expect(w.samples).toBeInstanceOf(Int32Array)
    expect(outcome(() => decodeWire(bytes))).toBe(outcome(() => reference.decode(bytes)))
  })

  it('agrees with protobufjs on 3,000 simulator frames, mutated and truncated', () => {
    const rng = new Rng(7)
    const src = new UnitFrameSource({ unitId: 'u', startMs: Date.now() - 3_600_000, profile: 'stemi', seed: 3 })
    let errors = 0
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(src.nextFrame().bytes)
      const mutations = i % 4 === 0 ? 0 : 1 + Math.floor(rng.next() * 4)
      for (let m = 0; m < mutations; m++) b[Math.floor(rng.next() * b.length)] = Math.floor(rng.next() * 256)
      const input = i % 7 === 3 ? b.subarray(0, Math.floor(rng.next() * b.length)) : b
      const mine = outcome(() => decodeWire(input))
      if (mine.startsWith('error')) errors++
      expect(mine, `frame ${i}`).toBe(outcome(() => reference.decode(input)))
    }
    expect(errors, 'some inputs were malformed').toBeGreaterThan(100)
  })

  it('reads samples split over packed and unpacked entries, across arena boundaries, like protobufjs', () => {
    // One waveform whose samples come as several packed chunks and single (unpacked) entries:
    // decoding goes straight into the shared arena, so a chunk that does not fit must move the
    // samples already read into a fresh arena.
    const rng = new Rng(11)
    for (let i = 0; i < 400; i++) {
      const w = protobuf.Writer.create()
      w.uint32(8).int32(1 + (i % 12)).uint32(16).uint32(500).uint32(29).float(1).uint32(32).int32(0)
      const chunks = 1 + (i % 5)
      for (let c = 0; c < chunks; c++) {
        if (c % 2 === 1) { w.uint32(40).sint32(Math.floor((rng.next() - 0.5) * 2 ** 20)); continue }
        const n = Math.floor(rng.next() * (i % 9 === 0 ? 6000 : 700))
        w.uint32(42).fork()
        for (let k = 0; k < n; k++) w.sint32(Math.floor((rng.next() - 0.5) * 2 ** (1 + (k % 31))))
        w.ldelim()
      }
      const wave = w.finish()
      const frame = protobuf.Writer.create().uint32(10).string('u').uint32(58).bytes(wave).finish()
      expect(outcome(() => decodeWire(frame)), `frame ${i}`).toBe(outcome(() => reference.decode(frame)))
    }
  })

  it('never changes samples already handed out, whatever is decoded (or refused) after them', () => {
    const src = new UnitFrameSource({ unitId: 'u', startMs: Date.now() - 3_600_000, profile: 'stemi', seed: 5 })
    const rng = new Rng(13)
    const kept: Array<{ samples: Int32Array[], copy: number[][] }> = []
    let refused = 0
    for (let i = 0; i < 600; i++) {
      const b = Buffer.from(src.nextFrame().bytes)
      if (i % 3 === 1) {
        // A malformed frame: its samples are decoded into the arena, then the frame is refused.
        b[Math.floor(rng.next() * b.length)] = Math.floor(rng.next() * 256)
        try { decodeWire(b.subarray(0, Math.floor(b.length * rng.next()))) } catch { refused++ }
        continue
      }
      const ws = decodeWire(b).waveforms.map(w => w.samples as Int32Array)
      if (i % 10 === 0) kept.push({ samples: ws, copy: ws.map(s => Array.from(s)) })
    }
    expect(kept.length).toBe(40)
    expect(refused, 'some of the damaged frames were refused').toBeGreaterThan(20)
    expect(kept.every(k => k.samples.length === 12)).toBe(true)
    for (const k of kept) expect(k.samples.map(s => Array.from(s))).toEqual(k.copy)
  })
})

describe('line-protocol digits', () => {
  it('writes every safe integer exactly as String() does', () => {
    const b = Buffer.alloc(32)
    const rng = new Rng(11)
    const cases = [0, 1, 9, 10, 99, 100, 32000, -32000, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 99_999_999, 100_000_000, 1_795_865_145_750_000, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]
    for (let i = 0; i < 20_000; i++) cases.push(Math.floor((rng.next() - 0.5) * 2 ** (rng.next() * 53)))
    for (const v of cases) expect(b.toString('latin1', 0, writeInt(b, 0, v)), String(v)).toBe(String(v))
  })

  it('writes other numbers through String(), -0 included', () => {
    const out = new LineBuffer(16)
    for (const v of [0.5, -0, 1e21, 97.25, -1.5e-7]) {
      out.reset()
      out.num(v)
      expect(out.toString()).toBe(String(v))
    }
  })
})
