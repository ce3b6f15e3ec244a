/**
 * The TelemetryFrame decoder, by hand (issue 12, garbage per frame). protobufjs' generated one
 * allocates per frame what the gateway never uses: a Reader, the message constructor's three
 * empty arrays (numerics, waveforms, alarms; the decoder replaces the one it fills with a fourth),
 * and a LongBits and a Long each for seq and captured_at_ms, which validation turns into numbers
 * straight away. The nested messages are still decoded by protobufjs' generated decoders (and
 * Waveform by waveform-decode.ts): only the frame's own fields are read here.
 *
 * The same reading as protobufjs 7's generated `TelemetryFrame$decode`: each field read as its
 * declared type whatever its wire type, repeated messages appended, unknown fields skipped, the
 * same recursion limit and the same errors for the same malformed input (its Reader methods are
 * used, and its 64-bit varint reader is copied below). What differs is the form, not the values:
 * - a plain object with every field as an own property (absent ones at their defaults; empty
 *   repeated fields share one frozen empty array), not a Message instance;
 * - seq and captured_at_ms are numbers when their high word is below 2^21 in magnitude (exact as
 *   doubles: the values frame.ts reads without Long arithmetic), and Longs as protobufjs makes
 *   them otherwise, so what validation derives from them is the same.
 * test/frame-decode.test.ts holds it to the generated decoder on valid, mutated and truncated
 * frames, values and error messages both.
 */
import Long from 'long'
import type protobuf from 'protobufjs'

/** The parts of protobufjs' Reader used here (public fields and methods of its Reader class). */
interface Reader {
  buf: Uint8Array
  pos: number
  len: number
  uint32: () => number
  string: () => string
  bool: () => boolean
  skipType: (wireType: number, depth?: number) => unknown
}

type NestedDecode = (r: Reader, length: number, endGroup: undefined, depth: number) => unknown

/** The nested message types' decoders, as protobufjs (and waveform-decode.ts) set them up. */
export interface FrameFieldDecoders {
  numeric: NestedDecode
  waveform: NestedDecode
  position: NestedDecode
  alarm: NestedDecode
  assessment: NestedDecode
  interpretation: NestedDecode
}

/** What the decoder returns (schema.ts' WireFrame, with the nested messages left opaque here). */
export interface DecodedFrame {
  unitId: string
  bootId: string
  seq: Long | number
  capturedAtMs: Long | number
  encounterId: string
  numerics: unknown[]
  waveforms: unknown[]
  position: unknown
  alarms: unknown[]
  assessment: unknown
  interpretation: unknown
  encounterEnded: boolean
}

/** Absent repeated fields: one frozen array (protobufjs' prototypes share one the same way). */
const NONE: unknown[] = Object.freeze([]) as unknown as unknown[]

/** 2^32, and the bound of the high word below which a 64-bit value is exact as a double. */
const TWO_32 = 4294967296
const SAFE_HIGH = 0x200000

/** The two words of the last 64-bit varint read (readLongVarint), unsigned. */
let lo = 0
let hi = 0

/** protobufjs' indexOutOfRange(reader) (reader.js), message included. */
function indexOutOfRange (r: Reader): RangeError {
  return RangeError(`index out of range: ${r.pos} + 1 > ${r.len}`)
}

/**
 * protobufjs' readLongVarint (reader.js), the words left in `lo` and `hi` instead of a new
 * LongBits: the same bytes read, the same errors.
 */
function readLongVarint (r: Reader): void {
  const buf = r.buf
  lo = 0
  hi = 0
  let i = 0
  if (r.len - r.pos > 4) {
    for (; i < 4; ++i) {
      lo = (lo | (buf[r.pos]! & 127) << i * 7) >>> 0
      if (buf[r.pos++]! < 128) return
    }
    lo = (lo | (buf[r.pos]! & 127) << 28) >>> 0
    hi = (hi | (buf[r.pos]! & 127) >> 4) >>> 0
    if (buf[r.pos++]! < 128) return
    i = 0
  } else {
    for (; i < 3; ++i) {
      if (r.pos >= r.len) throw indexOutOfRange(r)
      lo = (lo | (buf[r.pos]! & 127) << i * 7) >>> 0
      if (buf[r.pos++]! < 128) return
    }
    // As protobufjs: the 4th byte is read without a bound check (past the end it reads as 0).
    lo = (lo | ((buf[r.pos++] ?? 0) & 127) << i * 7) >>> 0
    return
  }
  if (r.len - r.pos > 4) {
    for (; i < 5; ++i) {
      hi = (hi | (buf[r.pos]! & 127) << i * 7 + 3) >>> 0
      if (buf[r.pos++]! < 128) return
    }
  } else {
    for (; i < 5; ++i) {
      if (r.pos >= r.len) throw indexOutOfRange(r)
      hi = (hi | (buf[r.pos]! & 127) << i * 7 + 3) >>> 0
      if (buf[r.pos++]! < 128) return
    }
  }
  throw Error('invalid varint encoding')
}

