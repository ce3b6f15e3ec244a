/**
 * The Waveform decoder, by hand: protobufjs' generated one pushes every sample into a JS array
 * (1,500 per 12-lead frame). Those arrays live until the frame's fsync completes, so under load
 * every young-generation GC copies them (a quarter of the gateway's CPU went to scavenges at
 * 5,000 frames/s). Here the packed sint32 samples are read into Int32Array views, whose storage
 * the GC never copies.
 *
 * Byte-for-byte the same semantics as the generated code it replaces (protobufjs 7,
 * `Waveform$decode`): same fields, same varint reading (uint32: five bytes, then five more
 * skipped), same errors for the same malformed input, recursion limit and end-group handling.
 */
import type protobuf from 'protobufjs'

export interface DecodedWaveform {
  lead: number
  sampleRateHz: number
  microvoltsPerLsb: number
  offsetMs: number
  samples: Int32Array
}

/** The parts of protobufjs' Reader used here (public fields of its Reader class). */
interface Reader {
  buf: Uint8Array
  pos: number
  len: number
  uint32: () => number
  int32: () => number
  sint32: () => number
  float: () => number
  skipType: (wireType: number, depth?: number) => unknown
}

const EMPTY = new Int32Array(0)

/**
 * Results are views into shared arenas: allocating an Int32Array costs ~2 µs (its own
 * off-heap store), a view ~0.1 µs. An arena (64 KiB, ~10 12-lead frames) is freed once no frame
 * refers to it; nothing keeps decoded frames for long (consumers copy what they keep). Samples
 * are decoded straight into the arena past `arenaUsed` (no scratch copy): only a waveform that
 * decodes completely claims its samples by advancing `arenaUsed`, so a malformed one leaves
 * nothing behind and every view handed out stays untouched.
 */
const ARENA_INTS = 16384
let arena = newArena(ARENA_INTS)
let arenaUsed = 0

/**
 * An arena of `n` ints, not zeroed: only samples written by the decoder are ever handed out
 * (views end at arenaUsed + k), and zeroing 64 KiB that is then overwritten cost more than the
 * decoding of the samples (issue 12: `reserve` took about 8 µs per 12-lead frame at ingest).
 */
function newArena (n: number): Int32Array {
  const b = Buffer.allocUnsafeSlow(n * 4)
  return new Int32Array(b.buffer, b.byteOffset, n)
}

/**
 * Makes room for `need` samples of the waveform being decoded, which has `k` so far at
 * arena[arenaUsed, arenaUsed + k): a fresh arena when this one is too small (the k samples move).
 */
function reserve (k: number, need: number): void {
  if (arenaUsed + need <= arena.length) return
  const fresh = newArena(Math.max(ARENA_INTS, need))
  if (k > 0) fresh.set(arena.subarray(arenaUsed, arenaUsed + k))
  arena = fresh
  arenaUsed = 0
}

function outOfRange (): RangeError {
  return new RangeError('index out of range')
}

export function makeWaveformDecoder (ReaderClass: typeof protobuf.Reader, recursionLimit: () => number) {
  return function decodeWaveform (input: Reader | Uint8Array, length?: number, endGroup?: number, depth?: number): DecodedWaveform {
    const r = (input instanceof ReaderClass ? input : ReaderClass.create(input as Uint8Array)) as unknown as Reader
    const n = depth ?? 0
    if (n > recursionLimit()) throw Error('maximum nesting depth exceeded')
    let end: number
    let outerLen: number | undefined
    if (length === undefined) {
      end = r.len
    } else {
      end = r.pos + length
      if (end > r.len) throw outOfRange()
      outerLen = r.len
      r.len = end
    }
    const m: DecodedWaveform = { lead: 0, sampleRateHz: 0, microvoltsPerLsb: 0, offsetMs: 0, samples: EMPTY }
    let k = 0
    while (r.pos < end) {
      const t = r.uint32()
      if (t === endGroup) break
      switch (t >>> 3) {
        case 1: m.lead = r.int32(); break
        case 2: m.sampleRateHz = r.uint32(); break
        case 3: m.microvoltsPerLsb = r.float(); break
        case 4: m.offsetMs = r.int32(); break
        case 5:
          if ((t & 7) === 2) {
            const stop = r.uint32() + r.pos
            if (stop > r.len) throw outOfRange()
            // Every varint takes at least one byte: the chunk's length bounds its sample count.
            reserve(k, k + (stop - r.pos))
            k = readPackedSint32(r.buf, r.pos, stop, arenaUsed + k) - arenaUsed
            r.pos = stop
          } else {
            reserve(k, k + 1)
            arena[arenaUsed + k++] = r.sint32()
          }
          break
        default:
          r.skipType(t & 7, n)
          break
      }
    }
    if (outerLen !== undefined) {
      if (r.pos !== end) throw outOfRange()
      r.len = outerLen
    }
    if (k > 0) {
      m.samples = arena.subarray(arenaUsed, arenaUsed + k)
      arenaUsed += k
    }
    return m
  }
}

/**
 * Zigzag varints in buf[pos, stop) written to the arena from index k; returns the new k.
 * protobufjs' uint32: up to five bytes (the fifth contributes 4 bits); a fifth byte with its
 * continuation bit set is followed by five more bytes that are skipped unread.
 */
function readPackedSint32 (buf: Uint8Array, pos: number, stop: number, k: number): number {
  const out = arena
  while (pos < stop) {
    let b = buf[pos++]!
    let v = b & 127
    if (b >= 128) {
      b = buf[pos++]!
      v |= (b & 127) << 7
      if (b >= 128) {
        b = buf[pos++]!
        v |= (b & 127) << 14
        if (b >= 128) {
          b = buf[pos++]!
          v |= (b & 127) << 21
          if (b >= 128) {
            b = buf[pos++]!
            v |= (b & 15) << 28
            if (b >= 128) pos += 5
          }
        }
      }
    }
    out[k++] = (v >>> 1) ^ -(v & 1)
  }
  // Reading past the chunk (a truncated varint) fails as protobufjs does, with the limit at the
  // chunk's end. Only the last varint can run past it, so one test after the loop is enough: the
  // sample it wrote lies within the room reserved (no more varints start in the chunk than it has
  // bytes) and is never claimed. (Bytes past the buffer read as undefined: `& 127` makes them 0.)
  if (pos > stop) throw outOfRange()
  return k
}
