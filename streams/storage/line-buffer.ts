/**
 * An append-only ASCII buffer for building line protocol without intermediate strings: the
 * per-sample path of an ECG frame (125 instants × 12 leads) writes digits straight into bytes.
 * Building the same text by string concatenation cost ~300 µs per 12-lead frame and then a
 * second pass to encode it (profile in the README (Scale-out)); this writes it once.
 *
 * Integers are written digit by digit; any other number goes through String(), so the text is
 * always exactly what `${n}` would give (a replayed frame must produce byte-identical lines).
 */

const MINUS = 0x2d
const ZERO = 0x30

export class LineBuffer {
  buf: Buffer
  /** Bytes written so far (the first `headroom` bytes are reserved for the caller). */
  length: number

  /** @param headroom bytes left at the front for the caller (e.g. a spool record header) */
  constructor (capacity: number, readonly headroom = 0) {
    this.buf = Buffer.allocUnsafe(Math.max(capacity, headroom + 64))
    this.length = headroom
  }

  /** Makes room for at least `n` more bytes. */
  ensure (n: number): void {
    const need = this.length + n
    if (need <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2))
    this.buf.copy(next, 0, 0, this.length)
    this.buf = next
  }

  /** Forgets what was written (keeps the capacity): the buffer is reused for the next frame. */
  reset (): void {
    this.length = this.headroom
  }

  /**
   * An exact-size copy of everything written, headroom included: one allocation and one
   * memcpy per frame, while this scratch buffer is reused. (Carving records out of shared 1 MiB
   * slabs instead saved the copy but cost far more: a slab outlives young-generation GCs while
   * any record in it waits for its fsync, and promoted slabs made V8 run full mark-compacts —
   * 27-29 % of the gateway's CPU under saturation against 7 % with this copy.)
   */
  take (): Buffer {
    const out = Buffer.allocUnsafe(this.length)
    this.buf.copy(out, 0, 0, this.length)
    return out
  }

  /** ASCII text (ids are validated tag-safe ASCII; numbers print as ASCII). */
  ascii (s: string): void {
    this.ensure(s.length)
    this.length += this.buf.write(s, this.length, 'latin1')
  }

  bytes (b: Buffer): void {
    this.ensure(b.length)
    b.copy(this.buf, this.length)
    this.length += b.length
  }

  byte (c: number): void {
    this.ensure(1)
    this.buf[this.length++] = c
  }

  /** A number exactly as String(n) prints it. */
  num (n: number): void {
    if (Number.isSafeInteger(n) && !Object.is(n, -0)) this.int(n)
    else this.ascii(String(n))
  }

  /** A safe integer (caller guarantees it), in decimal. Room is ensured here. */
  int (n: number): void {
    this.ensure(17)
    this.length = writeInt(this.buf, this.length, n)
  }

  /** The text written (without the headroom), for callers that want a string. */
  toString (): string {
    return this.buf.toString('latin1', this.headroom, this.length)
  }
}

/**
 * Writes safe integer `n` in decimal at `at` (room for 17 bytes must exist); returns the end.
 * Exported for loops that hold the buffer in a local (line-protocol.ts ECG path).
 * (A digit lookup table measured no faster than int32 division here.)
 */
export function writeInt (b: Buffer, at: number, n: number): number {
  if (n < 0) {
    b[at++] = MINUS
    n = -n
  }
  if (n < 10) {
    b[at] = ZERO + n
    return at + 1
  }
  if (n < 0x80000000) return writeSmall(b, at, n)
  // Beyond int32 (timestamps in µs, ~1.8e15): the top digits, then the last 8 zero-padded,
  // each part in int32 arithmetic (exact for safe integers below 2^31 · 1e8).
  const hi = Math.floor(n / 1e8)
  let lo = n - hi * 1e8
  at = hi < 10 ? (b[at] = ZERO + hi, at + 1) : writeSmall(b, at, hi)
  for (let i = at + 7; i >= at; i--) {
    const q = (lo / 10) | 0
    b[i] = ZERO + lo - q * 10
    lo = q
  }
  return at + 8
}

/** 10 ≤ n < 2^31 (ECG samples): int32 arithmetic, the digit count by comparison. */
function writeSmall (b: Buffer, at: number, n: number): number {
  const digits = n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : n < 100000 ? 5 : n < 1000000 ? 6 : n < 10000000 ? 7 : n < 100000000 ? 8 : n < 1000000000 ? 9 : 10
  const end = at + digits
  let i = end
  while (n >= 10) {
    const q = (n / 10) | 0
    b[--i] = ZERO + n - q * 10
    n = q
  }
  b[--i] = ZERO + n
  return end
}