/** uint64: the value as a number when exact, else protobufjs' Long (unsigned). */
function uint64 (r: Reader): Long | number {
  readLongVarint(r)
  const h = hi >>> 0
  return h < SAFE_HIGH ? h * TWO_32 + (lo >>> 0) : new Long(lo | 0, hi | 0, true)
}

/** int64: the value as a number when exact, else protobufjs' Long (signed). */
function int64 (r: Reader): Long | number {
  readLongVarint(r)
  const h = hi | 0
  return h < SAFE_HIGH && h > -SAFE_HIGH ? h * TWO_32 + (lo >>> 0) : new Long(lo | 0, hi | 0, false)
}

export function makeFrameDecoder (ReaderClass: typeof protobuf.Reader, fields: FrameFieldDecoders, recursionLimit: () => number) {
  // One reader of each kind, reused (decoding is synchronous and never re-enters this function).
  let bufferReader: Reader | null = null
  let arrayReader: Reader | null = null
  const readerFor = (input: Uint8Array): Reader => {
    if (Buffer.isBuffer(input)) {
      if (bufferReader === null) return (bufferReader = ReaderClass.create(input) as unknown as Reader)
      bufferReader.buf = input
      bufferReader.pos = 0
      bufferReader.len = input.length
      return bufferReader
    }
    // Anything else than a Uint8Array fails in Reader.create as protobufjs' decoder would.
    if (!(input instanceof Uint8Array)) return ReaderClass.create(input) as unknown as Reader
    if (arrayReader === null) return (arrayReader = ReaderClass.create(input) as unknown as Reader)
    arrayReader.buf = input
    arrayReader.pos = 0
    arrayReader.len = input.length
    return arrayReader
  }
  const { numeric, waveform, position, alarm, assessment, interpretation } = fields
  return function decodeTelemetryFrame (input: Reader | Uint8Array, length?: number, endGroup?: number, depth?: number): DecodedFrame {
    const r = input instanceof ReaderClass ? input as unknown as Reader : readerFor(input as Uint8Array)
    const n = depth ?? 0
    if (n > recursionLimit()) throw Error('maximum nesting depth exceeded')
    let c: number
    let outerLen: number | undefined
    if (length === undefined) {
      c = r.len
    } else {
      c = r.pos + length
      if (c > r.len) throw RangeError('index out of range')
      outerLen = r.len
      r.len = c
    }
    const m: DecodedFrame = { unitId: '', bootId: '', seq: 0, capturedAtMs: 0, encounterId: '', numerics: NONE, waveforms: NONE, position: null, alarms: NONE, assessment: null, interpretation: null, encounterEnded: false }
    while (r.pos < c) {
      const t = r.uint32()
      if (t === endGroup) break
      switch (t >>> 3) {
        case 1: m.unitId = r.string(); break
        case 2: m.bootId = r.string(); break
        case 3: m.seq = uint64(r); break
        case 4: m.capturedAtMs = int64(r); break
        case 5: m.encounterId = r.string(); break
        case 6:
          if (m.numerics.length === 0) m.numerics = []
          m.numerics.push(numeric(r, r.uint32(), undefined, n + 1))
          break
        case 7:
          if (m.waveforms.length === 0) m.waveforms = []
          m.waveforms.push(waveform(r, r.uint32(), undefined, n + 1))
          break
        case 8: m.position = position(r, r.uint32(), undefined, n + 1); break
        case 9:
          if (m.alarms.length === 0) m.alarms = []
          m.alarms.push(alarm(r, r.uint32(), undefined, n + 1))
          break
        case 10: m.assessment = assessment(r, r.uint32(), undefined, n + 1); break
        case 11: m.interpretation = interpretation(r, r.uint32(), undefined, n + 1); break
        case 12: m.encounterEnded = r.bool(); break
        default: r.skipType(t & 7, n); break
      }
    }
    if (outerLen !== undefined) {
      if (r.pos !== c) throw RangeError('index out of range')
      r.len = outerLen
    }
    return m
  }
}
