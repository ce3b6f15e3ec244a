// The decoder's contract, table-driven: every bad-frame class maps to its stable reason code,
// and a valid frame survives with 64-bit precision intact.
import { describe, expect, it } from 'vitest'
import { FRAME_ERRORS, FrameDecoder, FrameError, VITAL_SIGNS, encodeFrame, type FrameInit } from '../decoders/index.js'

const NOW = 1_780_000_000_000
const decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 })

function twelveLead (n = 125, over: Partial<FrameInit['waveforms'] extends Array<infer W> | undefined ? W : never> = {}) {
  return Array.from({ length: 12 }, (_, i) => ({ lead: i + 1, sampleRateHz: 500, microvoltsPerLsb: 1, offsetMs: 0, samples: Array.from({ length: n }, (_, k) => (k % 50) - 25), ...over }))
}

function valid (over: Partial<FrameInit> = {}): FrameInit {
  return {
    unitId: 'amb-01',
    bootId: 'boot-1',
    seq: 7,
    capturedAtMs: NOW - 1000,
    encounterId: 'enc-42',
    numerics: [{ sign: 1, value: 72, offsetMs: 0 }, { sign: 3, value: 97, offsetMs: 0 }],
    waveforms: twelveLead(),
    position: { latitude: 45.74, longitude: 4.88, speedMps: 14, headingDeg: 90, offsetMs: 0 },
    ...over
  }
}

function codeOf (bytes: Uint8Array, unit = 'amb-01'): string {
  try {
    decoder.decode(bytes, unit, NOW)
    return 'ok'
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError)
    return (err as FrameError).code
  }
}

