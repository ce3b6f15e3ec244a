/**
 * Abuse limits shared by the MQTT listeners and the HTTP ingest:
 * - ConnectionLimiter: open connections per remote address (connection floods).
 * - LoginLimiter: failed logins per address and per registered unit, as token buckets. Once a
 *   bucket is empty, logins from that address / for that unit are refused at once, without
 *   running scrypt (a brute force must not buy ~30 ms of CPU per guess either).
 *
 * Both hold one small entry per key and prune themselves, so a stream of spoofed names cannot
 * grow them: unit keys are taken only for registered units, address keys are capped.
 */

/** Keys kept at most per limiter; beyond it full buckets / idle addresses are dropped first. */
const MAX_KEYS = 65_536

export class ConnectionLimiter {
  private readonly open = new Map<string, number>()

  /** @param maxPerAddress open connections allowed per remote address (0 = no limit) */
  constructor (private readonly maxPerAddress: number) {}

  /** Takes a slot for `address`; false when it already holds maxPerAddress connections. */
  acquire (address: string): boolean {
    const n = this.open.get(address) ?? 0
    if (this.maxPerAddress > 0 && n >= this.maxPerAddress) return false
    this.open.set(address, n + 1)
    return true
  }

  release (address: string): void {
    const n = (this.open.get(address) ?? 1) - 1
    if (n <= 0) this.open.delete(address)
    else this.open.set(address, n)
  }

  count (address: string): number { return this.open.get(address) ?? 0 }
}

export interface LoginLimiterOptions {
  /** Failed logins an address may make per window before it is refused outright. */
  maxFailuresPerAddress: number
  /** Failed logins a unit (or user) may suffer per window before it is refused outright. */
  maxFailuresPerName: number
  /** Window over which the buckets refill completely, ms. */
  windowMs: number
  now?: () => number
}

interface Bucket { tokens: number, at: number }

class Buckets {
  private readonly map = new Map<string, Bucket>()
  constructor (private readonly capacity: number, private readonly windowMs: number, private readonly now: () => number) {}

  private refill (b: Bucket, t: number): void {
    b.tokens = Math.min(this.capacity, b.tokens + (t - b.at) * this.capacity / this.windowMs)
    b.at = t
  }

  empty (key: string): boolean {
    if (this.capacity === 0) return false
    const b = this.map.get(key)
    if (b === undefined) return false
    this.refill(b, this.now())
    return b.tokens < 1
  }

  take (key: string): void {
    if (this.capacity === 0) return
    const t = this.now()
    let b = this.map.get(key)
    if (b === undefined) {
      if (this.map.size >= MAX_KEYS) this.prune(t)
      b = { tokens: this.capacity, at: t }
      this.map.set(key, b)
    }
    this.refill(b, t)
    b.tokens = Math.max(0, b.tokens - 1)
  }

  private prune (t: number): void {
    for (const [k, b] of this.map) {
      this.refill(b, t)
      if (b.tokens >= this.capacity) this.map.delete(k)
    }
    // Still full of live attackers: forget the oldest (Map keeps insertion order).
    for (const k of this.map.keys()) {
      if (this.map.size < MAX_KEYS / 2) break
      this.map.delete(k)
    }
  }
}

export class LoginLimiter {
  private readonly byAddress: Buckets
  private readonly byName: Buckets

  constructor (o: LoginLimiterOptions) {
    const now = o.now ?? Date.now
    this.byAddress = new Buckets(o.maxFailuresPerAddress, o.windowMs, now)
    this.byName = new Buckets(o.maxFailuresPerName, o.windowMs, now)
  }

  /** Why a login must be refused without checking the secret, or null to go ahead. */
  blocked (address: string, name: string | null): 'address' | 'unit' | null {
    if (this.byAddress.empty(address)) return 'address'
    if (name !== null && this.byName.empty(name)) return 'unit'
    return null
  }

  /** Records a failed login. `name` only when it is registered (unknown names are not keys). */
  failed (address: string, name: string | null): void {
    this.byAddress.take(address)
    if (name !== null) this.byName.take(name)
  }
}
