// Frames with a known number of points, for tests that count what lands in InfluxDB.
import { encodeFrame, type FrameInit } from '../decoders/index.js'

export interface TestFrameOptions {
  unit: string
  seq: number
  boot?: string
  encounter?: string
  /** Device time of the frame's start; default: a fixed grid so frames never share instants. */
  capturedAtMs?: number
  /** ECG samples per lead (0 = no ECG). */
  ecgSamples?: number
  leads?: number
  numerics?: boolean
  position?: boolean
  extra?: Partial<FrameInit>
}

/** Base time for test frames: recent (within the decoder's past-age bound), ms grid. */
export const T0 = Math.floor(Date.now() / 1000) * 1000 - 3_600_000

/** A frame with 125 ECG samples × 12 leads (250 ms at 500 Hz), 3 numerics and a position. */
export function testFrame (o: TestFrameOptions): Uint8Array {
  const n = o.ecgSamples ?? 125
  const leads = o.leads ?? 12
  return encodeFrame({
    unitId: o.unit,
    bootId: o.boot ?? 'boot-1',
    seq: o.seq,
    capturedAtMs: o.capturedAtMs ?? T0 + o.seq * 250,
    encounterId: o.encounter ?? 'enc-1',
    numerics: o.numerics === false ? [] : [{ sign: 1, value: 70 + (o.seq % 10), offsetMs: 0 }, { sign: 3, value: 97, offsetMs: 0 }, { sign: 7, value: 16, offsetMs: 0 }],
    position: o.position === false ? undefined : { latitude: 45.75, longitude: 4.85, speedMps: 10, headingDeg: 90, offsetMs: 0 },
    waveforms: n === 0
      ? []
      : Array.from({ length: leads }, (_, l) => ({ lead: l + 1, sampleRateHz: 500, microvoltsPerLsb: 1, offsetMs: 0, samples: Array.from({ length: n }, (_, i) => ((i * 7 + l * 13 + o.seq) % 400) - 200) })),
    ...o.extra
  })
}

/** Points `testFrame` produces, by measurement. */
export function expectedPoints (o: Pick<TestFrameOptions, 'ecgSamples' | 'numerics' | 'position'> = {}): { ecg: number, vitals: number, position: number } {
  return { ecg: o.ecgSamples ?? 125, vitals: o.numerics === false ? 0 : 1, position: o.position === false ? 0 : 1 }
}