describe('FrameDecoder', () => {
  it('accepts a valid 12-lead frame and keeps all 64 bits of seq', () => {
    const f = decoder.decode(encodeFrame(valid({ seq: '18446744073709551615' })), 'amb-01', NOW)
    expect(f.seq).toBe('18446744073709551615')
    expect(f.capturedAtMs).toBe(NOW - 1000)
    expect(f.waveforms).toHaveLength(12)
    expect(f.numerics.map(n => n.value)).toEqual([72, 97])
    expect(f.position?.latitude).toBeCloseTo(45.74)
  })

  it('writes seq as its exact decimal on both sides of 2^32 and 2^53 (fast path and Long)', () => {
    const edges = [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 2n ** 32n - 1n, 2n ** 53n - 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 2n]
    let x = 0x9e3779b97f4a7c15n
    for (let i = 0; i < 300; i++) { x = (x * 6364136223846793005n + 1442695040888963407n) % 2n ** 64n; edges.push(x >> BigInt(i % 64)) }
    for (const v of edges) {
      const f = decoder.decode(encodeFrame(valid({ seq: v.toString() })), 'amb-01', NOW)
      expect(f.seq).toBe(v.toString())
    }
  })

  it('keeps captured_at_ms exact at the edges of the safe integers (values past them are refused)', () => {
    const d = new FrameDecoder({ maxFrameBytes: 64 * 1024, maxFutureSkewMs: Number.MAX_SAFE_INTEGER, maxPastAgeMs: Number.MAX_SAFE_INTEGER })
    const now = Number.MAX_SAFE_INTEGER
    for (const v of [1, 2 ** 32 - 1, 2 ** 32, 2 ** 52 + 12345, 2 ** 53 - 2 ** 32 - 1, 2 ** 53 - 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      expect(d.decode(encodeFrame(valid({ capturedAtMs: BigInt(v) })), 'amb-01', now).capturedAtMs).toBe(v)
    }
    for (const v of [2n ** 53n, 2n ** 62n, -1n, -(2n ** 53n)]) {
      expect(() => d.decode(encodeFrame(valid({ capturedAtMs: v })), 'amb-01', now)).toThrow(expect.objectContaining({ code: 'AMB_ERR_VALUE_OUT_OF_RANGE' }))
    }
  })

  const valid12 = encodeFrame(valid())
  const cases: Array<[string, Uint8Array, string, string?]> = [
    ['empty', new Uint8Array(0), 'AMB_ERR_FRAME_EMPTY'],
    ['garbage bytes', Buffer.from('this is not protobuf at all, just text'), 'AMB_ERR_FRAME_MALFORMED'],
    ['truncated frame', valid12.subarray(0, valid12.length - 7), 'AMB_ERR_FRAME_MALFORMED'],
    ['huge declared length', Buffer.from([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), 'AMB_ERR_FRAME_MALFORMED'],
    ['oversized', encodeFrame(valid({ waveforms: twelveLead(6000) })), 'AMB_ERR_FRAME_TOO_LARGE'],
    ['wrong unit', encodeFrame(valid({ unitId: 'amb-02' })), 'AMB_ERR_UNIT_MISMATCH'],
    ['missing unit', encodeFrame(valid({ unitId: '' })), 'AMB_ERR_FIELD_MISSING'],
    ['missing boot', encodeFrame(valid({ bootId: '' })), 'AMB_ERR_FIELD_MISSING'],
    ['missing time', encodeFrame(valid({ capturedAtMs: 0 })), 'AMB_ERR_FIELD_MISSING'],
    ['bad encounter id', encodeFrame(valid({ encounterId: 'enc 42,x=1' })), 'AMB_ERR_FIELD_INVALID'],
    ['far future', encodeFrame(valid({ capturedAtMs: NOW + 3_600_000 })), 'AMB_ERR_TIME_IN_FUTURE'],
    ['too old', encodeFrame(valid({ capturedAtMs: NOW - 30 * 86_400_000 })), 'AMB_ERR_TIME_TOO_OLD'],
    ['unknown sign', encodeFrame(valid({ numerics: [{ sign: 99, value: 1, offsetMs: 0 }] })), 'AMB_ERR_UNKNOWN_SIGN'],
    ['unspecified sign', encodeFrame(valid({ numerics: [{ sign: 0, value: 1, offsetMs: 0 }] })), 'AMB_ERR_UNKNOWN_SIGN'],
    ['SpO2 above 100', encodeFrame(valid({ numerics: [{ sign: 3, value: 101, offsetMs: 0 }] })), 'AMB_ERR_VALUE_OUT_OF_RANGE'],
    ['heart rate NaN', encodeFrame(valid({ numerics: [{ sign: 1, value: Number.NaN, offsetMs: 0 }] })), 'AMB_ERR_VALUE_OUT_OF_RANGE'],
    ['temperature in Fahrenheit', encodeFrame(valid({ numerics: [{ sign: 9, value: 98.6, offsetMs: 0 }] })), 'AMB_ERR_VALUE_OUT_OF_RANGE'],
    ['ACVPU fractional', encodeFrame(valid({ numerics: [{ sign: 10, value: 1.5, offsetMs: 0 }] })), 'AMB_ERR_VALUE_OUT_OF_RANGE'],
    ['latitude off Earth', encodeFrame(valid({ position: { latitude: 95, longitude: 4 } })), 'AMB_ERR_VALUE_OUT_OF_RANGE'],
    ['ECG beyond 32 mV', encodeFrame(valid({ waveforms: twelveLead(125, { samples: Array(125).fill(40_000) }) })), 'AMB_ERR_VALUE_OUT_OF_RANGE'],
    ['duplicate lead', encodeFrame(valid({ waveforms: [...twelveLead(), { lead: 2, sampleRateHz: 500, microvoltsPerLsb: 1, offsetMs: 0, samples: [1] }] })), 'AMB_ERR_WAVEFORM_INCONSISTENT'],
    ['leads of different spans', encodeFrame(valid({ waveforms: [twelveLead()[0]!, { ...twelveLead()[1]!, samples: Array(100).fill(0) }] })), 'AMB_ERR_WAVEFORM_INCONSISTENT'],
    ['sample rate zero', encodeFrame(valid({ waveforms: twelveLead(125, { sampleRateHz: 0 }) })), 'AMB_ERR_WAVEFORM_INCONSISTENT'],
    ['zero scale', encodeFrame(valid({ waveforms: twelveLead(125, { microvoltsPerLsb: 0 }) })), 'AMB_ERR_WAVEFORM_INCONSISTENT'],
    ['lead with no samples', encodeFrame(valid({ waveforms: twelveLead(0) })), 'AMB_ERR_WAVEFORM_INCONSISTENT'],
    ['unknown lead', encodeFrame(valid({ waveforms: [{ lead: 13, sampleRateHz: 500, microvoltsPerLsb: 1, offsetMs: 0, samples: [1] }] })), 'AMB_ERR_FIELD_INVALID'],
    ['LAMS 9', encodeFrame(valid({ assessment: { lamsScore: 9 } })), 'AMB_ERR_VALUE_OUT_OF_RANGE'],
    ['alarm without code', encodeFrame(valid({ alarms: [{ code: '', priority: 3, text: 'x', offsetMs: 0 }] })), 'AMB_ERR_FIELD_INVALID']
  ]

  it.each(cases)('rejects %s with its code', (_name, bytes, code) => {
    expect(codeOf(bytes)).toBe(code)
  })

  it('every code has an HTTP status and a description', () => {
    for (const [code, info] of Object.entries(FRAME_ERRORS)) {
      expect(code).toMatch(/^AMB_ERR_[A-Z_]+$/)
      expect(info.status).toBeGreaterThanOrEqual(400)
      expect(info.description.length).toBeGreaterThan(10)
    }
  })

  it('a rejection does not disturb the next frame', () => {
    expect(codeOf(Buffer.from([0xff, 0xff]))).toBe('AMB_ERR_FRAME_MALFORMED')
    expect(codeOf(valid12)).toBe('ok')
  })

  it.each(VITAL_SIGNS.map(s => [s.field, s] as const))('%s: accepts its range edges, rejects just outside', (_f, s) => {
    const at = (value: number) => codeOf(encodeFrame(valid({ numerics: [{ sign: s.sign, value, offsetMs: 0 }] })))
    expect(at(s.min)).toBe('ok')
    expect(at(s.max)).toBe('ok')
    expect(at(s.min - 1)).toBe('AMB_ERR_VALUE_OUT_OF_RANGE')
    expect(at(s.max + 1)).toBe('AMB_ERR_VALUE_OUT_OF_RANGE')
  })

  it('every sign has a LOINC or MDC code or says why not', () => {
    for (const s of VITAL_SIGNS) expect(s.loinc !== null || s.mdc !== null || s.field === 'supplemental_o2').toBe(true)
  })
})
