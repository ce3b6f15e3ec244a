/**
 * Publish → alert latency. A few "probe" units stream like every other unit (12-lead frames
 * every 250 ms in real time, numerics and position once a second, QoS 1, through UnitLink) but
 * their non-invasive systolic pressure alternates between 80 mmHg (below the 90 mmHg rule, which
 * has no minimum duration: raised on the frame) and 120 mmHg (cleared on the frame), every
 * `flipEveryFrames` frames (4: each second, on the frames that carry numerics; 1: every 250 ms
 * frame, each carrying the reading: 4 events a second per probe). A clinician client subscribed
 * to `alerts/#` (QoS 1) timestamps each `raised` and `cleared` event for those units; latency =
 * its arrival − the moment the probe handed the triggering frame to MQTT. Both ends run in this
 * process, on one clock; `ambulink bench` runs this in a process of its own
 * (bench-alert-process.ts), away from the fleet's event loop.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { decodeWire, encodeFrame } from '../decoders/index.js'
import type { BenchUnitReport } from '../testkit/stored.js'
import { UnitFrameSource, type SourceFrame } from '../simulator/frame-source.js'
import { UnitLink } from '../simulator/unit-link.js'
import { PATIENT_PROFILES } from '../simulator/vitals.js'

const NIBP_SYSTOLIC = 4
const FRAME_MS = 250

export interface AlertProbeOptions {
  url: string
  /** Where the clinician connects (another process in a cluster, or the same URL). */
  clinicianUrl: string
  units: readonly string[]
  token: string
  clinician: { name: string, password: string }
  log: (msg: string) => void
  /** Extra mqtt.js options for the probe devices (e.g. `servers` to fail over elsewhere). */
  deviceMqttOptions?: IClientOptions
  /** MQTT clean session of the probe devices (default true). */
  clean?: boolean
  /** Each matched event, with its two wall-clock times (loadtest/alert-path.ts times the stages between). */
  onEvent?: (e: AlertProbeEvent) => void
  /** Frames between two flips of the systolic pressure (default 4: each second; 1: each 250 ms frame). */
  flipEveryFrames?: number
}

export interface AlertProbeEvent { unit: string, type: 'raised' | 'cleared', sentAt: number, receivedAt: number }

/** Publish → alert latencies of a window, ms. */
export interface AlertLatency { p50: number, p95: number, p99: number, max: number, count: number }

/** p50, p95, p99 (nearest rank, 0.1 ms) and max of latencies in ms; zeros for none. */
export function latencyStats (xs: readonly number[]): AlertLatency {
  if (xs.length === 0) return { p50: 0, p95: 0, p99: 0, max: 0, count: 0 }
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number): number => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 10) / 10
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: Math.round(s[s.length - 1]! * 10) / 10, count: s.length }
}

interface Probe {
  link: UnitLink
  source: UnitFrameSource | null
  /**
   * Wall time each trigger frame was handed to MQTT, by the event it should cause and its device
   * time (`raised@<captured_at_ms>`: the alert's raisedAt or clearedAt is the reading's time), so
   * an event matches its own frame however late it comes and however many flips came since.
   */
  pending: Map<string, number>
}

/** Triggers kept per probe waiting for their event (a minute of flips every 250 ms). */
const MAX_PENDING = 240

const wallNow = (): number => performance.timeOrigin + performance.now()

export class AlertProbes {
  private readonly probes: Probe[]
  private clinician: MqttClient | null = null
  private timer: NodeJS.Timeout | null = null
  private startMs = 0
  private sent = 0
  private readonly latencies: number[] = []
  /** Wall time of each latency sample (warm-up exclusion). */
  private readonly latencyAt: number[] = []
  /** Alert events for probe units that matched no trigger (should stay 0). */
  unmatched = 0

  constructor (private readonly o: AlertProbeOptions) {
    this.probes = o.units.map(unitId => ({
      link: new UnitLink(unitId, o.token, {
        url: o.url,
        qos: 1,
        clean: o.clean ?? true,
        inflightWindow: 32,
        maxQueuedFrames: 7200,
        reconnectPeriodMs: 1000,
        connectTimeoutMs: 10_000,
        keepaliveS: 30,
        statusTimeoutMs: 2000,
        mqttOptions: o.deviceMqttOptions ?? {},
        recordAckedFrames: false
      }, { acked: () => {}, log: o.log }),
      source: null,
      pending: new Map()
    }))
  }

