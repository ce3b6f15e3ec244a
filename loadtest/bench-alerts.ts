/**
 * Publish → alert latency. A few "probe" units stream like every other unit (12-lead frames
 * every 250 ms in real time, numerics and position once a second, QoS 1, through UnitLink) but
 * their non-invasive systolic pressure alternates each second between 80 mmHg (below the 90
 * mmHg rule, which has no minimum duration: raised on the frame) and 120 mmHg (cleared on the
 * frame). A clinician client subscribed to `alerts/#` (QoS 1) timestamps each `raised` and
 * `cleared` event for those units; latency = its arrival − the moment the probe handed the
 * triggering frame to MQTT. Both ends run in this process, on one clock.
 */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { decodeWire, encodeFrame } from '../decoders/index.js'
import type { BenchUnitReport } from '../testkit/stored.js'
import { percentiles } from '../testkit/stored.js'
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
  onEvent?: (e: { unit: string, type: 'raised' | 'cleared', sentAt: number, receivedAt: number }) => void
}

interface Probe {
  link: UnitLink
  source: UnitFrameSource | null
  /** performance clock (ms since timeOrigin) of the last trigger frame sent, per expected event. */
  pending: { raised: number | null, cleared: number | null }
}

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
      pending: { raised: null, cleared: null }
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
    if (frame.meta.numerics > 0) {
      // Alternate each second: raise (80 mmHg), clear (120 mmHg).
      const raise = Math.floor((frame.meta.seq - 1) / 4) % 2 === 0
      frame = withSystolic(frame, raise ? 80 : 120)
      p.pending[raise ? 'raised' : 'cleared'] = wallNow()
    }
    p.link.send(frame)
  }

  private onAlert (payload: Buffer): void {
    const now = wallNow()
    let ev: { type?: string, alert?: { unit?: string, kind?: string, key?: string } }
    try { ev = JSON.parse(payload.toString()) as typeof ev } catch { return }
    if (ev.alert?.kind !== 'threshold' || ev.alert.key !== 'nibp_systolic') return
    const p = this.probes.find(x => x.link.unitId === ev.alert?.unit)
    if (p === undefined || (ev.type !== 'raised' && ev.type !== 'cleared')) return
    const sentAt = p.pending[ev.type]
    if (sentAt === null) {
      this.unmatched++
      return
    }
    p.pending[ev.type] = null
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
  summary (sinceMs = 0, untilMs = Infinity): { p50: number, p99: number, max: number, count: number } {
    return percentiles(this.latencies.filter((_x, i) => this.latencyAt[i]! >= sinceMs && this.latencyAt[i]! <= untilMs))
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
