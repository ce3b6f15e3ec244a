/**
 * Connects the alert engine (streams/alerts/) to the gateway: validated frames (as soon as they
 * are validated, before their spool append is durable: ingest.ts) and units' will messages in;
 * every alert event out to (a) the spool as line protocol for the `alerts` measurement, with the
 * same durability and InfluxDB path as samples, (b) MQTT `alerts/{unit}` as JSON (QoS 1, not
 * retained) for clinician and hospital-system clients, (c) metrics. The dashboard subscribes to
 * the engine itself (gw.alerts).
 */
import type { Aedes, AedesPublishPacket } from 'aedes'
import type { Logger } from 'pino'
import type { Frame } from '../decoders/index.js'
import { ALERT_ENGINE_DEFAULTS, AlertEngine, JournalStateStore, alertEventToLine, alertsDir, DEFAULT_RULES, loadRulesFile, type AlertEvent } from '../streams/index.js'
import type { Spool } from '../streams/index.js'
import { ClusterAlerts } from './cluster/alert-stream.js'
import { RedisStateStore } from './cluster/state-redis.js'
import type { ClusterLink } from './cluster/redis.js'
import type { Config } from './config.js'
import type { AlertEngineLike } from './dashboard/alerts-adapter.js'
import type { Ingest } from './ingest.js'
import type { Metrics } from './metrics.js'
import { traceAlertDelivered, traceAlertEmitted, type AlertTrace } from './trace.js'

export interface AlertWiringDeps {
  config: Config
  ingest: Ingest
  broker: Aedes
  spool: Spool
  metrics: Metrics
  log: Logger
  /** REDIS_URL: one alert stream for the cluster (gateway/cluster/alert-stream.ts). */
  cluster?: ClusterLink
}

export interface AlertWiring {
  engine: AlertEngine
  /** What dashboards read: the cluster's alerts in cluster mode, else the engine. */
  view: AlertEngineLike
  /** Cluster mode: the alert stream. */
  clusterAlerts: ClusterAlerts | null
  /** Cluster mode: unit snapshots in Redis (gateway/cluster/state-redis.ts). */
  stateStore: RedisStateStore | null
  /**
   * Cluster mode: takes over a unit this process did not hold (claimed from a dead process)
   * before its next frame is processed here. Resolves once done (bounded by the Redis timeout).
   */
  takeOverUnit: (unit: string) => Promise<void>
  /** Detaches the inputs and closes the engine (timer, journal). Run before the broker closes. */
  close: () => Promise<void>
}

const STATUS = /^units\/([^/]+)\/status$/
/** Cluster mode: snapshot period of a changed unit, ms. */
const CLUSTER_SNAPSHOT_MS = 1000
/** Frames held per unit while it is taken over (at most the Redis timeout, 1 s). */
const HOLD_MAX = 1000

