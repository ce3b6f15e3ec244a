/**
 * Device-side protobuf encoder for ambulink.v1.TelemetryFrame, as an ambulance's firmware would
 * have (nanopb and the like): it sizes the frame first, allocates exactly one Buffer, and writes
 * samples straight from Int32Arrays. protobufjs' general-purpose writer allocates an operation
 * object per varint (about 1,500 per 12-lead frame) and needs plain arrays; at hundreds of
 * units × 4 frames/s that garbage is what a co-hosted gateway would pay for.
 *
 * Field numbers and types are read from the contract file at load (and checked), so this cannot
 * silently drift from the schema; tests compare decodeWire() of its output with encodeFrame().
 * Like every proto3 encoder it omits fields equal to their default (0, '', false).
 */
import protobuf from 'protobufjs'
import { PROTO_PATH } from '../decoders/index.js'

export interface NumericFields { sign: number, value: number, offsetMs: number }
export interface WaveformFields {
  lead: number
  sampleRateHz: number
  microvoltsPerLsb: number
  offsetMs: number
  samples: ArrayLike<number>
}
export interface PositionFields { latitude: number, longitude: number, speedMps: number, headingDeg: number, offsetMs: number }
export interface AlarmFields { code: string, priority: number, text: string, offsetMs: number }
export interface AssessmentFields {
  stemiSuspected: boolean
  lamsScore: number
  fastPositive: boolean
  lastKnownWellMs: number
  ageYears: number
  sex: string
}
/** One frame to encode. 64-bit fields are JS numbers: exact up to 2^53, plenty for seq and ms. */
export interface FrameFields {
  unitId: string
  bootId: string
  seq: number
  capturedAtMs: number
  encounterId: string
  numerics: readonly NumericFields[]
  waveforms: readonly WaveformFields[]
  position: PositionFields | null
  alarms: readonly AlarmFields[]
  assessment: AssessmentFields | null
}

// Wire types (protobuf encoding spec).
const VARINT = 0
const I64 = 1
const LEN = 2
const I32 = 5

const root = protobuf.loadSync(PROTO_PATH)

/** Tag byte(s) value for a field, checking that the contract still has the type we write. */
function tagOf (message: string, field: string, expectType: string, wire: number): number {
  const f = root.lookupType(`ambulink.v1.${message}`).fields[field]
  if (f === undefined || f.type !== expectType) {
    throw new Error(`frame-writer: ${message}.${field} is ${f?.type ?? 'missing'} in ${PROTO_PATH}, expected ${expectType}`)
  }
  return (f.id << 3) | wire
}

const T = Object.freeze({
  unitId: tagOf('TelemetryFrame', 'unitId', 'string', LEN),
  bootId: tagOf('TelemetryFrame', 'bootId', 'string', LEN),
  seq: tagOf('TelemetryFrame', 'seq', 'uint64', VARINT),
  capturedAtMs: tagOf('TelemetryFrame', 'capturedAtMs', 'int64', VARINT),
  encounterId: tagOf('TelemetryFrame', 'encounterId', 'string', LEN),
  numerics: tagOf('TelemetryFrame', 'numerics', 'Numeric', LEN),
  waveforms: tagOf('TelemetryFrame', 'waveforms', 'Waveform', LEN),
  position: tagOf('TelemetryFrame', 'position', 'Position', LEN),
  alarms: tagOf('TelemetryFrame', 'alarms', 'DeviceAlarm', LEN),
  assessment: tagOf('TelemetryFrame', 'assessment', 'Assessment', LEN),
  nSign: tagOf('Numeric', 'sign', 'VitalSign', VARINT),
  nValue: tagOf('Numeric', 'value', 'double', I64),
  nOffset: tagOf('Numeric', 'offsetMs', 'int32', VARINT),
  wLead: tagOf('Waveform', 'lead', 'Lead', VARINT),
  wRate: tagOf('Waveform', 'sampleRateHz', 'uint32', VARINT),
  wLsb: tagOf('Waveform', 'microvoltsPerLsb', 'float', I32),
  wOffset: tagOf('Waveform', 'offsetMs', 'int32', VARINT),
  wSamples: tagOf('Waveform', 'samples', 'sint32', LEN), // packed: proto3 default
  pLat: tagOf('Position', 'latitude', 'double', I64),
  pLon: tagOf('Position', 'longitude', 'double', I64),
  pSpeed: tagOf('Position', 'speedMps', 'float', I32),
  pHeading: tagOf('Position', 'headingDeg', 'float', I32),
  pOffset: tagOf('Position', 'offsetMs', 'int32', VARINT),
  aCode: tagOf('DeviceAlarm', 'code', 'string', LEN),
  aPriority: tagOf('DeviceAlarm', 'priority', 'AlarmPriority', VARINT),
  aText: tagOf('DeviceAlarm', 'text', 'string', LEN),
  aOffset: tagOf('DeviceAlarm', 'offsetMs', 'int32', VARINT),
  sStemi: tagOf('Assessment', 'stemiSuspected', 'bool', VARINT),
  sLams: tagOf('Assessment', 'lamsScore', 'int32', VARINT),
  sFast: tagOf('Assessment', 'fastPositive', 'bool', VARINT),
  sLkw: tagOf('Assessment', 'lastKnownWellMs', 'int64', VARINT),
  sAge: tagOf('Assessment', 'ageYears', 'int32', VARINT),
  sSex: tagOf('Assessment', 'sex', 'string', LEN)
})

