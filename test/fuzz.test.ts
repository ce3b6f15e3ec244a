// Fuzzing (issue #3, item 5), short version of `loadtest/fuzz.ts` (which runs 1,000,000 inputs):
// mutated frames, random bytes, huge declared lengths and deep nesting through the decoder and
// the real HTTP ingest. Every input is accepted or rejected with a code; nothing crashes, hangs,
// answers 5xx, or leaves memory behind.
import { describe, expect, it } from 'vitest'
import { FRAME_ERRORS } from '../decoders/index.js'
import { runFuzz } from '../loadtest/fuzz.js'

describe('fuzzing the decoder and the HTTP ingest', () => {
  it('rejects every bad input with a documented code and stays up and flat', async () => {
    const r = await runFuzz({ inputs: 20_000, httpInputs: 400, seed: 7, timeLimitMs: 20_000 })
    const d = r.decoder
    expect(d.crashes, JSON.stringify(d.crashSamples)).toBe(0)
    expect(d.inputs).toBe(20_000)
    // Every kind of input was exercised, and each rejection carries a catalogued code.
    for (const k of Object.values(d.byKind)) expect(k.inputs).toBeGreaterThan(100)
    for (const code of Object.keys(d.rejected)) expect(FRAME_ERRORS).toHaveProperty(code)
    expect(d.accepted + Object.values(d.rejected).reduce((a, b) => a + b, 0)).toBe(d.inputs)
    // How long the slowest input took to decode is reported by loadtest/fuzz.ts (maxDecodeMs).
    expect(r.http.failures, r.http.failureSamples.join('\n')).toBe(0)
    expect(r.http.sent).toBe(400)
    for (const status of Object.keys(r.http.byStatus)) expect(Number(status)).toBeLessThan(500)
    // Heap after the decoder phase (after GC when available) within 16 MiB of before.
    expect(r.memory.decoder.heapAfterMiB - r.memory.decoder.heapBeforeMiB).toBeLessThan(16)
  }, 60_000)
})
