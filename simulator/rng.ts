/**
 * A small seeded PRNG for the simulator. Tests need a fleet that does the same thing on every
 * run (a deteriorating patient that alarms at the same minute), and the generators draw a few
 * random numbers per beat or per second, so speed matters less than being reproducible.
 */

/** mulberry32: 32-bit state, passes the usual smoke tests, one multiply per draw. */
export class Rng {
  private state: number
  private spare = Number.NaN

  constructor (seed: number) {
    // Any number works as a seed; mix it so that seeds 1, 2, 3 start far apart.
    this.state = (Math.imul(seed | 0, 0x9e3779b1) ^ 0x85ebca6b) >>> 0
  }

  /** Uniform in [0, 1). */
  next (): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Uniform in [lo, hi). */
  range (lo: number, hi: number): number {
    return lo + (hi - lo) * this.next()
  }

  /** Integer in [lo, hi]. */
  int (lo: number, hi: number): number {
    return lo + Math.floor((hi - lo + 1) * this.next())
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  gaussian (): number {
    if (!Number.isNaN(this.spare)) {
      const s = this.spare
      this.spare = Number.NaN
      return s
    }
    let u = 0
    while (u === 0) u = this.next()
    const v = this.next()
    const r = Math.sqrt(-2 * Math.log(u))
    this.spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }

  pick<T> (items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)]
    if (item === undefined) throw new RangeError('pick from an empty list')
    return item
  }

  /** `n` lowercase hex digits (ids that match the contract's id pattern). */
  hex (n: number): string {
    let s = ''
    while (s.length < n) s += Math.floor(this.next() * 0x10000).toString(16).padStart(4, '0')
    return s.slice(0, n)
  }

  /** A fresh 32-bit seed for a child generator, so each unit's draws are independent. */
  fork (): Rng {
    return new Rng(Math.floor(this.next() * 4294967296))
  }
}