// ---- sizes -------------------------------------------------------------------------------

/** Bytes of a varint for a non-negative integer up to 2^53. */
function uvarintSize (n: number): number {
  if (n < 0x80) return 1
  if (n < 0x4000) return 2
  if (n < 0x200000) return 3
  if (n < 0x10000000) return 4
  let size = 4
  for (let v = Math.floor(n / 0x10000000); v > 0; v = Math.floor(v / 0x80)) size++
  return size
}
/** int32/int64 varint: negative numbers take ten bytes (two's complement, sign-extended). */
function ivarintSize (n: number): number {
  return n < 0 ? 10 : uvarintSize(n)
}
function zigzag32 (n: number): number {
  return ((n << 1) ^ (n >> 31)) >>> 0
}
function strSize (tag: number, s: string): number {
  if (s === '') return 0
  const len = Buffer.byteLength(s)
  return uvarintSize(tag) + uvarintSize(len) + len
}
function intField (tag: number, n: number): number {
  return n === 0 ? 0 : uvarintSize(tag) + ivarintSize(n)
}
function fixedField (tag: number, bytes: number, v: number): number {
  return v === 0 ? 0 : uvarintSize(tag) + bytes
}
function lenField (tag: number, len: number): number {
  return uvarintSize(tag) + uvarintSize(len) + len
}

// ---- writer ------------------------------------------------------------------------------

export class FrameWriter {
  private buf: Buffer = Buffer.alloc(0)
  private pos = 0
  // Per-call scratch. Samples are varint-encoded once, into `packed`, which also yields their
  // length for the size pass; the second pass copies them (a memcpy) into the frame.
  private waveSizes = new Int32Array(16)
  private packedStart = new Int32Array(16)
  private packedSizes = new Int32Array(16)
  private packed: Buffer = Buffer.alloc(64 * 1024)

  /** Encodes one frame into a new Buffer of exactly its size. */
  encode (f: FrameFields): Buffer {
    const nw = f.waveforms.length
    if (nw > this.waveSizes.length) {
      this.waveSizes = new Int32Array(nw)
      this.packedStart = new Int32Array(nw)
      this.packedSizes = new Int32Array(nw)
    }
    let total = 0
    for (let i = 0; i < nw; i++) total += f.waveforms[i]!.samples.length
    if (total * 5 > this.packed.length) this.packed = Buffer.alloc(total * 5) // ≤ 5 bytes per sint32
    let packedPos = 0
    let size = strSize(T.unitId, f.unitId) + strSize(T.bootId, f.bootId) +
      intField(T.seq, f.seq) + intField(T.capturedAtMs, f.capturedAtMs) + strSize(T.encounterId, f.encounterId)
    for (const n of f.numerics) size += lenField(T.numerics, numericSize(n))
    for (let i = 0; i < nw; i++) {
      const w = f.waveforms[i]!
      this.packedStart[i] = packedPos
      packedPos = packSamples(w.samples, this.packed, packedPos)
      const packed = packedPos - this.packedStart[i]!
      this.packedSizes[i] = packed
      const ws = intField(T.wLead, w.lead) + intField(T.wRate, w.sampleRateHz) +
        fixedField(T.wLsb, 4, w.microvoltsPerLsb) + intField(T.wOffset, w.offsetMs) +
        (packed === 0 ? 0 : lenField(T.wSamples, packed))
      this.waveSizes[i] = ws
      size += lenField(T.waveforms, ws)
    }
    if (f.position !== null) size += lenField(T.position, positionSize(f.position))
    for (const a of f.alarms) size += lenField(T.alarms, alarmSize(a))
    if (f.assessment !== null) size += lenField(T.assessment, assessmentSize(f.assessment))

    this.buf = Buffer.allocUnsafe(size)
    this.pos = 0
    this.str(T.unitId, f.unitId)
    this.str(T.bootId, f.bootId)
    this.int(T.seq, f.seq)
    this.int(T.capturedAtMs, f.capturedAtMs)
    this.str(T.encounterId, f.encounterId)
    for (const n of f.numerics) {
      this.uvarint(T.numerics)
      this.uvarint(numericSize(n))
      this.int(T.nSign, n.sign)
      this.double(T.nValue, n.value)
      this.int(T.nOffset, n.offsetMs)
    }
    for (let i = 0; i < nw; i++) {
      const w = f.waveforms[i]!
      this.uvarint(T.waveforms)
      this.uvarint(this.waveSizes[i]!)
      this.int(T.wLead, w.lead)
      this.int(T.wRate, w.sampleRateHz)
      this.float(T.wLsb, w.microvoltsPerLsb)
      this.int(T.wOffset, w.offsetMs)
      const packed = this.packedSizes[i]!
      if (packed > 0) {
        this.uvarint(T.wSamples)
        this.uvarint(packed)
        const start = this.packedStart[i]!
        this.pos += this.packed.copy(this.buf, this.pos, start, start + packed)
      }
    }
    if (f.position !== null) {
      const p = f.position
      this.uvarint(T.position)
      this.uvarint(positionSize(p))
      this.double(T.pLat, p.latitude)
      this.double(T.pLon, p.longitude)
      this.float(T.pSpeed, p.speedMps)
      this.float(T.pHeading, p.headingDeg)
      this.int(T.pOffset, p.offsetMs)
    }
    for (const a of f.alarms) {
      this.uvarint(T.alarms)
      this.uvarint(alarmSize(a))
      this.str(T.aCode, a.code)
      this.int(T.aPriority, a.priority)
      this.str(T.aText, a.text)
      this.int(T.aOffset, a.offsetMs)
    }
    if (f.assessment !== null) {
      const s = f.assessment
      this.uvarint(T.assessment)
      this.uvarint(assessmentSize(s))
      this.int(T.sStemi, s.stemiSuspected ? 1 : 0)
      this.int(T.sLams, s.lamsScore)
      this.int(T.sFast, s.fastPositive ? 1 : 0)
      this.int(T.sLkw, s.lastKnownWellMs)
      this.int(T.sAge, s.ageYears)
      this.str(T.sSex, s.sex)
    }
    if (this.pos !== size) throw new Error(`frame-writer: sized ${size} bytes, wrote ${this.pos}`)
    const out = this.buf
    this.buf = Buffer.alloc(0)
    return out
  }

