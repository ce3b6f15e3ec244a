/**
 * Connects the alert engine (streams/alerts/) to the gateway: validated frames and units' will
 * messages in; every alert event out to (a) the spool as line protocol for the `alerts`
 * measurement, with the same durability and InfluxDB path as samples, (b) MQTT `alerts/{unit}`
 * as JSON (QoS 1, not retained) for clinician and hospital-system clients, (c) metrics. The
 * dashboard subscribes to the engine itself (gw.alerts).
 */
import type { Aedes, AedesPublishPacket } from 'aedes'
import type { Logger } from 'pino'
import type { Frame } from '../decoders/index.js'
import { ALERT_ENGINE_DEFAULTS, AlertEngine, alertEventToLine, alertsDir, DEFAULT_RULES, loadRulesFile, type AlertEvent } from '../streams/index.js'
import type { Spool } from '../streams/index.js'
import { ClusterAlerts } from './cluster/alert-stream.js'
import type { ClusterLink } from './cluster/redis.js'
import type { Config } from './config.js'
import type { AlertEngineLike } from './dashboard/alerts-adapter.js'
import type { Ingest } from './ingest.js'
import type { Metrics } from './metrics.js'

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
  /** Detaches the inputs and closes the engine (timer, journal). Run before the broker closes. */
  close: () => Promise<void>
}

const STATUS = /^units\/([^/]+)\/status$/

export async function startAlerts (deps: AlertWiringDeps): Promise<AlertWiring> {
  const { config, ingest, broker, spool, metrics } = deps
  const log = deps.log.child({ component: 'alerts' })
  // A bad rules file fails the start, naming the file and the key (AMB_ERR_ALERT_RULES).
  const rules = config.alertRulesFile !== undefined ? await loadRulesFile(config.alertRulesFile) : DEFAULT_RULES
  const engine = await AlertEngine.open({
    dir: alertsDir(config.dataDir),
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
    onError: err => { log.error({ err }, 'alert engine error') }
  })

  const onFrame = (f: Frame): void => {
    // Ingest emits after the frame is spooled: an engine fault must not fail the device's frame.
    try { engine.onFrame(f) } catch (err) { log.error({ err, unit: f.unitId }, 'alert engine failed on a frame') }
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
    metrics.alertsTotal.inc({ kind: a.kind, priority: a.priority, event: ev.type })
    spool.append(alertEventToLine(ev), 1).catch((err: Error) => {
      log.error({ err: err.message, id: a.id, event: ev.type }, 'alert not spooled (InfluxDB will miss this event)')
    })
    broker.publish({ topic: `alerts/${a.unit}`, payload: Buffer.from(JSON.stringify(ev)), qos: 1, retain: false, cmd: 'publish', dup: false }, err => {
      if (err !== undefined && err !== null) log.warn({ err: err.message, id: a.id }, 'alert not published on MQTT')
    })
    log.info({ unit: a.unit, kind: a.kind, key: a.key, priority: a.priority, event: ev.type, id: a.id }, 'alert')
  }
  ingest.on('frame', onFrame)
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
    close: async () => {
      // Inputs first: the broker's shutdown publishes every client's will, which is not a unit
      // going offline and must not raise signal loss into the journal.
      ingest.off('frame', onFrame)
      broker.off('publish', onPublish)
      await engine.close()
      await clusterAlerts?.close()
      clusterAlerts?.off('published', onAlert)
      engine.off('alert', onAlert)
    }
  }
}
