/**
 * The fleet's options: one table of defaults, validated once when the Fleet is built, with
 * errors that name the option. Device-level defaults (frame length, leads, rate) live in
 * frame-source.ts and are reused here, not copied.
 */
import type { IClientOptions } from 'mqtt'
import { LIMITS } from '../decoders/index.js'
import { SimulatorError } from './errors.js'
import { DEVICE_DEFAULTS, validateDeviceOptions, type LeadSet } from './frame-source.js'
import type { LatencySummary } from './latency.js'
import { PATIENT_PROFILES, type PatientProfile } from './vitals.js'

export interface UnitCredentials { unitId: string, token: string }

export interface FleetProgress {
  /** Since start() resolved, ms. */
  elapsedMs: number
  units: number
  connected: number
  framesGenerated: number
  framesAcked: number
  pending: number
  dropped: number
  errors: number
  reconnects: number
  /** Rates over the last progress interval, per second. */
  framesPerSec: number
  ecgPointsPerSec: number
  bytesPerSec: number
  ackLatencyMs: LatencySummary
}

export interface FleetOptions {
  /** Broker URL: mqtt://host:1883, mqtts://host:8883, ws://host:8080/mqtt, wss://… */
  url: string
  /** One entry per ambulance: MQTT username and clientId = unitId, password = token. */
  units: readonly UnitCredentials[]
  /** Frame length, ms (default 250). Each frame covers exactly this span of device time. */
  frameMs?: number
  /** ECG leads per frame: 12, 1 (lead II) or 0 (default 12). */
  leads?: LeadSet
  /** ECG samples per second per lead (default 500). */
  ecgHz?: number
  /** ECG scale, µV per LSB (default 1). */
  microvoltsPerLsb?: number
  /** Numerics and position every N frames (default: once per second of device time). */
  numericsEveryFrames?: number
  /** Patient profiles, assigned to units in turn (default: all four, cycled). */
  profiles?: readonly PatientProfile[]
  /** MQTT QoS of telemetry (default 1). With 0, "acked" means written to the socket. */
  qos?: 0 | 1
  /** MQTT clean session (default true). */
  clean?: boolean
  /** Stop generating after this much device time, ms (default: run until stop()). */
  durationMs?: number
  /** Stop generating after this many frames per unit (default: no limit). */
  maxFrames?: number
  /** Interval of onProgress, ms (default 5000). */
  progressIntervalMs?: number
  onProgress?: (p: FleetProgress) => void
  /** Human-readable events (connects, outages, drops); default: silent. */
  log?: (msg: string) => void
  /**
   * Extra mqtt.js options, e.g. `ca`, `cert`, `key`, `rejectUnauthorized` for TLS. clientId,
   * username, password, clean, will and the reconnect settings are set by the fleet.
   */
  mqttOptions?: IClientOptions
  /** Frames per unit handed to the MQTT client before a PUBACK is required (default 32). */
  inflightWindow?: number
  /** Per-unit store-and-forward capacity, frames; beyond it the oldest unsent are dropped (default 7200 = 30 min at 250 ms). */
  maxQueuedFrames?: number
  /** mqtt.js reconnect period, ms (default 1000). */
  reconnectPeriodMs?: number
  /** Per-attempt CONNACK timeout, ms (default 10000). */
  connectTimeoutMs?: number
  /** MQTT keepalive, s (default 30). */
  keepaliveS?: number
  /** start() rejects unless every unit connected within this time, ms (default 30000). */
  startTimeoutMs?: number
  /** stop({ drain: true }) gives up waiting for PUBACKs after this, ms (default 30000). */
  drainTimeoutMs?: number
  /** Keep every acknowledged frame's metadata for ackedFrames() (default false: tests only). */
  recordAckedFrames?: boolean
  /** Seed of the patients' physiology, for reproducible runs (default: random). */
  seed?: number
  /** Clock, Unix ms (default Date.now); injectable for tests. */
  now?: () => number
}

/** Options after defaults and validation: what the Fleet runs on. */
export interface ResolvedFleetOptions {
  url: string
  units: readonly UnitCredentials[]
  frameMs: number
  leads: LeadSet
  ecgHz: number
  microvoltsPerLsb: number
  numericsEveryFrames: number
  profiles: readonly PatientProfile[]
  qos: 0 | 1
  clean: boolean
  /** Frames per unit to generate (Infinity = until stop()). */
  frameLimit: number
  progressIntervalMs: number
  onProgress: ((p: FleetProgress) => void) | null
  log: (msg: string) => void
  mqttOptions: IClientOptions
  inflightWindow: number
  maxQueuedFrames: number
  reconnectPeriodMs: number
  connectTimeoutMs: number
  keepaliveS: number
  startTimeoutMs: number
  drainTimeoutMs: number
  recordAckedFrames: boolean
  seed: number
  now: () => number
}

