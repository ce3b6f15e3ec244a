// The hand-written TelemetryFrame decoder (decoders/frame-decode.ts) against the protobufjs
// generated decoder it replaces (a separate load of the same .proto, nothing replaced in it):
// every field's value, or the same error with the same message, on simulator frames of every
// patient profile (numerics, positions, alarms, assessments, 12-lead interpretations), on
// thousands of mutated and truncated ones, and on hand-built frames at the edges of the 64-bit
// fields, with fields of the wrong wire type, unknown fields and groups. seq and captured_at_ms
// are compared as exact decimals (the hand decoder gives numbers where they are exact, Longs
// elsewhere), samples as plain arrays.
import Long from 'long'
import protobuf from 'protobufjs'
import { describe, expect, it } from 'vitest'
import { FrameDecoder, PROTO_PATH, decodeWire } from '../decoders/index.js'
import { UnitFrameSource } from '../simulator/frame-source.js'
import { Rng } from '../simulator/rng.js'
import { PATIENT_PROFILES } from '../simulator/vitals.js'

/** The simulated frames' start (any fixed instant: a start taken from the clock made the frames differ per run). */
const START_MS = Date.UTC(2026, 10, 30, 12)

const refRoot = protobuf.loadSync(PROTO_PATH)
const reference = refRoot.lookupType('ambulink.v1.TelemetryFrame')

/** A decoded message as plain data, field by field of its type (defaults included). */
function plain (type: protobuf.Type, m: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of type.fieldsArray) {
    const v = m[f.name]
    const one = (x: unknown): unknown => {
      if (Long.isLong(x)) return `long ${(x as Long).toString()}`
      if (typeof x === 'number' && f.long) return `long ${String(x)}`
      if (f.resolvedType instanceof protobuf.Type && x !== null && x !== undefined) return plain(f.resolvedType, x as Record<string, unknown>)
      return x
    }
    out[f.name] = f.repeated ? Array.from(v as ArrayLike<unknown>, one) : one(v)
  }
  return out
}

/**
 * What both decoders must agree on: the frame as plain data, or the error and its message. With
 * `waveforms`, an "index out of range" is compared without the positions protobufjs adds: the
 * Waveform decoder (waveform-decode.ts, unchanged here) has always given the short message.
 */
function outcome (decode: () => unknown, waveforms: boolean): string {
  try {
    return JSON.stringify(plain(reference, decode() as Record<string, unknown>))
  } catch (err) {
    const message = waveforms ? (err as Error).message.replace(/^index out of range: .*$/, 'index out of range') : (err as Error).message
    return `error: ${(err as Error).constructor.name}: ${message}`
  }
}

const agree = (input: Uint8Array, what: string, waveforms = false): string => {
  const mine = outcome(() => decodeWire(input), waveforms)
  expect(mine, what).toBe(outcome(() => reference.decode(input), waveforms))
  return mine
}

/** The frame with two device alarms added (re-encoded by protobufjs). */
function withAlarms (bytes: Uint8Array, i: number): Uint8Array {
  const m = reference.decode(bytes) as unknown as { alarms: unknown[] }
  m.alarms = [
    { code: 'SPO2_LOW', priority: 3, text: `SpO2 low ${i}`, offsetMs: -i },
    { code: 'LEAD_OFF', priority: 1, text: '', offsetMs: i * 3, ended: true }
  ]
  return reference.encode(reference.fromObject(m)).finish()
}