  /** Connects the clinician (subscribed before any probe sends) and the probes. */
  async connect (): Promise<void> {
    const c = mqtt.connect(this.o.clinicianUrl, {
      clientId: `${this.o.clinician.name}:bench`,
      username: this.o.clinician.name,
      password: this.o.clinician.password,
      reconnectPeriod: 1000
    })
    this.clinician = c
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve())
      c.once('error', reject)
    })
    await c.subscribeAsync('alerts/#', { qos: 1 })
    c.on('message', (_topic, payload) => this.onAlert(payload))
    await Promise.all(this.probes.map(p => p.link.open()))
  }

  /** Starts streaming in real time from device time `startMs` (the fleet's start). */
  start (startMs: number): void {
    this.startMs = startMs
    this.probes.forEach((p, i) => {
      p.source = new UnitFrameSource({ unitId: p.link.unitId, startMs, profile: PATIENT_PROFILES[i % PATIENT_PROFILES.length]!, seed: 1000 + i })
    })
    const tick = (): void => {
      const due = Math.floor((Date.now() - this.startMs) / FRAME_MS)
      while (this.sent < due) {
        this.sent++
        for (const p of this.probes) this.send(p)
      }
      this.timer = setTimeout(tick, Math.max(1, this.startMs + (this.sent + 1) * FRAME_MS - Date.now()))
    }
    tick()
  }

  private send (p: Probe): void {
    let frame = p.source!.nextFrame()
    const every = this.o.flipEveryFrames ?? 4
    // Each second: on the frames that carry numerics (1 in 4); faster: on every frame.
    if (every < 4 || frame.meta.numerics > 0) {
      // Alternate: raise (80 mmHg), clear (120 mmHg).
      const raise = Math.floor((frame.meta.seq - 1) / every) % 2 === 0
      frame = withSystolic(frame, raise ? 80 : 120)
      p.pending.set(`${raise ? 'raised' : 'cleared'}@${frame.meta.capturedAtMs}`, wallNow())
      // A trigger that caused no event (e.g. a clear with nothing open) is forgotten in time.
      if (p.pending.size > MAX_PENDING) p.pending.delete(p.pending.keys().next().value!)
    }
    p.link.send(frame)
  }

  private onAlert (payload: Buffer): void {
    const now = wallNow()
    let ev: { type?: string, alert?: { unit?: string, kind?: string, key?: string, raisedAt?: number, clearedAt?: number | null } }
    try { ev = JSON.parse(payload.toString()) as typeof ev } catch { return }
    if (ev.alert?.kind !== 'threshold' || ev.alert.key !== 'nibp_systolic') return
    const p = this.probes.find(x => x.link.unitId === ev.alert?.unit)
    if (p === undefined || (ev.type !== 'raised' && ev.type !== 'cleared')) return
    const key = `${ev.type}@${ev.type === 'raised' ? ev.alert.raisedAt : ev.alert.clearedAt}`
    const sentAt = p.pending.get(key)
    if (sentAt === undefined) {
      this.unmatched++
      return
    }
    p.pending.delete(key)
    this.latencies.push(now - sentAt)
    this.latencyAt.push(now)
    this.o.onEvent?.({ unit: p.link.unitId, type: ev.type, sentAt, receivedAt: now })
  }

  /** Stops sending; waits (bounded) for PUBACKs and late alerts; disconnects. */
  async stop (drainMs = 10_000): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer)
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(this.probes.map(p => p.link.whenDrained())),
      new Promise<void>(resolve => { timer = setTimeout(resolve, drainMs) })
    ])
    clearTimeout(timer)
    await new Promise(resolve => setTimeout(resolve, 500))
    await Promise.all(this.probes.map(p => p.link.close()))
    await this.clinician?.endAsync(true)
  }

  /** Per probe: connections made (more than one: it reconnected), frames generated and acked. */
  linkStats (): Array<{ unitId: string, connects: number, generated: number, acked: number }> {
    return this.probes.map(p => ({ unitId: p.link.unitId, connects: p.link.counters.connects, generated: p.link.counters.generated, acked: p.link.counters.acked }))
  }

  /** Latencies in ms, of events received from `sinceMs` up to `untilMs` (wall clock). */
  summary (sinceMs = 0, untilMs = Infinity): AlertLatency {
    return latencyStats(this.latencies.filter((_x, i) => this.latencyAt[i]! >= sinceMs && this.latencyAt[i]! <= untilMs))
  }

  reports (): BenchUnitReport[] {
    return this.probes.map(p => ({
      unitId: p.link.unitId,
      startMs: this.startMs,
      frameMs: FRAME_MS,
      acked: p.link.counters.acked,
      ackedSeqRanges: p.link.counters.ackedSeqRanges(),
      ecgPointsAcked: p.link.counters.ecgPointsAcked
    }))
  }
}

/** The frame with its systolic pressure replaced (decode, edit, encode: probes only). */
function withSystolic (f: SourceFrame, mmHg: number): SourceFrame {
  const w = decodeWire(f.bytes)
  const numerics = w.numerics.filter(n => n.sign !== NIBP_SYSTOLIC)
  numerics.push({ sign: NIBP_SYSTOLIC, value: mmHg, offsetMs: 0 })
  const bytes = Buffer.from(encodeFrame({ ...w, numerics, position: w.position ?? undefined, assessment: w.assessment ?? undefined }))
  return { bytes, meta: { ...f.meta, bytes: bytes.length, numerics: numerics.length } }
}
