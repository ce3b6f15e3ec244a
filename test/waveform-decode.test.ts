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