  private uvarint (n: number): void {
    const buf = this.buf
    while (n >= 0x80) {
      buf[this.pos++] = (n % 0x80) | 0x80
      n = Math.floor(n / 0x80)
    }
    buf[this.pos++] = n
  }

  /** int32/int64/uint/enum/bool field, omitted when 0. */
  private int (tag: number, n: number): void {
    if (n === 0) return
    this.uvarint(tag)
    if (n >= 0) {
      this.uvarint(n)
      return
    }
    // Negative: 64-bit two's complement, always ten bytes. Rare (negative offsets), so BigInt.
    let v = BigInt.asUintN(64, BigInt(n))
    for (let i = 0; i < 9; i++) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80
      v >>= 7n
    }
    this.buf[this.pos++] = Number(v)
  }

  private str (tag: number, s: string): void {
    if (s === '') return
    this.uvarint(tag)
    this.uvarint(Buffer.byteLength(s))
    this.pos += this.buf.write(s, this.pos, 'utf8')
  }

  private double (tag: number, v: number): void {
    if (v === 0) return
    this.uvarint(tag)
    this.buf.writeDoubleLE(v, this.pos)
    this.pos += 8
  }

  private float (tag: number, v: number): void {
    if (v === 0) return
    this.uvarint(tag)
    this.buf.writeFloatLE(v, this.pos)
    this.pos += 4
  }
}

/** The hot loop: samples as zigzag varints (packed sint32) into `buf` at `pos`; returns the end. */
function packSamples (s: ArrayLike<number>, buf: Buffer, pos: number): number {
  for (let j = 0, n = s.length; j < n; j++) {
    let z = zigzag32(s[j]!)
    while (z >= 0x80) {
      buf[pos++] = (z & 0x7f) | 0x80
      z >>>= 7
    }
    buf[pos++] = z
  }
  return pos
}

function numericSize (n: NumericFields): number {
  return intField(T.nSign, n.sign) + fixedField(T.nValue, 8, n.value) + intField(T.nOffset, n.offsetMs)
}
function positionSize (p: PositionFields): number {
  return fixedField(T.pLat, 8, p.latitude) + fixedField(T.pLon, 8, p.longitude) + fixedField(T.pSpeed, 4, p.speedMps) +
    fixedField(T.pHeading, 4, p.headingDeg) + intField(T.pOffset, p.offsetMs)
}
function alarmSize (a: AlarmFields): number {
  return strSize(T.aCode, a.code) + intField(T.aPriority, a.priority) + strSize(T.aText, a.text) + intField(T.aOffset, a.offsetMs)
}
function assessmentSize (s: AssessmentFields): number {
  return intField(T.sStemi, s.stemiSuspected ? 1 : 0) + intField(T.sLams, s.lamsScore) + intField(T.sFast, s.fastPositive ? 1 : 0) +
    intField(T.sLkw, s.lastKnownWellMs) + intField(T.sAge, s.ageYears) + strSize(T.sSex, s.sex)
}

const shared = new FrameWriter()
/** Encodes a frame with a module-wide writer (encoding is synchronous, so sharing is safe). */
export function writeFrame (f: FrameFields): Buffer {
  return shared.encode(f)
}
