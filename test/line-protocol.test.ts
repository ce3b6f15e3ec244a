// The storage contract, byte for byte: measurements, tags, fields and microsecond timestamps.
import { describe, expect, it } from 'vitest'
import { FrameDecoder, encodeFrame } from '../decoders/index.js'
import { frameToLines } from '../streams/storage/line-protocol.js'

const NOW = 1_780_000_000_000
const dec = new FrameDecoder()

describe('frameToLines', () => {
  it('writes vitals, position and ECG per the storage contract', () => {
    const f = dec.decode(encodeFrame({
      unitId: 'amb-01', bootId: 'b', seq: 1, capturedAtMs: NOW, encounterId: 'enc-1',
      numerics: [{ sign: 1, value: 72, offsetMs: 0 }, { sign: 3, value: 97.5, offsetMs: 0 }, { sign: 7, value: 16, offsetMs: 500 }],
      position: { latitude: 45.5, longitude: 4.25, speedMps: 12.5, headingDeg: 180, offsetMs: 0 },
      waveforms: [
        { lead: 1, sampleRateHz: 500, microvoltsPerLsb: 2, offsetMs: 0, samples: [10, -20, 30] },
        { lead: 2, sampleRateHz: 500, microvoltsPerLsb: 2, offsetMs: 0, samples: [1, 2, 3] }
      ]
    }), 'amb-01', NOW)
    const lines = frameToLines(f)
    const us = NOW * 1000
    expect(lines.text.split('\n').filter(Boolean)).toEqual([
      `vitals,unit=amb-01,encounter=enc-1 heart_rate=72,spo2=97.5 ${us}`,
      `vitals,unit=amb-01,encounter=enc-1 respiratory_rate=16 ${us + 500_000}`,
      `position,unit=amb-01,encounter=enc-1 latitude=45.5,longitude=4.25,speed_mps=12.5,heading_deg=180 ${us}`,
      `ecg,unit=amb-01,encounter=enc-1 i=20,ii=2 ${us}`,
      `ecg,unit=amb-01,encounter=enc-1 i=-40,ii=4 ${us + 2000}`,
      `ecg,unit=amb-01,encounter=enc-1 i=60,ii=6 ${us + 4000}`
    ])
    expect(lines.points).toBe(6)
    expect(lines.ecgPoints).toBe(3)
  })

  it('omits the encounter tag before dispatch assigns one, and merges leads of different rates by instant', () => {
    const f = dec.decode(encodeFrame({
      unitId: 'amb-01', bootId: 'b', seq: 1, capturedAtMs: NOW,
      waveforms: [
        { lead: 2, sampleRateHz: 500, microvoltsPerLsb: 1, offsetMs: 0, samples: [1, 2, 3, 4] },
        { lead: 7, sampleRateHz: 250, microvoltsPerLsb: 1, offsetMs: 0, samples: [9, 8] }
      ]
    }), 'amb-01', NOW)
    const us = NOW * 1000
    expect(frameToLines(f).text.split('\n').filter(Boolean)).toEqual([
      `ecg,unit=amb-01 ii=1,v1=9 ${us}`,
      `ecg,unit=amb-01 ii=2 ${us + 2000}`,
      `ecg,unit=amb-01 ii=3,v1=8 ${us + 4000}`,
      `ecg,unit=amb-01 ii=4 ${us + 6000}`
    ])
  })

  it('is a pure function of the frame: a replay writes identical points', () => {
    const bytes = encodeFrame({ unitId: 'u1', bootId: 'b', seq: 5, capturedAtMs: NOW, numerics: [{ sign: 1, value: 80, offsetMs: 0 }] })
    expect(frameToLines(dec.decode(bytes, 'u1', NOW)).text).toBe(frameToLines(dec.decode(bytes, 'u1', NOW + 5000)).text)
  })
})
