/**
 * The simulated ambulance fleet: N units, each a UnitFrameSource (what the monitor measures)
 * behind a UnitLink (its MQTT connection with store-and-forward). Used by `ambulink demo`,
 * `ambulink simulate`, the integration tests and the benchmarks.
 *
 * Timing: every unit's device clock starts when start() resolves; frame k is generated once its
 * span [start + (k-1)·frameMs, start + k·frameMs) has passed. One timer serves the whole fleet
 * and is re-armed for the next frame boundary computed from the start time, so the schedule
 * never drifts; if the process falls behind (GC pause, busy CPU), the next pass catches up by
 * generating every frame that is due, yielding to the event loop between slices so a large
 * fleet cannot starve the sockets it feeds.
 */
import { randomBytes } from 'node:crypto'
import { SimulatorError } from './errors.js'
import { resolveFleetOptions, type FleetOptions, type FleetProgress, type ResolvedFleetOptions } from './fleet-options.js'
import { UnitFrameSource, type FrameMeta } from './frame-source.js'
import { LatencyWindow, type LatencySummary } from './latency.js'
import { Rng } from './rng.js'
import { UnitLink } from './unit-link.js'
import type { PatientProfile } from './vitals.js'

export type { FleetOptions, FleetProgress, UnitCredentials } from './fleet-options.js'

export interface FleetStats {
  units: number
  connected: number
  framesGenerated: number
  /** Frames handed to the MQTT client for the first time. */
  framesPublished: number
  /** Frames handed over again after the client gave them back unsent. */
  framesResent: number
  framesAcked: number
  bytesAcked: number
  /** Sample instants acknowledged: InfluxDB `ecg` points. */
  ecgPointsAcked: number
  /** Samples × leads acknowledged: `ecg` field values. */
  ecgSamplesAcked: number
  /** Numeric readings acknowledged: `vitals` field values. */
  numericsAcked: number
  /** Frames with numerics acknowledged: `vitals` points. */
  vitalsPointsAcked: number
  /** `position` points acknowledged. */
  positionsAcked: number
  alarmsAcked: number
  /** Generated but not yet acknowledged (queued or in flight). */
  pending: number
  inFlight: number
  /** Lost to a full store-and-forward queue (see maxQueuedFrames). */
  dropped: number
  errors: number
  reconnects: number
  /** Publish-to-PUBACK latency over the most recent acks. */
  ackLatencyMs: LatencySummary
}

/** Everything a test needs to check one unit's data in the database. */
export interface UnitReport {
  unitId: string
  bootId: string
  encounterId: string
  profile: PatientProfile
  connected: boolean
  generated: number
  acked: number
  pending: number
  dropped: number
  errors: number
  connects: number
  inFlightPeak: number
  /** Acknowledged seqs as inclusive [from, to] ranges; [[1, generated]] when all made it. */
  ackedSeqRanges: Array<[number, number]>
  ecgPointsAcked: number
  ecgSamplesAcked: number
  numericsAcked: number
  vitalsPointsAcked: number
  positionsAcked: number
  alarmsAcked: number
  /** captured_at_ms of the first and last acknowledged frames (0 if none). */
  firstCapturedAtMs: number
  lastCapturedAtMs: number
}

export type AckedFrame = FrameMeta

export interface StopOptions {
  /** Wait until every generated frame is acknowledged (up to timeoutMs) before disconnecting. */
  drain?: boolean
  /** Drain timeout, ms (default: the fleet's drainTimeoutMs). */
  timeoutMs?: number
}

interface Unit {
  link: UnitLink
  profile: PatientProfile
  seed: number
  source: UnitFrameSource | null
}

/** Frames generated between two yields to the event loop (~2-3 ms of work). */
const FRAMES_PER_SLICE = 64
/** Clients created between two yields while connecting. */
const CONNECTS_PER_SLICE = 16

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped'

