/**
 * The live socket: connects, says hello with the units it watches and its cursors (so a
 * reconnect resends only what was missed), reconnects with backoff, and hands messages to the
 * store. Close code 4001 means the session ended: the page goes back to the login form.
 */
import { decodeEcgChunk, type ClientMessage, type ServerMessage } from '../../streams/live/protocol.js'
import type { Store } from './store.js'

export type LiveState = 'connecting' | 'live' | 'reconnecting'

export class LiveClient {
  private ws: WebSocket | null = null
  private readonly watching = new Set<string>()
  private backoffMs = 500
  private timer: number | null = null
  private stopped = false
  onState: (s: LiveState) => void = () => {}
  onSessionEnded: () => void = () => {}

  constructor (private readonly store: Store) {
    store.onResync = (unit, from) => { this.send({ type: 'resync', unit, trendFrom: from }) }
  }

  start (): void {
    this.stopped = false
    this.connect()
  }

  stop (): void {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.ws?.close(1000)
    this.ws = null
  }

  watch (unit: string): void {
    if (this.watching.has(unit)) return
    this.watching.add(unit)
    this.send({ type: 'watch', unit, resume: this.store.resume()[unit] })
  }

  unwatch (unit: string): void {
    if (!this.watching.delete(unit)) return
    this.send({ type: 'unwatch', unit })
  }

  private send (m: ClientMessage): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m))
  }

  private connect (): void {
    this.onState(this.ws === null ? 'connecting' : 'reconnecting')
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/live`
    const ws = new WebSocket(url)
    ws.binaryType = 'arraybuffer'
    this.ws = ws
    ws.onopen = () => {
      this.backoffMs = 500
      this.onState('live')
      ws.send(JSON.stringify({ type: 'hello', watch: [...this.watching], resume: this.store.resume() } satisfies ClientMessage))
    }
    ws.onmessage = ev => {
      if (ev.data instanceof ArrayBuffer) {
        const c = decodeEcgChunk(ev.data)
        if (c !== null) this.store.ecgChunk(c)
        return
      }
      this.store.handle(JSON.parse(ev.data as string) as ServerMessage)
    }
    ws.onclose = ev => {
      if (this.ws !== ws || this.stopped) return
      if (ev.code === 4001) { this.stopped = true; this.onSessionEnded(); return }
      this.onState('reconnecting')
      // A refused upgrade (401: session gone) also lands here; the session check sorts it out.
      this.timer = window.setTimeout(() => { this.connect() }, this.backoffMs)
      this.backoffMs = Math.min(this.backoffMs * 2, 5000)
      if (ev.code === 1006) void fetch('/api/v1/session').then(r => { if (r.status === 401) { this.stop(); this.onSessionEnded() } })
    }
  }
}
