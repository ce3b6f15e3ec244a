/**
 * One ambulance's MQTT connection (mqtt.js): credentials, will, retained status, and the
 * store-and-forward pump that moves frames from the OutboundQueue to the broker, `window` at a
 * time, in seq order, until each is acknowledged.
 *
 * What mqtt.js does for us, and what we rely on (mqtt 5.x, lib/client.ts):
 * - QoS 1 publishes go into its outgoing store before they are written, also while offline; on
 *   every reconnect (clean or not) it replays that store in insertion order before anything
 *   published later, and calls each publish's callback on PUBACK. So in-flight frames survive a
 *   dropped connection without us resending them, and ordering is kept.
 * - Publishes issued while it is replaying are parked; if the connection drops during the
 *   replay, their callbacks get 'Connection closed' and the frames were never sent: the queue
 *   takes them back and they go out again after the replay (see OutboundQueue.fail).
 * - A refused CONNECT (CONNACK code ≠ 0) stops reconnecting unless reconnectOnConnackError.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { SimulatorError } from './errors.js'
import type { FrameMeta, SourceFrame } from './frame-source.js'
import { OutboundQueue, type QueueEntry } from './outbound-queue.js'
import { UnitCounters } from './unit-counters.js'

export interface LinkConfig {
  url: string
  qos: 0 | 1
  clean: boolean
  inflightWindow: number
  maxQueuedFrames: number
  reconnectPeriodMs: number
  connectTimeoutMs: number
  keepaliveS: number
  /** How long close() waits for the retained `offline` to be acknowledged. */
  statusTimeoutMs: number
  mqttOptions: IClientOptions
  recordAckedFrames: boolean
}

export interface LinkHooks {
  /** Called on every acknowledged frame with publish-to-PUBACK latency. */
  acked: (latencyMs: number) => void
  log: (msg: string) => void
}

export class UnitLink {
  readonly unitId: string
  readonly counters = new UnitCounters()
  readonly queue: OutboundQueue
  /** Metadata of every acknowledged frame, when recordAckedFrames is on. */
  readonly acks: FrameMeta[] | null
  /** The latest client error, for start-up failure messages. */
  lastError: Error | null = null
  private readonly token: string
  private readonly cfg: LinkConfig
  private readonly hooks: LinkHooks
  private readonly telemetryTopic: string
  private readonly statusTopic: string
  private client: MqttClient | null = null
  private up = false
  private downSince = 0
  private closing = false
  private closed: Promise<void> | null = null
  private pumping = false
  private pumpAgain = false
  private retryTimer: NodeJS.Timeout | null = null
  private statusInFlight = 0
  private drainWaiters: Array<() => void> = []
  private droppedLogged = false
  private lastLogged = ''

  constructor (unitId: string, token: string, cfg: LinkConfig, hooks: LinkHooks) {
    this.unitId = unitId
    this.token = token
    this.cfg = cfg
    this.hooks = hooks
    this.queue = new OutboundQueue(cfg.inflightWindow, cfg.maxQueuedFrames)
    this.acks = cfg.recordAckedFrames ? [] : null
    this.telemetryTopic = `units/${unitId}/telemetry`
    this.statusTopic = `units/${unitId}/status`
  }

  get connected (): boolean { return this.client?.connected === true }

  /**
   * Connects; resolves on the first CONNACK accepted. Rejects at once if the broker refuses the
   * CONNECT (bad token, not authorised); network errors are retried by mqtt.js meanwhile, and
   * the caller bounds the wait.
   */
  open (): Promise<void> {
    if (this.client !== null) throw new SimulatorError('AMB_ERR_SIM_STATE', `unit ${this.unitId} is already open`)
    return new Promise((resolve, reject) => {
      const client = mqtt.connect(this.cfg.url, {
        ...this.cfg.mqttOptions,
        clientId: this.unitId,
        username: this.unitId,
        password: this.token,
        clean: this.cfg.clean,
        reconnectPeriod: this.cfg.reconnectPeriodMs,
        connectTimeout: this.cfg.connectTimeoutMs,
        keepalive: this.cfg.keepaliveS,
        // A refused CONNECT at start is a configuration error: fail fast, don't retry forever.
        reconnectOnConnackError: false,
        will: { topic: this.statusTopic, payload: Buffer.from('offline'), qos: 1, retain: true }
      })
      this.client = client
      client.on('connect', () => {
        this.onConnect(client)
        resolve()
      })
      client.on('close', () => this.onClose())
      client.on('error', (err: Error & { code?: unknown }) => {
        this.lastError = err
        if (this.closing) return
        this.counters.errors++
        this.noteError(err.message)
        if (!this.up && this.counters.connects === 0 && err.message.startsWith('Connection refused')) {
          reject(new SimulatorError('AMB_ERR_SIM_CONNECT_REFUSED', `unit ${this.unitId}: broker refused the connection: ${err.message.replace(/^Connection refused: /, '')}`, {
            cause: err,
            unitId: this.unitId,
            mqttReturnCode: typeof err.code === 'number' ? err.code : undefined
          }))
        }
      })
    })
  }

