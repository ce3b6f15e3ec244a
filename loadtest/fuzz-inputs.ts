/**
 * Input generators for loadtest/fuzz.ts: mutations of valid frames, random bytes, fields that
 * declare huge lengths, and deep nesting (unknown groups inside unknown groups, which protobuf
 * decoders skip recursively). Deterministic for a given seed, so a failing input can be
 * regenerated from (seed, index).
 */
import { encodeFrame } from '../decoders/index.js'
import { UnitFrameSource } from '../simulator/frame-source.js'
import { Rng } from '../simulator/rng.js'

export type InputKind = 'mutated' | 'random' | 'huge-length' | 'deep-nesting' | 'valid'
export const INPUT_KINDS: readonly InputKind[] = ['mutated', 'random', 'huge-length', 'deep-nesting', 'valid']

function varint (n: number): number[] {
  const out: number[] = []
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return out
}

function tag (field: number, wireType: number): number[] { return varint(field * 8 + wireType) }

export class FuzzInputs {
  private readonly rng: Rng
  private readonly seeds: Buffer[]

  /** @param unit the unit id valid seeds carry (the authenticated unit for HTTP) */
  constructor (seed: number, unit: string, nowMs: number) {
    this.rng = new Rng(seed)
    this.seeds = []
    for (const leads of [12, 1, 0] as const) {
      const src = new UnitFrameSource({ unitId: unit, startMs: nowMs - 60_000, profile: 'stemi', seed: seed + leads, leads })
      for (let i = 0; i < 4; i++) this.seeds.push(src.nextFrame().bytes)
    }
    this.seeds.push(Buffer.from(encodeFrame({ unitId: unit, bootId: 'b', seq: 1, capturedAtMs: nowMs - 1000, numerics: [{ sign: 1, value: 80, offsetMs: 0 }] })))
  }

  next (): { kind: InputKind, bytes: Buffer } {
    const r = this.rng.next()
    if (r < 0.70) return { kind: 'mutated', bytes: this.mutated() }
    if (r < 0.82) return { kind: 'random', bytes: this.random() }
    if (r < 0.91) return { kind: 'huge-length', bytes: this.hugeLength() }
    if (r < 0.96) return { kind: 'deep-nesting', bytes: this.deepNesting() }
    return { kind: 'valid', bytes: this.rng.pick(this.seeds) }
  }

  private mutated (): Buffer {
    const rng = this.rng
    let b = Buffer.from(rng.pick(this.seeds))
    const n = rng.int(1, 8)
    for (let m = 0; m < n && b.length > 0; m++) {
      const at = rng.int(0, b.length - 1)
      switch (rng.int(0, 7)) {
        case 0: b[at] = b[at]! ^ (1 << rng.int(0, 7)); break
        case 1: b[at] = rng.int(0, 255); break
        case 2: b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: rng.int(1, 16) }, () => rng.int(0, 255))), b.subarray(at)]); break
        case 3: b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + rng.int(1, 64)))]); break
        case 4: b = b.subarray(0, at); break
        case 5: b = Buffer.concat([b, b.subarray(at, Math.min(b.length, at + rng.int(1, 512)))]); break
        case 6: { // a varint-looking byte run: lengths and numbers at their extremes
          const run = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01].slice(rng.int(0, 8)))
          b = Buffer.concat([b.subarray(0, at), run, b.subarray(at + 1)])
          break
        }
        default: { // splice the tail of another frame
          const o = rng.pick(this.seeds)
          b = Buffer.concat([b.subarray(0, at), o.subarray(rng.int(0, o.length - 1))])
        }
      }
    }
    return b
  }

  private random (): Buffer {
    const n = this.rng.next() < 0.9 ? this.rng.int(0, 256) : this.rng.int(257, 65_536)
    const b = Buffer.allocUnsafe(n)
    for (let i = 0; i < n; i++) b[i] = this.rng.int(0, 255)
    return b
  }

  /** A length-delimited field (known or unknown, top level or inside a waveform) claiming far more bytes than follow. */
  private hugeLength (): Buffer {
    const rng = this.rng
    const claim = rng.pick([0x7fffffff, 0xffffffff, 2 ** 28, 1 << 20, 65_536 + rng.int(0, 1000)])
    const field = rng.pick([1, 2, 5, 6, 7, 8, 9, 10, rng.int(11, 2000)])
    const body = Buffer.from(Array.from({ length: rng.int(0, 32) }, () => rng.int(0, 255)))
    const head = rng.next() < 0.5
      ? Buffer.from([...tag(field, 2), ...varint(claim)])
      // waveforms(7) { samples(5) packed, length `claim` }
      : Buffer.from([...tag(7, 2), ...varint(claim + 8), ...tag(5, 2), ...varint(claim)])
    return Buffer.concat([rng.pick(this.seeds).subarray(0, rng.int(0, 64)), head, body])
  }

  /** Unknown groups nested `depth` deep (StartGroup …, maybe closed), or nested unknown messages. */
  private deepNesting (): Buffer {
    const rng = this.rng
    const prefix = rng.pick(this.seeds).subarray(0, rng.int(0, 200))
    if (rng.next() < 0.3) return Buffer.concat([prefix, this.nestedMessages[rng.int(0, this.nestedMessages.length - 1)]!])
    const depth = rng.pick([100, 1000, 10_000, 100_000, rng.int(2, 200_000)])
    const field = rng.int(11, 100)
    const open = Buffer.from(tag(field, 3))
    const close = Buffer.from(tag(field, 4))
    const closed = rng.next() < 0.5
    const body = Buffer.allocUnsafe(depth * (open.length + (closed ? close.length : 0)))
    body.fill(open, 0, depth * open.length)
    if (closed) body.fill(close, depth * open.length)
    return Buffer.concat([prefix, body])
  }

  /** Length-delimited unknown fields, each wrapping the next, 10 to 5000 deep (built once). */
  private readonly nestedMessages: Buffer[] = [10, 100, 1000, 5000].map(depth => {
    const parts: Buffer[] = [Buffer.from([8, 1])]
    let len = 2
    for (let i = 0; i < depth; i++) {
      const head = Buffer.from([...tag(50, 2), ...varint(len)])
      parts.push(head)
      len += head.length
    }
    return Buffer.concat(parts.reverse())
  })
}
