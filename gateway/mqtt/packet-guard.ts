/**
 * Every MQTT connection (TCP, TLS, WebSocket stream) goes through here before aedes sees it:
 *
 * 1. Connection cap per remote address (MAX_CONNECTIONS_PER_IP).
 * 2. A PacketGuard: aedes / mqtt-packet have no maximum packet size, so a client declaring a
 *    256 MiB PUBLISH makes mqtt-packet buffer it all. The guard reads each MQTT fixed header
 *    (type byte + remaining-length varint, MQTT 3.1.1 §2.2.3) as bytes pass and destroys the
 *    connection as soon as a declared packet exceeds MAX_PACKET_BYTES or the varint is
 *    malformed (a 5th length byte, [MQTT-2.2.3]). Payload bytes are skipped by count, never
 *    copied: each chunk is passed on as the same Buffer.
 *
 * 3. An outgoing bound: a peer that stops reading (a frozen clinician subscribed to alerts) is
 *    disconnected once OUTGOING_QUEUE_BYTES wait for it, at the write that would have said
 *    "wait for drain". aedes answers "wait for drain" by holding one of mqemitter's 100
 *    delivery slots until 'drain' or drainTimeout; with all slots held every publish, device
 *    telemetry included, queues and ingest stalls (see test/faults-subscriber.test.ts). So a
 *    guarded connection never makes aedes wait: it is fast enough, or it is cut.
 *
 * Backpressure on the read side is kept: when aedes stops reading (it waits for
 * authorizePublish, i.e. the spool's fsync, before the next batch) the guard's buffer fills and
 * the socket is paused, so the kernel stops the device. aedes sees the guard as `client.conn`;
 * transportOf() gets the socket back (TLS peer certificate, remote address).
 */
import { Duplex } from 'node:stream'
import type { Aedes } from 'aedes'
import type { IncomingMessage } from 'node:http'
import type { Logger } from 'pino'
import type { ConnectionLimiter } from '../limits.js'
import { RefusalLog } from '../logger.js'
import type { Metrics } from '../metrics.js'

export type GuardRefusal = 'AMB_ERR_PACKET_TOO_LARGE' | 'AMB_ERR_PACKET_MALFORMED' | 'AMB_ERR_SUBSCRIBER_TOO_SLOW'

/** Bytes that may wait for a peer on top of the kernel's socket buffer before it is cut. */
export const OUTGOING_QUEUE_BYTES = 1024 * 1024

const TYPE_BYTE = 0
const LENGTH = 1

export class PacketGuard extends Duplex {
  /** Bytes of the current packet still to pass before the next fixed header. */
  private skip = 0
  private phase = TYPE_BYTE
  private length = 0
  private multiplier = 1
  private lengthBytes = 0
  private writeCallback: ((err?: Error | null) => void) | null = null

  constructor (
    readonly inner: Duplex,
    readonly remoteAddress: string,
    private readonly maxPacketBytes: number,
    private readonly onRefused: (reason: GuardRefusal, detail: string) => void
  ) {
    super({ allowHalfOpen: false, writableHighWaterMark: OUTGOING_QUEUE_BYTES })
    inner.on('data', (chunk: Buffer) => { this.onData(chunk) })
    inner.on('end', () => { this.push(null) })
    inner.on('error', (err: Error) => { this.destroy(err) })
    inner.on('close', () => { if (!this.destroyed) this.destroy() })
    inner.on('drain', () => {
      const cb = this.writeCallback
      this.writeCallback = null
      cb?.()
    })
  }

  private onData (chunk: Buffer): void {
    const bad = this.scan(chunk)
    if (bad !== null) {
      this.onRefused(bad[0], bad[1])
      this.inner.pause()
      this.destroy()
      return
    }
    if (!this.push(chunk)) this.inner.pause()
  }