export class Fleet {
  readonly options: Readonly<ResolvedFleetOptions>
  private readonly units: Unit[]
  private readonly latency = new LatencyWindow()
  private state: State = 'new'
  private startMs = 0
  private generation: Promise<void> | null = null
  private timer: NodeJS.Timeout | null = null
  private wake: (() => void) | null = null
  private abortStart: ((err: Error) => void) | null = null
  private progressTimer: NodeJS.Timeout | null = null
  private lastProgress = { at: 0, frames: 0, ecgPoints: 0, bytes: 0 }
  private stopped: Promise<FleetStats> | null = null
  private generatedAll!: () => void
  private readonly generatedPromise = new Promise<void>(resolve => { this.generatedAll = resolve })

  constructor (options: FleetOptions) {
    this.options = Object.freeze(resolveFleetOptions(options))
    const o = this.options
    const rng = new Rng(o.seed)
    this.units = o.units.map((cred, i) => ({
      link: new UnitLink(cred.unitId, cred.token, {
        url: o.url,
        qos: o.qos,
        clean: o.clean,
        inflightWindow: o.inflightWindow,
        maxQueuedFrames: o.maxQueuedFrames,
        reconnectPeriodMs: o.reconnectPeriodMs,
        connectTimeoutMs: o.connectTimeoutMs,
        keepaliveS: o.keepaliveS,
        statusTimeoutMs: 2_000,
        mqttOptions: o.mqttOptions,
        recordAckedFrames: o.recordAckedFrames
      }, {
        acked: ms => this.latency.record(ms),
        log: o.log
      }),
      profile: o.profiles[i % o.profiles.length]!,
      seed: Math.floor(rng.next() * 2 ** 32),
      source: null
    }))
  }

  get unitIds (): string[] { return this.units.map(u => u.link.unitId) }
  /** Device time at which every unit's frame 1 starts (0 before start). */
  get startedAtMs (): number { return this.startMs }

