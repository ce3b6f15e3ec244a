/**
 * Abuse limits shared by the MQTT listeners and the HTTP ingest:
 * - ConnectionLimiter: open connections per remote address (connection floods).
 * - PasswordThrottle: failed password (scrypt) logins per address, as a token bucket. Once an
 *   address's bucket is empty its password checks run one at a time, so a guessing address
 *   holds at most one scrypt thread. Nothing is ever refused unchecked: a correct password is
 *   always let through (issue #10, item 11), and device tokens never pass through here at all
 *   (they are checked by HMAC in microseconds, see credentials.ts).
 *
 * Address keys are capped and pruned, so a stream of addresses cannot grow them.
 */

export interface ClientLimits {
  /** Subscriptions one client may hold (MAX_SUBSCRIPTIONS_PER_CLIENT). */
  maxSubscriptions: number
  /** Longest topic or topic filter accepted, characters (MAX_TOPIC_LENGTH). */
  maxTopicLength: number
  /** QoS 1 messages sent to a client and not yet acknowledged (MAX_INFLIGHT_PER_CLIENT). */
  maxInflight: number
  /** Packets a client may send before its CONNECT is authenticated (aedes queueLimit, MQTT_QUEUE_LIMIT). */
  queueLimit: number
  /** QoS 1 messages queued for a persistent (clean=false) client, offline or not yet acknowledged (MAX_QUEUED_PER_CLIENT). */
  maxQueued: number
}

/** Per-client MQTT limits (issue #10, item 13); gateway/config.ts reads its defaults here. */
export const CLIENT_LIMIT_DEFAULTS: ClientLimits = { maxSubscriptions: 100, maxTopicLength: 256, maxInflight: 1000, queueLimit: 42, maxQueued: 500 }

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

export interface PasswordThrottleOptions {
  /** Failed password logins an address may make per window before its checks are serialised (0 = never). */
  maxFailuresPerAddress: number
  /** Window over which the bucket refills completely, ms. */
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

export class PasswordThrottle {
  private readonly byAddress: Buckets
  /** Per throttled address, the tail of its queue of password checks. */
  private readonly queues = new Map<string, Promise<void>>()

  constructor (o: PasswordThrottleOptions) {
    this.byAddress = new Buckets(o.maxFailuresPerAddress, o.windowMs, o.now ?? Date.now)
  }

  /** Whether `address` has used up its failures (its checks now run one at a time). */
  throttled (address: string): boolean { return this.byAddress.empty(address) }

  /** Runs one password check for `address`: at once, or after the address's earlier ones. */
  run<T> (address: string, check: () => Promise<T>): Promise<T> {
    if (!this.byAddress.empty(address)) return check()
    const prev = this.queues.get(address) ?? Promise.resolve()
    const result = prev.then(check)
    const tail = result.then(() => {}, () => {})
    this.queues.set(address, tail)
    void tail.then(() => { if (this.queues.get(address) === tail) this.queues.delete(address) })
    return result
  }

  /** Records a failed password login from `address`. */
  failed (address: string): void { this.byAddress.take(address) }
}
