/**
 * The simulated monitor's own 12-lead interpretation (contract v1.1, TelemetryFrame field 11),
 * computed from the same dipole model that draws its ECG: the ST deviation of each lead at
 * J+60 ms is read off the noise-free beat template against the model's isoelectric line, as a
 * real electrocardiograph reads it off its median beat. The limb leads III, aVR, aVL, aVF are
 * derived from I and II (Einthoven, Goldberger), as the waveform is.
 */
import { encodeFrame } from '../decoders/index.js'
import { J_POINT_S, MEASURED_LEADS, maxTemplateSamples, renderBeat, type StemiKind } from './ecg-model.js'

export interface DeviceInterpretation {
  statement: string
  stDeviations: Array<{ lead: number, microvolts: number }>
  lbbb: boolean
  paced: boolean
  offsetMs: number
}

/** ST at J+60 ms per lead in Lead enum order (I … V6), µV, for a beat at this rate. */
export function modelStDeviation (heartRateBpm: number, stemi: StemiKind, sampleRateHz = 500): number[] {
  const stride = maxTemplateSamples(sampleRateHz)
  const t = new Float32Array(MEASURED_LEADS * stride)
  const rr = Math.min(3, Math.max(0.2, 60 / heartRateBpm))
  const { rIndex } = renderBeat(rr, sampleRateHz, stemi, t, stride)
  const at = rIndex + Math.round((J_POINT_S + 0.06) * sampleRateHz)
  const m = Array.from({ length: MEASURED_LEADS }, (_, k) => t[k * stride + at]!)
  const [I, II, V1, V2, V3, V4, V5, V6] = m as [number, number, number, number, number, number, number, number]
  const limb = [I, II, II - I, -(I + II) / 2, I - II / 2, II - I / 2]
  return [...limb, V1, V2, V3, V4, V5, V6].map(v => Math.round(v))
}

const TERRITORY_TEXT: Readonly<Record<Exclude<StemiKind, 'none'>, string>> = {
  inferior: '*** ACUTE MI / STEMI *** Inferior ST elevation',
  anterior: '*** ACUTE MI / STEMI *** Anterior ST elevation'
}

/** The device's interpretation of its ECG at this heart rate. */
export function interpret (heartRateBpm: number, stemi: StemiKind, offsetMs: number): DeviceInterpretation {
  const st = modelStDeviation(heartRateBpm, stemi)
  const rhythm = heartRateBpm > 100 ? 'Sinus tachycardia' : heartRateBpm < 60 ? 'Sinus bradycardia' : 'Sinus rhythm'
  const statement = stemi === 'none' ? `${rhythm}. Normal ECG` : `${rhythm}. ${TERRITORY_TEXT[stemi]}`
  return { statement, stDeviations: st.map((microvolts, i) => ({ lead: i + 1, microvolts })), lbbb: false, paced: false, offsetMs }
}

/**
 * TelemetryFrame field 11 alone, encoded: appended to a frame's bytes it adds the field
 * (protobuf fields may follow one another in any order, and field 11 follows field 10 anyway).
 */
export function interpretationBytes (i: DeviceInterpretation): Buffer {
  return Buffer.from(encodeFrame({ interpretation: i }))
}