  /** Queues a frame (the device stores it even while offline) and sends what the window allows. */
  send (frame: SourceFrame): void {
    this.counters.generated++
    const dropped = this.queue.push(frame)
    if (dropped !== null && !this.droppedLogged) {
      this.droppedLogged = true
      this.hooks.log(`unit ${this.unitId}: queue full (${this.queue.maxFrames} frames), dropping the oldest unsent frames, from seq ${dropped.meta.seq}`)
    }
    this.pump()
  }

  /** Resolves once every queued frame is acknowledged. */
  whenDrained (): Promise<void> {
    if (this.queue.pending === 0) return Promise.resolve()
    return new Promise(resolve => this.drainWaiters.push(resolve))
  }

  /**
   * Publishes a retained `offline` and disconnects with DISCONNECT, so the broker does not fire
   * the will. Forces the socket closed instead when frames are still in flight: mqtt.js' end()
   * would otherwise wait for their PUBACKs forever (it stops reconnecting once ending).
   */
  close (): Promise<void> {
    this.closed ??= this.doClose()
    return this.closed
  }

  private async doClose (): Promise<void> {
    this.closing = true
    if (this.retryTimer !== null) clearTimeout(this.retryTimer)
    const client = this.client
    if (client !== null) {
      const offlineAcked = client.connected && await this.publishStatus(client, 'offline', this.cfg.statusTimeoutMs)
      const force = !offlineAcked || this.queue.inFlight > 0 || this.statusInFlight > 0
      await new Promise<void>(resolve => {
        const safety = setTimeout(resolve, 5_000)
        client.end(force, {}, () => {
          clearTimeout(safety)
          resolve()
        })
      })
    }
    for (const w of this.drainWaiters.splice(0)) w()
  }

  private onConnect (client: MqttClient): void {
    const again = this.counters.connects > 0
    this.counters.connects++
    this.up = true
    if (again) this.hooks.log(`unit ${this.unitId}: reconnected after ${Math.round(performance.now() - this.downSince)} ms, ${this.queue.pending} frames pending`)
    // Once a session has been accepted, a later refusal (gateway restarting) is an outage to
    // ride out like any other, as a device would.
    client.options.reconnectOnConnackError = true
    this.droppedLogged = false
    void this.publishStatus(client, 'online', 0)
    this.pump()
  }

  private onClose (): void {
    if (!this.up) return
    this.up = false
    this.downSince = performance.now()
    if (!this.closing) this.hooks.log(`unit ${this.unitId}: connection lost, ${this.queue.pending} frames pending`)
  }

  private pump (): void {
    const client = this.client
    if (client === null || this.closing) return
    // A QoS 0 publish can call back synchronously, which calls pump() again: loop, don't recurse.
    if (this.pumping) {
      this.pumpAgain = true
      return
    }
    this.pumping = true
    try {
      do {
        this.pumpAgain = false
        for (let e = this.queue.take(performance.now()); e !== undefined; e = this.queue.take(performance.now())) {
          if (e.attempts > 1) this.counters.resent++
          else this.counters.published++
          const entry = e
          client.publish(this.telemetryTopic, e.bytes, { qos: this.cfg.qos, retain: false }, err => this.onPublished(entry, err))
        }
        if (this.queue.inFlight > this.counters.inFlightPeak) this.counters.inFlightPeak = this.queue.inFlight
      } while (this.pumpAgain)
    } finally {
      this.pumping = false
    }
  }

  private onPublished (e: QueueEntry, err: Error | undefined): void {
    if (err !== undefined && err !== null) {
      if (this.closing) return
      this.counters.errors++
      this.noteError(`publish of seq ${e.meta.seq} failed: ${err.message}`)
      this.queue.fail(e)
      // Normally resent on the next 'connect'; if still connected, retry after a pause.
      if (this.client?.connected === true && this.retryTimer === null) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null
          this.pump()
        }, this.cfg.reconnectPeriodMs)
      }
      return
    }
    this.queue.ack(e)
    this.counters.addAck(e.meta)
    this.acks?.push(e.meta)
    this.hooks.acked(performance.now() - e.sentAt)
    if (this.queue.pending === 0) for (const w of this.drainWaiters.splice(0)) w()
    this.pump()
  }

  /** Resolves true once the broker acknowledged the status, false after `timeoutMs` (0 = none). */
  private publishStatus (client: MqttClient, status: 'online' | 'offline', timeoutMs: number): Promise<boolean> {
    return new Promise(resolve => {
      let timer: NodeJS.Timeout | null = null
      this.statusInFlight++
      client.publish(this.statusTopic, status, { qos: 1, retain: true }, err => {
        this.statusInFlight--
        if (timer !== null) clearTimeout(timer)
        resolve(err === undefined || err === null)
      })
      if (timeoutMs > 0) timer = setTimeout(() => resolve(false), timeoutMs)
    })
  }

  /** Logs an error once per distinct message, not once per unit per second of an outage. */
  private noteError (message: string): void {
    if (message === this.lastLogged) return
    this.lastLogged = message
    this.hooks.log(`unit ${this.unitId}: ${message}`)
  }
}
