/**
 * The protobuf schema, loaded once from the contract file. protobufjs compiles a specialised
 * decoder per message type at load time, so decoding is as fast as generated static code.
 */
import { fileURLToPath } from 'node:url'
import Long from 'long'
import protobuf from 'protobufjs'
import { makeFrameDecoder } from './frame-decode.js'
import { makeWaveformDecoder } from './waveform-decode.js'

// 64-bit fields come back as Long (never a lossy double): seq keeps all 64 bits.
protobuf.util.Long = Long
protobuf.configure()

export const PROTO_PATH = fileURLToPath(new URL('./proto/ambulink/v1/telemetry.proto', import.meta.url))

const root = protobuf.loadSync(PROTO_PATH)
export const TelemetryFrameType = root.lookupType('ambulink.v1.TelemetryFrame')

// Samples are decoded into Int32Arrays (waveform-decode.ts). setup() first: it would otherwise
// run later (on the first encode) and put the generated decoder back.
const WaveformType = root.lookupType('ambulink.v1.Waveform')
WaveformType.setup()
WaveformType.decode = makeWaveformDecoder(protobuf.Reader, () => protobuf.Reader.recursionLimit) as unknown as typeof WaveformType.decode

// The frame's own fields by hand too (frame-decode.ts); its nested messages through their types'
// decoders, looked up at each call as protobufjs' generated code does.
type Decode4 = (r: unknown, length: number, endGroup: undefined, depth: number) => unknown
const nested = (name: string): Decode4 => {
  const type = root.lookupType(`ambulink.v1.${name}`)
  return (r, length, endGroup, depth) => (type.decode as unknown as Decode4).call(type, r, length, endGroup, depth)
}
TelemetryFrameType.setup()
TelemetryFrameType.decode = makeFrameDecoder(protobuf.Reader, {
  numeric: nested('Numeric'),
  waveform: nested('Waveform'),
  position: nested('Position'),
  alarm: nested('DeviceAlarm'),
  assessment: nested('Assessment'),
  interpretation: nested('EcgInterpretation')
}, () => protobuf.Reader.recursionLimit) as unknown as typeof TelemetryFrameType.decode

/** Decoded wire shape (protobufjs camelCases the field names). */
export interface WireNumeric { sign: number, value: number, offsetMs: number }
export interface WireWaveform {
  lead: number
  sampleRateHz: number
  microvoltsPerLsb: number
  offsetMs: number
  /** Decoded frames hold an Int32Array; frames built by hand may use a plain array. */
  samples: ArrayLike<number>
}
export interface WirePosition { latitude: number, longitude: number, speedMps: number, headingDeg: number, offsetMs: number }
/** `ended` (v1.1): the device says the condition ended. */
export interface WireAlarm { code: string, priority: number, text: string, offsetMs: number, ended: boolean }
/** Contract v1.1: every field is proto3 `optional`; protobufjs decodes an absent one as null. */
export interface WireAssessment {
  stemiSuspected: boolean | null
  lamsScore: number | null
  fastPositive: boolean | null
  lastKnownWellMs: Long | number | null
  ageYears: number | null
  sex: string | null
}
/** (v1.1) TelemetryFrame.interpretation (field 11): see interpretation.ts. */
export interface WireStDeviation { lead: number, microvolts: number }
export interface WireInterpretation { statement: string, stDeviations: WireStDeviation[], lbbb: boolean, paced: boolean, offsetMs: number }
export interface WireFrame {
  unitId: string
  bootId: string
  seq: Long | number
  capturedAtMs: Long | number
  encounterId: string
  numerics: WireNumeric[]
  waveforms: WireWaveform[]
  position: WirePosition | null
  alarms: WireAlarm[]
  assessment: WireAssessment | null
  /** v1.1 */
  encounterEnded: boolean
  /** (v1.1) */
  interpretation?: WireInterpretation | null
}

/** Input accepted by {@link encodeFrame}: the wire shape with everything optional. */
export type FrameInit = Partial<Omit<WireFrame, 'seq' | 'capturedAtMs' | 'position' | 'assessment' | 'alarms' | 'interpretation'>> & {
  alarms?: Array<Omit<WireAlarm, 'ended'> & { ended?: boolean }>
  interpretation?: (Partial<Omit<WireInterpretation, 'stDeviations'>> & { stDeviations?: WireStDeviation[] }) | null
  seq?: number | bigint | string | Long
  capturedAtMs?: number | bigint | Long
  position?: Partial<WirePosition>
  /** A field left out (or null) is absent on the wire: "unchanged" (v1.1). */
  assessment?: Partial<Omit<WireAssessment, 'lastKnownWellMs'>> & { lastKnownWellMs?: number | Long | null }
}

function toLong (v: number | bigint | string | Long | undefined, unsigned: boolean): Long | undefined {
  if (v === undefined) return undefined
  if (Long.isLong(v)) return v
  if (typeof v === 'number') return Long.fromNumber(v, unsigned)
  return Long.fromString(v.toString(), unsigned)
}

/** Encodes a frame (devices, the simulator and tests use this; the gateway only decodes). */
export function encodeFrame (init: FrameInit): Uint8Array {
  const msg = TelemetryFrameType.fromObject({
    ...init,
    // protobufjs' fromObject takes arrays only (decoded frames carry Int32Arrays).
    waveforms: init.waveforms?.map(w => ({ ...w, samples: Array.isArray(w.samples) ? w.samples : Array.from(w.samples) })),
    seq: toLong(init.seq, true),
    capturedAtMs: toLong(init.capturedAtMs, false),
    assessment: init.assessment === undefined
      ? undefined
      : { ...init.assessment, lastKnownWellMs: toLong(init.assessment.lastKnownWellMs ?? undefined, false) }
  })
  return TelemetryFrameType.encode(msg).finish()
}

/** Decodes bytes into the wire shape; throws protobufjs' error on malformed input. */
export function decodeWire (bytes: Uint8Array): WireFrame {
  return TelemetryFrameType.decode(bytes) as unknown as WireFrame
}
