// (v1.1) TelemetryFrame.interpretation, field 11: a valid interpretation survives decoding whole;
// every bad value rejects the frame with its stable code, table-driven.
import { describe, expect, it } from 'vitest'
import { encodeFrame, FrameDecoder, FrameError, type FrameInit } from '../decoders/index.js'

const NOW = 1_780_000_000_000
const decoder = new FrameDecoder()
type Interp = NonNullable<FrameInit['interpretation']>

function bytes (interpretation: Interp): Uint8Array {
  return encodeFrame({ unitId: 'amb-01', bootId: 'boot-1', seq: 1, capturedAtMs: NOW - 1000, encounterId: 'enc-1', interpretation })
}

function codeOf (i: Interp): string {
  try { decoder.decode(bytes(i), 'amb-01', NOW); return 'ok' } catch (err) {
    expect(err).toBeInstanceOf(FrameError)
    return (err as FrameError).code
  }
}

describe('EcgInterpretation (v1.1)', () => {
  it('decodes statement, ST per lead, flags and offset', () => {
    const f = decoder.decode(bytes({ statement: 'Sinus rhythm. Inferior STEMI', stDeviations: [{ lead: 2, microvolts: 210 }, { lead: 5, microvolts: -150 }], lbbb: true, paced: false, offsetMs: 250 }), 'amb-01', NOW)
    expect(f.interpretation).toEqual({ statement: 'Sinus rhythm. Inferior STEMI', stDeviations: [{ lead: 2, microvolts: 210 }, { lead: 5, microvolts: -150 }], lbbb: true, paced: false, offsetMs: 250 })
  })

  it('a frame without one has none', () => {
    const f = decoder.decode(encodeFrame({ unitId: 'amb-01', bootId: 'boot-1', seq: 1, capturedAtMs: NOW - 1000 }), 'amb-01', NOW)
    expect(f.interpretation).toBeNull()
  })

  it.each([
    ['ST at +5 mV', { stDeviations: [{ lead: 1, microvolts: 5000 }] }, 'ok'],
    ['ST at -5 mV', { stDeviations: [{ lead: 1, microvolts: -5000 }] }, 'ok'],
    ['ST beyond +5 mV', { stDeviations: [{ lead: 1, microvolts: 5001 }] }, 'AMB_ERR_VALUE_OUT_OF_RANGE'],
    ['ST beyond -5 mV', { stDeviations: [{ lead: 8, microvolts: -5001 }] }, 'AMB_ERR_VALUE_OUT_OF_RANGE'],
    ['unspecified lead', { stDeviations: [{ lead: 0, microvolts: 10 }] }, 'AMB_ERR_FIELD_INVALID'],
    ['unknown lead', { stDeviations: [{ lead: 13, microvolts: 10 }] }, 'AMB_ERR_FIELD_INVALID'],
    ['lead twice', { stDeviations: [{ lead: 3, microvolts: 10 }, { lead: 3, microvolts: 20 }] }, 'AMB_ERR_FIELD_INVALID'],
    ['statement of 512', { statement: 'x'.repeat(512) }, 'ok'],
    ['statement of 513', { statement: 'x'.repeat(513) }, 'AMB_ERR_FIELD_INVALID'],
    ['statement with a newline', { statement: 'Normal\nALERT: forged' }, 'AMB_ERR_FIELD_INVALID'],
    ['offset beyond 1 h', { offsetMs: 3_600_001 }, 'AMB_ERR_VALUE_OUT_OF_RANGE']
  ] as Array<[string, Interp, string]>)('%s → %s', (_name, i, code) => {
    expect(codeOf(i)).toBe(code)
  })
})
