/**
 * A user-space TCP proxy that makes a loopback link behave like a mobile one, between simulated
 * devices and the gateway:
 * - latency with jitter, per direction, order kept (a chunk never overtakes the one before);
 * - a bandwidth cap per connection and direction (bytes/s), as serialisation delay;
 * - connection drops at random intervals, like cell handovers: both sockets reset (RST);
 * - half-open connections: at a drop, with probability `halfOpenRatio`, the proxy instead stops
 *   forwarding and keeps both sockets open, as when the peer vanishes without FIN. Neither side
 *   learns of it from the proxy: each must notice on its own (MQTT keepalive). Such sockets are
 *   released after `halfOpenHoldMs`.
 *
 * Every buffer is bounded: a direction holding more than `maxQueuedBytes` pauses its source.
 * Traffic goes to `target` only (127.0.0.1 in every use here).
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { Rng } from '../simulator/rng.js'

export interface ImpairOptions {
  targetPort: number
  targetHost?: string
  /** Added one-way delay per direction, ms. */
  latencyMs: number
  /** Uniform extra delay in [0, jitterMs], ms. */
  jitterMs: number
  /** Per connection and direction, bytes/s (0 = unlimited). */
  bandwidthBytesPerSec: number
  /** A connection is dropped after a random time in [min, max] ms (null = never). */
  dropEveryMs: [number, number] | null
  /** Share of drops that leave a half-open (silent) connection instead of a reset. */
  halfOpenRatio: number
  /** How long half-open sockets are kept before the proxy frees them, ms. */
  halfOpenHoldMs: number
  maxQueuedBytes: number
  seed: number
}

export const IMPAIR_DEFAULTS: Omit<ImpairOptions, 'targetPort'> = {
  latencyMs: 60,
  jitterMs: 60,
  bandwidthBytesPerSec: 128 * 1024,
  dropEveryMs: [4000, 9000],
  halfOpenRatio: 0.3,
  halfOpenHoldMs: 60_000,
  maxQueuedBytes: 1024 * 1024,
  seed: 1
}

export interface ImpairStats { connections: number, resets: number, halfOpens: number, bytesForwarded: number }

/** One direction of one connection: delays chunks and releases them in order. */
class Pipe {
  private readonly queue: Array<{ chunk: Buffer, at: number }> = []
  private queued = 0
  private lastAt = 0
  private timer: NodeJS.Timeout | null = null
  stopped = false

  constructor (private readonly from: Socket, private readonly to: Socket, private readonly o: ImpairOptions, private readonly rng: Rng, private readonly stats: ImpairStats) {
    from.on('data', (chunk: Buffer) => { this.push(chunk) })
  }

  private push (chunk: Buffer): void {
    if (this.stopped) return
    const now = performance.now()
    const tx = this.o.bandwidthBytesPerSec > 0 ? chunk.length * 1000 / this.o.bandwidthBytesPerSec : 0
    // Serialisation is sequential: a chunk leaves after the previous one has, plus its own time.
    const at = Math.max(now + this.o.latencyMs + this.rng.next() * this.o.jitterMs, this.lastAt) + tx
    this.lastAt = at
    this.queue.push({ chunk, at })
    this.queued += chunk.length
    if (this.queued > this.o.maxQueuedBytes) this.from.pause()
    this.schedule()
  }

  private schedule (): void {
    if (this.timer !== null || this.queue.length === 0 || this.stopped) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.flush()
    }, Math.max(0, this.queue[0]!.at - performance.now()))
  }

  private flush (): void {
    const now = performance.now()
    while (!this.stopped && this.queue.length > 0 && this.queue[0]!.at <= now + 1) {
      const { chunk } = this.queue.shift()!
      this.queued -= chunk.length
      this.stats.bytesForwarded += chunk.length
      if (!this.to.destroyed) this.to.write(chunk)
    }
    if (this.queued <= this.o.maxQueuedBytes / 2 && this.from.isPaused() && !this.stopped) this.from.resume()
    this.schedule()
  }

  stop (): void {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.queue.length = 0
  }
}

export class ImpairProxy {
  readonly stats: ImpairStats = { connections: 0, resets: 0, halfOpens: 0, bytesForwarded: 0 }
  private readonly o: ImpairOptions
  private readonly rng: Rng
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private closed = false

  constructor (options: Partial<ImpairOptions> & { targetPort: number }) {
    this.o = { ...IMPAIR_DEFAULTS, ...options }
    this.rng = new Rng(this.o.seed)
    this.server = createServer(client => { this.accept(client) })
  }

  async listen (): Promise<number> {
    await new Promise<void>(resolve => this.server.listen(0, '127.0.0.1', resolve))
    return (this.server.address() as AddressInfo).port
  }

  private later (ms: number, fn: () => void): void {
    const t = setTimeout(() => { this.timers.delete(t); fn() }, ms)
    this.timers.add(t)
  }

  private track (s: Socket): void {
    this.sockets.add(s)
    s.on('error', () => {})
    s.once('close', () => { this.sockets.delete(s) })
  }

  private accept (client: Socket): void {
    if (this.closed) { client.destroy(); return }
    this.stats.connections++
    const upstream = connect(this.o.targetPort, this.o.targetHost ?? '127.0.0.1')
    this.track(client)
    this.track(upstream)
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    const up = new Pipe(client, upstream, this.o, this.rng, this.stats)
    const down = new Pipe(upstream, client, this.o, this.rng, this.stats)
    let silent = false
    // A normal close or error on one side ends the other, as a real path would (FIN/RST).
    const end = (other: Socket) => () => { if (!silent) other.destroy() }
    client.once('close', end(upstream))
    upstream.once('close', end(client))
    if (this.o.dropEveryMs === null) return
    const [lo, hi] = this.o.dropEveryMs
    this.later(lo + this.rng.next() * (hi - lo), () => {
      if (client.destroyed && upstream.destroyed) return
      if (this.rng.next() < this.o.halfOpenRatio) {
        // The peer vanished: nothing more passes, nobody is told.
        silent = true
        this.stats.halfOpens++
        up.stop()
        down.stop()
        client.pause()
        upstream.pause()
        this.later(this.o.halfOpenHoldMs, () => { client.destroy(); upstream.destroy() })
      } else {
        this.stats.resets++
        up.stop()
        down.stop()
        client.resetAndDestroy()
        upstream.resetAndDestroy()
      }
    })
  }

  async close (): Promise<void> {
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (const s of this.sockets) s.destroy()
    await new Promise<void>(resolve => this.server.close(() => { resolve() }))
  }
}