export async function startAlerts (deps: AlertWiringDeps): Promise<AlertWiring> {
  const { config, ingest, broker, spool, metrics } = deps
  const log = deps.log.child({ component: 'alerts' })
  // A bad rules file fails the start, naming the file and the key (AMB_ERR_ALERT_RULES).
  const rules = config.alertRulesFile !== undefined ? await loadRulesFile(config.alertRulesFile) : DEFAULT_RULES
  const onError = (err: Error): void => { log.error({ err }, 'alert engine error') }
  const dir = alertsDir(config.dataDir)
  // Cluster mode: the unit's state follows it to whichever process receives it next.
  const stateStore = deps.cluster !== undefined
    ? new RedisStateStore({ link: deps.cluster, local: new JournalStateStore(dir, onError, ALERT_ENGINE_DEFAULTS.compactBytes), log })
    : null
  const engine = await AlertEngine.open({
    dir,
    stateStore,
    // Cluster mode: a changed unit is saved every second (coalesced per unit, never on the ingest path).
    snapshotIntervalMs: stateStore !== null ? CLUSTER_SNAPSHOT_MS : ALERT_ENGINE_DEFAULTS.snapshotIntervalMs,
    rules,
    signalLossMs: config.signalLossMs,
    escalateAfterMs: config.alertEscalateMs,
    ackSilenceMs: {
      high: config.alertAckSilenceMs,
      medium: Math.max(config.alertAckSilenceMs, ALERT_ENGINE_DEFAULTS.ackSilenceMs.medium),
      low: Math.max(config.alertAckSilenceMs, ALERT_ENGINE_DEFAULTS.ackSilenceMs.low)
    },
    deviceAlarmHoldMs: config.alertDeviceAlarmHoldMs,
    linkSteadyMs: config.alertLinkSteadyMs,
    // The stroke alert's windows at arrival use the ETA from each frame's position.
    hospital: { latitude: config.hospitalLat, longitude: config.hospitalLon },
    onError
  })

  const feed = (f: Frame): void => {
    // Caught here, not only by Ingest: held frames (cluster take-over) are fed from here too. An
    // engine fault never fails the device's frame; it is logged and counted by Ingest.
    try { engine.onFrame(f) } catch (err) { ingest.consumerFailed('alert_engine', f.unitId, err) }
  }
  /** Cluster mode: units whose take-over is in progress → their frames held meanwhile (in order). */
  const holding = new Map<string, Frame[]>()
  /** Units taken over (or first seen) here: later frames go straight to the engine. */
  const known = new Set<string>()
  const takeOverUnit = async (unit: string): Promise<void> => {
    if (stateStore === null || known.has(unit) || holding.has(unit)) return
    holding.set(unit, [])
    const started = Date.now()
    try {
      const got = await stateStore.takeOver(unit)
      if (got !== null) engine.takeOver(got.snapshot, got.open, unit)
      else log.warn({ unit }, 'unit state not read from Redis in time: the unit starts afresh here')
      log.info({ unit, ms: Date.now() - started, snapshot: got?.snapshot != null, openAlerts: got?.open.length ?? 0 }, 'unit taken over')
    } catch (err) {
      log.error({ err, unit }, 'unit take-over failed: the unit starts afresh here')
    } finally {
      known.add(unit)
      const held = holding.get(unit) ?? []
      holding.delete(unit)
      for (const f of held) feed(f)
    }
  }
  const onFrame = (f: Frame): void => {
    if (stateStore === null || known.has(f.unitId)) { feed(f); return }
    const held = holding.get(f.unitId)
    // Bounded: past this, frames go on (late alerts are worse than a take-over missed).
    if (held !== undefined) { if (held.length < HOLD_MAX) held.push(f); else feed(f); return }
    if (engine.hasFramesOf(f.unitId)) { known.add(f.unitId); feed(f); return }
    // takeOverUnit marks the unit held before its first await: this frame waits with the rest.
    void takeOverUnit(f.unitId)
    holding.get(f.unitId)?.push(f)
  }
  const onPublish = (packet: AedesPublishPacket): void => {
    const topic = packet.topic
    // Every telemetry publish passes here too: reject those with the cheapest test first.
    if (!topic.endsWith('/status')) return
    const m = STATUS.exec(topic)
    if (m === null) return
    const payload = packet.payload.toString().trim()
    if (payload === 'offline' || payload === 'online') engine.onStatus(m[1]!, payload)
  }
  const onAlert = (ev: AlertEvent): void => {
    const a = ev.alert
    const trace: AlertTrace | null = traceAlertEmitted.hasSubscribers ? { unit: a.unit, type: ev.type, id: a.id } : null
    if (trace !== null) traceAlertEmitted.publish(trace)
    metrics.alertsTotal.inc({ kind: a.kind, priority: a.priority, event: ev.type })
    spool.append(alertEventToLine(ev), 1).catch((err: Error) => {
      log.error({ err: err.message, id: a.id, event: ev.type }, 'alert not spooled (InfluxDB will miss this event)')
    })
    broker.publish({ topic: `alerts/${a.unit}`, payload: Buffer.from(JSON.stringify(ev)), qos: 1, retain: false, cmd: 'publish', dup: false }, err => {
      if (err !== undefined && err !== null) log.warn({ err: err.message, id: a.id }, 'alert not published on MQTT')
      if (trace !== null) traceAlertDelivered.publish(trace)
    })
    log.info({ unit: a.unit, kind: a.kind, key: a.key, priority: a.priority, event: ev.type, id: a.id }, 'alert')
  }
  ingest.consume('validated', 'alert_engine', onFrame)
  broker.on('publish', onPublish)
  // In a cluster, an event is spooled and sent on MQTT by the one process that published it.
  const clusterAlerts = deps.cluster !== undefined ? await ClusterAlerts.open({ link: deps.cluster, engine, log }) : null
  if (clusterAlerts !== null) clusterAlerts.on('published', onAlert)
  else engine.on('alert', onAlert)
  metrics.sources.alertsOpen = () => engine.openCount

  return {
    engine,
    view: clusterAlerts ?? engine,
    clusterAlerts,
    stateStore,
    takeOverUnit,
    close: async () => {
      // Inputs first: the broker's shutdown publishes every client's will, which is not a unit
      // going offline and must not raise signal loss into the journal.
      ingest.off('validated', onFrame)
      broker.off('publish', onPublish)
      await engine.close()
      await clusterAlerts?.close()
      clusterAlerts?.off('published', onAlert)
      engine.off('alert', onAlert)
    }
  }
}