  /**
   * Connects every unit and starts streaming. Resolves once all are connected; rejects (after
   * closing whatever did connect) when the broker refuses a unit, naming it, or when not all
   * connected within startTimeoutMs.
   */
  async start (): Promise<void> {
    if (this.state !== 'new') throw new SimulatorError('AMB_ERR_SIM_STATE', `start() on a fleet that is ${this.state}`)
    this.state = 'starting'
    const o = this.options
    let timer: NodeJS.Timeout | undefined
    const guard = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(this.startTimeoutError()), o.startTimeoutMs)
      this.abortStart = reject
    })
    try {
      await Promise.race([this.openAll(), guard])
    } catch (err) {
      await this.stop()
      throw err
    } finally {
      clearTimeout(timer)
      this.abortStart = null
    }
    // stop() may have come in while the last CONNACKs were being handled.
    if (this.state !== 'starting') throw new SimulatorError('AMB_ERR_SIM_STATE', 'fleet stopped while starting')

    this.startMs = o.now()
    for (const u of this.units) {
      u.source = new UnitFrameSource({
        unitId: u.link.unitId,
        startMs: this.startMs,
        profile: u.profile,
        seed: u.seed,
        frameMs: o.frameMs,
        leads: o.leads,
        ecgHz: o.ecgHz,
        microvoltsPerLsb: o.microvoltsPerLsb,
        numericsEveryFrames: o.numericsEveryFrames,
        // A new boot and encounter on every start: frame identities never collide across runs.
        bootId: randomBytes(8).toString('hex'),
        encounterId: `enc-${randomBytes(6).toString('hex')}`
      })
    }
    this.state = 'running'
    o.log(`fleet: ${this.units.length} units connected to ${o.url}, streaming ${o.leads}-lead frames of ${o.frameMs} ms`)
    this.lastProgress = { at: performance.now(), frames: 0, ecgPoints: 0, bytes: 0 }
    if (o.onProgress !== null) {
      this.progressTimer = setInterval(() => this.emitProgress(), o.progressIntervalMs)
      this.progressTimer.unref()
    }
    this.generation = this.generate().catch((err: unknown) => {
      o.log(`fleet: frame generation failed: ${(err as Error).stack ?? String(err)}`)
    })
  }

  /**
   * Opens every link, a slice at a time: creating an mqtt.js client costs a few ms of
   * synchronous work, and hundreds at once would stall the event loop for a second.
   */
  private async openAll (): Promise<void> {
    const opening: Array<Promise<void>> = []
    for (let i = 0; i < this.units.length && this.state === 'starting'; i++) {
      const p = this.units[i]!.link.open()
      p.catch(() => {}) // observed by Promise.all below; this only keeps it from being "unhandled" meanwhile
      opening.push(p)
      if ((i + 1) % CONNECTS_PER_SLICE === 0) await new Promise<void>(resolve => setImmediate(resolve))
    }
    await Promise.all(opening)
  }

  /** Resolves when durationMs / maxFrames worth of frames have been generated. */
  whenGenerated (): Promise<void> {
    return this.generatedPromise
  }

  /**
   * Stops generating, optionally waits for every queued frame to be acknowledged, publishes
   * retained `offline` and disconnects each unit cleanly. Safe to call more than once.
   */
  stop (options: StopOptions = {}): Promise<FleetStats> {
    this.stopped ??= this.doStop(options)
    return this.stopped
  }

  /** Lifecycle alias: stop without draining. */
  async close (): Promise<void> {
    await this.stop()
  }

  stats (): FleetStats {
    const s: FleetStats = {
      units: this.units.length,
      connected: 0,
      framesGenerated: 0,
      framesPublished: 0,
      framesResent: 0,
      framesAcked: 0,
      bytesAcked: 0,
      ecgPointsAcked: 0,
      ecgSamplesAcked: 0,
      numericsAcked: 0,
      vitalsPointsAcked: 0,
      positionsAcked: 0,
      alarmsAcked: 0,
      pending: 0,
      inFlight: 0,
      dropped: 0,
      errors: 0,
      reconnects: 0,
      ackLatencyMs: this.latency.summary()
    }
    for (const { link } of this.units) {
      const c = link.counters
      if (link.connected) s.connected++
      s.framesGenerated += c.generated
      s.framesPublished += c.published
      s.framesResent += c.resent
      s.framesAcked += c.acked
      s.bytesAcked += c.bytesAcked
      s.ecgPointsAcked += c.ecgPointsAcked
      s.ecgSamplesAcked += c.ecgSamplesAcked
      s.numericsAcked += c.numericsAcked
      s.vitalsPointsAcked += c.vitalsPointsAcked
      s.positionsAcked += c.positionsAcked
      s.alarmsAcked += c.alarmsAcked
      s.pending += link.queue.pending
      s.inFlight += link.queue.inFlight
      s.dropped += link.queue.dropped
      s.errors += c.errors
      s.reconnects += Math.max(0, c.connects - 1)
    }
    return s
  }

  unitReports (): UnitReport[] {
    return this.units.map(({ link, profile, source }) => {
      const c = link.counters
      return {
        unitId: link.unitId,
        bootId: source?.bootId ?? '',
        encounterId: source?.encounterId ?? '',
        profile,
        connected: link.connected,
        generated: c.generated,
        acked: c.acked,
        pending: link.queue.pending,
        dropped: link.queue.dropped,
        errors: c.errors,
        connects: c.connects,
        inFlightPeak: c.inFlightPeak,
        ackedSeqRanges: c.ackedSeqRanges(),
        ecgPointsAcked: c.ecgPointsAcked,
        ecgSamplesAcked: c.ecgSamplesAcked,
        numericsAcked: c.numericsAcked,
        vitalsPointsAcked: c.vitalsPointsAcked,
        positionsAcked: c.positionsAcked,
        alarmsAcked: c.alarmsAcked,
        firstCapturedAtMs: c.firstCapturedAtMs,
        lastCapturedAtMs: c.lastCapturedAtMs
      }
    })
  }

  /** Every acknowledged frame, in ack order per unit (needs recordAckedFrames). */
  ackedFrames (): AckedFrame[] {
    if (!this.options.recordAckedFrames) {
      throw new SimulatorError('AMB_ERR_SIM_NOT_RECORDING', 'ackedFrames() needs the fleet option recordAckedFrames: true (unitReports() has per-unit totals)')
    }
    return this.units.flatMap(u => u.link.acks ?? [])
  }

  private async generate (): Promise<void> {
    const { frameMs, frameLimit, now } = this.options
    let done = 0
    let sinceYield = 0
    while (this.state === 'running' && done < frameLimit) {
      // Frame k is complete, hence sendable, at startMs + k·frameMs.
      const due = Math.min(frameLimit, Math.floor((now() - this.startMs) / frameMs))
      while (done < due && this.state === 'running') {
        for (const u of this.units) {
          u.link.send(u.source!.nextFrame())
          if (++sinceYield >= FRAMES_PER_SLICE) {
            sinceYield = 0
            await new Promise<void>(resolve => setImmediate(resolve))
          }
        }
        done++
      }
      if (done >= frameLimit) break
      await this.sleep(this.startMs + (done + 1) * frameMs - now())
    }
    if (done >= frameLimit) {
      this.options.log(`fleet: generated ${done} frames per unit`)
      this.generatedAll()
    }
  }

  private sleep (ms: number): Promise<void> {
    return new Promise(resolve => {
      this.wake = resolve
      this.timer = setTimeout(() => {
        this.timer = null
        this.wake = null
        resolve()
      }, Math.max(0, ms))
    })
  }

  private async doStop (options: StopOptions): Promise<FleetStats> {
    const o = this.options
    const wasStarting = this.state === 'starting'
    this.state = 'stopping'
    if (wasStarting) this.abortStart?.(new SimulatorError('AMB_ERR_SIM_STATE', 'fleet stopped while starting'))
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.wake?.()
    await this.generation
    if (this.progressTimer !== null) clearInterval(this.progressTimer)

    if (options.drain === true) {
      const timeoutMs = options.timeoutMs ?? o.drainTimeoutMs
      let timer: NodeJS.Timeout | undefined
      const drained = await Promise.race([
        Promise.all(this.units.map(u => u.link.whenDrained())).then(() => true),
        new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), timeoutMs) })
      ])
      clearTimeout(timer)
      if (!drained) o.log(`fleet: ${this.stats().pending} frames still unacknowledged after ${timeoutMs} ms of draining`)
    }
    await Promise.all(this.units.map(u => u.link.close()))
    this.state = 'stopped'
    if (o.onProgress !== null && this.startMs > 0) this.emitProgress()
    return this.stats()
  }

  private emitProgress (): void {
    const s = this.stats()
    const t = performance.now()
    const dt = Math.max(1e-3, (t - this.lastProgress.at) / 1000)
    const p: FleetProgress = {
      elapsedMs: Math.max(0, this.options.now() - this.startMs),
      units: s.units,
      connected: s.connected,
      framesGenerated: s.framesGenerated,
      framesAcked: s.framesAcked,
      pending: s.pending,
      dropped: s.dropped,
      errors: s.errors,
      reconnects: s.reconnects,
      framesPerSec: round1((s.framesAcked - this.lastProgress.frames) / dt),
      ecgPointsPerSec: round1((s.ecgPointsAcked - this.lastProgress.ecgPoints) / dt),
      bytesPerSec: round1((s.bytesAcked - this.lastProgress.bytes) / dt),
      ackLatencyMs: s.ackLatencyMs
    }
    this.lastProgress = { at: t, frames: s.framesAcked, ecgPoints: s.ecgPointsAcked, bytes: s.bytesAcked }
    try {
      this.options.onProgress?.(p)
    } catch (err) {
      this.options.log(`fleet: onProgress threw: ${(err as Error).message}`)
    }
  }

  private startTimeoutError (): SimulatorError {
    const missing = this.units.filter(u => u.link.counters.connects === 0).map(u => u.link)
    const list = missing.slice(0, 5).map(l => `${l.unitId} (${l.lastError?.message ?? 'no answer'})`).join(', ')
    const more = missing.length > 5 ? ` and ${missing.length - 5} more` : ''
    return new SimulatorError('AMB_ERR_SIM_CONNECT_TIMEOUT',
      `${missing.length} of ${this.units.length} units not connected to ${this.options.url} after ${this.options.startTimeoutMs} ms: ${list}${more}`,
      { unitId: missing[0]?.unitId })
  }
}

function round1 (x: number): number {
  return Math.round(x * 10) / 10
}
