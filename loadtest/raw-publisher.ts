/**
 * A minimal MQTT 3.1.1 QoS 1 publisher for saturation runs: one TCP connection, a fixed window
 * of PUBLISH packets in flight, the next sent on each PUBACK. Hand-encoded packets and a 4-byte
 * PUBACK parser cost a few µs per message where mqtt.js costs ~100: with mqtt.js as the
 * generator, the generator (not the broker) was the bottleneck of the Mosquitto reference, and
 * took a core the gateway needed. Devices in the real-time runs still use mqtt.js (UnitLink).
 *
 * Accounting mirrors UnitLink (UnitCounters: acked seqs, ECG points), so what it sends can be
 * counted in InfluxDB the same way.
 */
import { connect as tcpConnect, type Socket } from 'node:net'
import type { SourceFrame } from '../simulator/frame-source.js'
import { connectPacket, DISCONNECT } from '../testkit/mqtt-raw.js'
import { UnitCounters } from '../simulator/unit-counters.js'

const PUBACK = 0x40
const CONNACK = 0x20

export interface RawPublisherOptions {
  host: string
  port: number
  unitId: string
  token: string
  window: number
  /** Called with publish → PUBACK latency, ms. */
  acked: (ms: number) => void
}

interface InFlight { frame: SourceFrame, sentAt: number }

export class RawPublisher {
  readonly unitId: string
  readonly counters = new UnitCounters()
  private socket: Socket | null = null
  private readonly topic: Buffer
  private readonly queue: SourceFrame[] = []
  private readonly inFlight = new Map<number, InFlight>()
  private nextId = 1
  private rx: Buffer = Buffer.alloc(0)
  private drainWaiters: Array<() => void> = []
  private closed = false

  constructor (private readonly o: RawPublisherOptions) {
    this.unitId = o.unitId
    this.topic = Buffer.from(`units/${o.unitId}/telemetry`)
  }

  /** Frames not yet acknowledged (queued or in flight). */
  get pending (): number { return this.queue.length + this.inFlight.size }

  open (): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect({ host: this.o.host, port: this.o.port })
      s.setNoDelay(true)
      this.socket = s
      let connected = false
      s.once('connect', () => {
        s.write(connectPacket({ clientId: this.o.unitId, username: this.o.unitId, password: this.o.token, keepaliveS: 60 }))
      })
      s.on('data', (chunk: Buffer) => {
        if (!connected) {
          // CONNACK: 0x20 0x02 <flags> <return code>
          if (chunk[0] !== CONNACK || chunk[3] !== 0) {
            s.destroy()
            reject(new Error(`${this.o.unitId}: CONNACK refused (${chunk.subarray(0, 4).toString('hex')})`))
            return
          }
          connected = true
          resolve()
          chunk = chunk.subarray(4)
          if (chunk.length === 0) return
        }
        this.onData(chunk)
      })
      s.once('error', err => { if (!connected) reject(err) })
      s.once('close', () => {
        if (!connected) reject(new Error(`${this.o.unitId}: closed before CONNACK`))
        for (const w of this.drainWaiters.splice(0)) w()
      })
    })
  }

  send (frame: SourceFrame): void {
    this.counters.generated++
    this.queue.push(frame)
    this.pump()
  }

  whenDrained (): Promise<void> {
    if (this.pending === 0 || this.socket === null || this.socket.destroyed) return Promise.resolve()
    return new Promise(resolve => this.drainWaiters.push(resolve))
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    const s = this.socket
    if (s === null || s.destroyed) return
    await new Promise<void>(resolve => {
      s.once('close', () => resolve())
      s.end(DISCONNECT)
      setTimeout(() => { s.destroy() }, 2000).unref()
    })
  }

  private pump (): void {
    const s = this.socket
    if (s === null || s.destroyed) return
    while (this.inFlight.size < this.o.window && this.queue.length > 0) {
      const frame = this.queue.shift()!
      const id = this.nextId
      this.nextId = this.nextId === 0xffff ? 1 : this.nextId + 1
      this.inFlight.set(id, { frame, sentAt: performance.now() })
      this.counters.published++
      s.write(publishPacket(this.topic, id, frame.bytes))
    }
  }

  private onData (chunk: Buffer): void {
    this.rx = this.rx.length === 0 ? chunk : Buffer.concat([this.rx, chunk])
    let off = 0
    const b = this.rx
    // Packets from the broker: PUBACKs (4 bytes), the odd PINGRESP; anything else is skipped.
    while (off + 2 <= b.length) {
      let len = 0
      let mul = 1
      let i = off + 1
      for (; i < b.length; i++) {
        len += (b[i]! & 127) * mul
        mul *= 128
        if (b[i]! < 128) break
      }
      if (i >= b.length || i + 1 + len > b.length) break
      if ((b[off]! & 0xf0) === PUBACK && len === 2) this.onPuback(b.readUInt16BE(i + 1))
      off = i + 1 + len
    }
    this.rx = off === b.length ? Buffer.alloc(0) : b.subarray(off)
    this.pump()
    if (this.pending === 0) for (const w of this.drainWaiters.splice(0)) w()
  }

  private onPuback (id: number): void {
    const f = this.inFlight.get(id)
    if (f === undefined) return
    this.inFlight.delete(id)
    this.counters.addAck(f.frame.meta)
    this.o.acked(performance.now() - f.sentAt)
  }
}

/** [MQTT-3.3] PUBLISH, QoS 1, not retained. */
function publishPacket (topic: Buffer, id: number, payload: Buffer): Buffer {
  const remaining = 2 + topic.length + 2 + payload.length
  const head: number[] = [0x32]
  let n = remaining
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    head.push(byte)
  } while (n > 0)
  const out = Buffer.allocUnsafe(head.length + remaining)
  let at = 0
  for (const h of head) out[at++] = h
  out.writeUInt16BE(topic.length, at)
  at += 2
  topic.copy(out, at)
  at += topic.length
  out.writeUInt16BE(id, at)
  at += 2
  payload.copy(out, at)
  return out
}