export const FLEET_DEFAULTS = Object.freeze({
  ...DEVICE_DEFAULTS,
  profiles: PATIENT_PROFILES,
  qos: 1 as 0 | 1,
  clean: true,
  progressIntervalMs: 5_000,
  inflightWindow: 32,
  maxQueuedFrames: 7_200,
  reconnectPeriodMs: 1_000,
  connectTimeoutMs: 10_000,
  keepaliveS: 30,
  startTimeoutMs: 30_000,
  drainTimeoutMs: 30_000,
  recordAckedFrames: false
})

const PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'tls:', 'ws:', 'wss:'])

export function resolveFleetOptions (o: FleetOptions): ResolvedFleetOptions {
  const r = { ...FLEET_DEFAULTS, ...withoutUndefined(o), url: o.url, units: o.units }
  let url: URL
  try {
    url = new URL(r.url)
  } catch {
    invalid(`url ${JSON.stringify(r.url)} is not a URL`)
  }
  if (!PROTOCOLS.has(url.protocol)) invalid(`url protocol ${url.protocol} is not one of ${[...PROTOCOLS].join(' ')}`)
  if (!Array.isArray(r.units) || r.units.length === 0) invalid('units must list at least one {unitId, token}')
  const seen = new Set<string>()
  for (const u of r.units) {
    // Unit ids become topic levels and InfluxDB tags: the contract's id pattern keeps them safe.
    if (typeof u.unitId !== 'string' || !LIMITS.idPattern.test(u.unitId)) invalid(`unitId ${JSON.stringify(u.unitId)} must match ${LIMITS.idPattern}`)
    if (typeof u.token !== 'string' || u.token === '') invalid(`unit ${u.unitId}: token must be a non-empty string`)
    if (seen.has(u.unitId)) invalid(`unit ${u.unitId} is listed twice`)
    seen.add(u.unitId)
  }
  if (r.qos !== 0 && r.qos !== 1) invalid(`qos ${String(r.qos)} must be 0 or 1`)
  if (r.profiles.length === 0 || r.profiles.some(p => !PATIENT_PROFILES.includes(p))) {
    invalid(`profiles must be a non-empty list of ${PATIENT_PROFILES.join(', ')}`)
  }
  positiveInt('inflightWindow', r.inflightWindow)
  positiveInt('maxQueuedFrames', r.maxQueuedFrames)
  if (r.maxQueuedFrames <= r.inflightWindow) invalid(`maxQueuedFrames ${r.maxQueuedFrames} must exceed inflightWindow ${r.inflightWindow}`)
  positiveInt('progressIntervalMs', r.progressIntervalMs)
  positiveInt('reconnectPeriodMs', r.reconnectPeriodMs)
  positiveInt('connectTimeoutMs', r.connectTimeoutMs)
  positiveInt('startTimeoutMs', r.startTimeoutMs)
  positiveInt('drainTimeoutMs', r.drainTimeoutMs)
  if (!Number.isInteger(r.keepaliveS) || r.keepaliveS < 0) invalid(`keepaliveS ${r.keepaliveS} must be a non-negative integer`)
  const numericsEveryFrames = validateDeviceOptions(r)
  let frameLimit = Infinity
  if (o.durationMs !== undefined) {
    if (!(o.durationMs > 0)) invalid(`durationMs ${o.durationMs} must be positive`)
    frameLimit = Math.floor(o.durationMs / r.frameMs)
  }
  if (o.maxFrames !== undefined) {
    positiveInt('maxFrames', o.maxFrames)
    frameLimit = Math.min(frameLimit, o.maxFrames)
  }
  return {
    ...r,
    mqttOptions: o.mqttOptions ?? {},
    log: o.log ?? (() => {}),
    now: o.now ?? Date.now,
    onProgress: o.onProgress ?? null,
    numericsEveryFrames,
    frameLimit,
    seed: o.seed ?? Math.floor(Math.random() * 2 ** 32)
  }
}

function positiveInt (name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) invalid(`${name} ${v} must be a positive integer`)
}

function invalid (message: string): never {
  throw new SimulatorError('AMB_ERR_SIM_OPTION_INVALID', message)
}

/** Drops keys set to undefined, so they do not overwrite defaults when spread. */
function withoutUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