describe('TelemetryFrame decoder', () => {
  it('agrees with protobufjs on simulator frames of every profile, mutated and truncated, as Buffer and Uint8Array', () => {
    const rng = new Rng(17)
    let errors = 0
    let interpretations = 0
    let assessments = 0
    let alarms = 0
    for (const [p, profile] of PATIENT_PROFILES.entries()) {
      // A fixed start: the frames, and so the fields each kind of frame exercises, are the same at every run.
      const src = new UnitFrameSource({ unitId: `u${p}`, startMs: START_MS, profile, seed: 40 + p })
      for (let i = 0; i < 700; i++) {
        let bytes: Uint8Array = src.nextFrame().bytes
        // Device alarms are rare in 3 minutes of a simulated patient: every 7th frame carries
        // some (one ended, offsets of both signs), so the alarm fields are always exercised.
        if (i % 7 === 3) bytes = withAlarms(bytes, i)
        const b = Buffer.from(bytes)
        const mutations = i % 3 === 0 ? 0 : 1 + Math.floor(rng.next() * 4)
        for (let m = 0; m < mutations; m++) b[Math.floor(rng.next() * b.length)] = Math.floor(rng.next() * 256)
        const input = i % 5 === 2 ? b.subarray(0, Math.floor(rng.next() * b.length)) : b
        const mine = agree(i % 2 === 0 ? input : new Uint8Array(input), `${profile} frame ${i}`, true)
        if (mine.startsWith('error')) errors++
        else {
          if (mine.includes('"interpretation":{')) interpretations++
          if (mine.includes('"assessment":{')) assessments++
          if (mine.includes('"alarms":[{')) alarms++
        }
      }
    }
    expect(errors, 'some inputs were malformed').toBeGreaterThan(300)
    expect(interpretations, 'frames with an interpretation').toBeGreaterThan(0)
    expect(assessments, 'frames with an assessment').toBeGreaterThan(0)
    expect(alarms, 'frames with alarms').toBeGreaterThan(0)
  })

  it('agrees on seq and captured_at_ms at the edges of 2^21, 2^32, 2^53 and 2^64, in every varint length', () => {
    const edges = [0n, 1n, 127n, 128n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 52n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n]
    const highs = [0x1fffff, 0x200000, 0x200001, -0x1fffff, -0x200000, -0x200001, -1]
    const values = [...edges, ...edges.map(v => -v), ...highs.map(h => BigInt.asUintN(64, BigInt(h) << 32n) | 0xffffffffn)]
    for (const v of values) {
      const u = BigInt.asUintN(64, v)
      const long = Long.fromString(u.toString(), true)
      for (const [field, tag] of [['seq', 24], ['captured', 32]] as const) {
        const w = protobuf.Writer.create().uint32(10).string('u').uint32(tag).uint64(long)
        // Also cut at every byte of the varint: the errors must match too.
        const bytes = w.finish()
        for (let cut = bytes.length; cut >= bytes.length - 10 && cut > 3; cut--) agree(bytes.subarray(0, cut), `${field} ${v} cut at ${cut}`)
      }
    }
  })

  it('agrees on fields of the wrong wire type, unknown fields, groups and nested limits', () => {
    const rng = new Rng(23)
    const cases: Uint8Array[] = []
    // Each known field number with each wire type, followed by a few random bytes.
    for (let field = 1; field <= 14; field++) {
      for (const wire of [0, 1, 2, 3, 4, 5, 6, 7]) {
        for (let k = 0; k < 6; k++) {
          const tail = Array.from({ length: 1 + Math.floor(rng.next() * 12) }, () => Math.floor(rng.next() * 256))
          const w = protobuf.Writer.create().uint32(10).string('unit-1').uint32(field << 3 | wire)
          cases.push(Buffer.concat([w.finish(), Buffer.from(tail)]))
        }
      }
    }
    // Deeply nested groups in an unknown field: the recursion limit applies as in protobufjs.
    cases.push(Buffer.concat([Buffer.from([0x0a, 0x01, 0x75]), Buffer.alloc(200, 0xab)]))
    cases.push(Buffer.from([...Array(120).fill(0x7b), ...Array(120).fill(0x7c)]))
    for (const [i, c] of cases.entries()) agree(c, `case ${i}`, true)
  })

  it('hands the validator the same frame as before: seq decimals and capture times from numbers and Longs alike', () => {
    const d = new FrameDecoder()
    const now = 1_700_000_000_000
    const frame = (seq: bigint, captured: bigint): Uint8Array => protobuf.Writer.create()
      .uint32(10).string('u').uint32(18).string('b').uint32(24).uint64(Long.fromString(seq.toString(), true))
      .uint32(32).int64(Long.fromString(captured.toString(), false)).finish()
    for (const seq of [1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n]) expect(d.decode(frame(seq, BigInt(now)), 'u', now).seq).toBe(seq.toString())
    expect(d.decode(frame(1n, BigInt(now)), 'u', now).capturedAtMs).toBe(now)
    // A capture time past the safe integers is refused, not rounded.
    expect(() => d.decode(frame(1n, 2n ** 62n), 'u', now)).toThrow(/plausible Unix time/)
    expect(() => d.decode(frame(1n, -(2n ** 62n)), 'u', now)).toThrow(/plausible Unix time/)
  })
})
