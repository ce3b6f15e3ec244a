/**
 * A device's store-and-forward queue: every frame stays here, in seq order, until its PUBACK
 * arrives. At most `window` frames are handed to the MQTT client at a time: mqtt.js keeps its own
 * unbounded store of in-flight QoS 1 packets (and replays it on reconnect), so the window is
 * what turns a slow gateway into backpressure here instead of memory growth inside mqtt.js.
 *
 * Pure bookkeeping, no I/O: unit-link.ts drives it, tests can poke it directly.
 */
import type { SourceFrame } from './frame-source.js'

export const QUEUED = 0
export const IN_FLIGHT = 1
export const ACKED = 2
export type EntryState = typeof QUEUED | typeof IN_FLIGHT | typeof ACKED

export interface QueueEntry extends SourceFrame {
  state: EntryState
  /** performance.now() of the latest hand-over to the MQTT client. */
  sentAt: number
  /** Hand-overs so far; more than one means the frame was resent. */
  attempts: number
}

export class OutboundQueue {
  readonly window: number
  readonly maxFrames: number
  /** Frames dropped because the queue was full (the oldest unsent ones go first). */
  dropped = 0
  private items: QueueEntry[] = []
  private head = 0
  /** Every index before this one is in flight or acked. */
  private cursor = 0
  private inFlightCount = 0
  private unacked = 0

  constructor (window: number, maxFrames: number) {
    if (!(Number.isInteger(window) && window >= 1)) throw new RangeError(`window ${window} must be a positive integer`)
    if (!(Number.isInteger(maxFrames) && maxFrames > window)) throw new RangeError(`maxFrames ${maxFrames} must be an integer above the window ${window}`)
    this.window = window
    this.maxFrames = maxFrames
  }

  /** Frames not yet acknowledged (queued or in flight). */
  get pending (): number { return this.unacked }
  get inFlight (): number { return this.inFlightCount }

  /** Appends a frame; returns the frame dropped to make room, if the queue was full. */
  push (frame: SourceFrame): QueueEntry | null {
    this.items.push({ bytes: frame.bytes, meta: frame.meta, state: QUEUED, sentAt: 0, attempts: 0 })
    this.unacked++
    if (this.unacked <= this.maxFrames) return null
    // Like a device's ring buffer, lose the oldest data, but never a frame already on the wire
    // (its PUBACK may still come). maxFrames > window guarantees a queued one exists.
    const i = this.indexOfState(QUEUED, this.cursor)
    const [victim] = this.items.splice(i, 1)
    this.unacked--
    this.dropped++
    return victim ?? null
  }

  /** The next frame to hand to the client, if the window has room. Marks it in flight. */
  take (now: number): QueueEntry | undefined {
    if (this.inFlightCount >= this.window) return undefined
    const i = this.indexOfState(QUEUED, this.cursor)
    const e = this.items[i]
    if (e === undefined) {
      this.cursor = this.items.length
      return undefined
    }
    this.cursor = i + 1
    e.state = IN_FLIGHT
    e.sentAt = now
    e.attempts++
    this.inFlightCount++
    return e
  }

  /** PUBACK received (or, for QoS 0, the frame was written). */
  ack (e: QueueEntry): void {
    if (e.state !== IN_FLIGHT) return
    e.state = ACKED
    this.inFlightCount--
    this.unacked--
    // Acks can arrive out of order (a broker handles a read chunk concurrently); pop the prefix.
    while (this.head < this.items.length && this.items[this.head]!.state === ACKED) this.head++
    if (this.cursor < this.head) this.cursor = this.head
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.cursor -= this.head
      this.head = 0
    }
  }

  /**
   * The client gave the frame back unsent (connection closed before it reached the socket).
   * It goes out again, before anything newer that is still queued.
   */
  fail (e: QueueEntry): void {
    if (e.state !== IN_FLIGHT) return
    e.state = QUEUED
    this.inFlightCount--
    const i = this.items.indexOf(e, this.head)
    if (i >= 0 && i < this.cursor) this.cursor = i
  }

  private indexOfState (state: EntryState, from: number): number {
    let i = Math.max(from, this.head)
    while (i < this.items.length && this.items[i]!.state !== state) i++
    return i
  }
}