  /** Walks the fixed headers in `chunk`; returns the reason to refuse, or null. */
  private scan (chunk: Buffer): [GuardRefusal, string] | null {
    let i = 0
    const n = chunk.length
    while (i < n) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - i)
        this.skip -= k
        i += k
        continue
      }
      if (this.phase === TYPE_BYTE) {
        this.phase = LENGTH
        this.length = 0
        this.multiplier = 1
        this.lengthBytes = 0
        i++
        continue
      }
      const b = chunk[i++]!
      this.length += (b & 0x7f) * this.multiplier
      this.multiplier *= 128
      this.lengthBytes++
      const size = 1 + this.lengthBytes + this.length
      if (size > this.maxPacketBytes) return ['AMB_ERR_PACKET_TOO_LARGE', `packet declares ${size}+ bytes, MAX_PACKET_BYTES is ${this.maxPacketBytes}`]
      if ((b & 0x80) !== 0) {
        if (this.lengthBytes === 4) return ['AMB_ERR_PACKET_MALFORMED', 'remaining length longer than 4 bytes']
        continue
      }
      this.skip = this.length
      this.phase = TYPE_BYTE
    }
    return null
  }

  /** Cuts the peer instead of asking the writer (aedes) to wait for 'drain'. */
  override write (chunk: unknown, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    const ok = super.write(chunk, encoding as BufferEncoding, cb)
    if (!ok && !this.destroyed) {
      this.onRefused('AMB_ERR_SUBSCRIBER_TOO_SLOW', `peer stopped reading; ${this.writableLength} bytes queued`)
      this.destroy()
    }
    return ok
  }

  override _read (): void {
    if (this.inner.isPaused()) this.inner.resume()
  }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.inner.write(chunk)) cb()
    else this.writeCallback = cb
  }

  override _writev (chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    // mqtt-packet corks the stream around each packet: hand the pieces over in one go.
    this.inner.cork()
    let ok = true
    for (const c of chunks) ok = this.inner.write(c.chunk)
    this.inner.uncork()
    if (ok) cb()
    else this.writeCallback = cb
  }

  override _final (cb: (err?: Error | null) => void): void {
    this.inner.end()
    cb()
  }

  override _destroy (err: Error | null, cb: (err?: Error | null) => void): void {
    this.inner.destroy()
    const w = this.writeCallback
    this.writeCallback = null
    w?.(err ?? new Error('connection closed'))
    cb(err)
  }
}

/** The transport under aedes' `client.conn` (the socket itself when it is not guarded). */
export function transportOf (conn: unknown): unknown {
  return conn instanceof PacketGuard ? conn.inner : conn
}

/** Remote address of an aedes connection, guarded or not ('unknown' if none). */
export function remoteAddressOf (conn: unknown): string {
  if (conn instanceof PacketGuard) return conn.remoteAddress
  const a = (conn as { remoteAddress?: string } | null)?.remoteAddress
  return typeof a === 'string' ? a : 'unknown'
}

export interface MqttAdmissionDeps {
  broker: Aedes
  metrics: Metrics
  log: Logger
  connections: ConnectionLimiter
  maxPacketBytes: number
}

/** Handles one MQTT connection: per-address cap, then the guard, then aedes. */
export type MqttAdmission = (stream: Duplex, remoteAddress: string | undefined, req?: IncomingMessage) => void

export function createMqttAdmission (deps: MqttAdmissionDeps): MqttAdmission {
  const { broker, metrics, log, connections } = deps
  const refusals = new RefusalLog(log)
  // A flood is thousands of refusals a second: log the first and then a count once a second.
  let refusedSinceLog = 0
  let lastLog = 0
  const logFlood = (address: string): void => {
    refusedSinceLog++
    const now = Date.now()
    if (now - lastLog < 1000) return
    log.warn({ reason: 'AMB_ERR_TOO_MANY_CONNECTIONS', address, refused: refusedSinceLog }, 'mqtt connection refused: too many connections from one address')
    refusedSinceLog = 0
    lastLog = now
  }
  return (stream, remoteAddress, req) => {
    const address = remoteAddress ?? 'unknown'
    if (!connections.acquire(address)) {
      metrics.mqttRefused.inc({ reason: 'AMB_ERR_TOO_MANY_CONNECTIONS' })
      logFlood(address)
      stream.destroy()
      return
    }
    const guard = new PacketGuard(stream, address, deps.maxPacketBytes, (reason, detail) => {
      metrics.mqttRefused.inc({ reason })
      refusals.warn(reason, { address, clientId: (guard as { client?: { id?: string } }).client?.id, detail }, reason === 'AMB_ERR_SUBSCRIBER_TOO_SLOW' ? 'mqtt client not reading: disconnected' : 'mqtt connection closed: bad packet')
    })
    guard.once('close', () => { connections.release(address) })
    broker.handle(guard, req as IncomingMessage)
  }
}
