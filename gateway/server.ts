/**
 * Composes the gateway: credentials, spool, dead letters, InfluxDB sink, ingest, broker and the
 * listeners. close() undoes it in reverse order: stop accepting, disconnect clients, let the sink
 * drain what it can, close the spool. Safe to call twice.
 */
import { readFileSync } from 'node:fs'
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import type { Aedes } from 'aedes'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { FrameDecoder } from '../decoders/index.js'
import { DeadLetterStore } from '../streams/index.js'
import { InfluxSink } from '../streams/index.js'
import type { LiveHub } from '../streams/index.js'
import { Spool, SPOOL_DEFAULTS } from '../streams/index.js'
import type { AlertEngine } from '../streams/index.js'
import { startAlerts } from './alert-wiring.js'
import { createBroker } from './mqtt/broker.js'
import { connectCluster, type Cluster } from './mqtt/cluster.js'
import { openClusterLink, type ClusterLink } from './cluster/redis.js'
import { Roster } from './cluster/roster.js'
import type { Config } from './config.js'
import { CredentialStore } from './credentials.js'
import { startDashboard } from './dashboard/index.js'
import { Dataspace } from './dataspace/service.js'
import { registerDataspaceRoutes } from './dataspace/routes.js'
import { DspProvider } from './dataspace/dsp-provider.js'
import { registerDspRoutes } from './dataspace/dsp-routes.js'
import { registerStatisticsRoutes } from './dataspace/stats-routes.js'
import { createHttp } from './http.js'
import { Ingest } from './ingest.js'
import { ConnectionLimiter, PasswordThrottle } from './limits.js'
import { secureDataDir } from './data-dir.js'
import { createLogger } from './logger.js'
import { createMqttAdmission } from './mqtt/packet-guard.js'
import { createMetrics, type Metrics } from './metrics.js'

export interface Gateway {
  config: Config
  log: Logger
  metrics: Metrics
  spool: Spool
  deadLetters: DeadLetterStore
  sink: InfluxSink | null
  ingest: Ingest
  broker: Aedes
  credentials: CredentialStore
  http: FastifyInstance
  /** The alert engine: subscribe to `alert` events, call acknowledge(), read NEWS2. */
  alerts: AlertEngine
  /** The live hub behind the clinicians' dashboard (ring buffers, WebSocket fan-out). */
  live: LiveHub
  /** Secondary use under data permits: catalogue, extracts, live stream, audit (the README (Dataspace)). */
  dataspace: Dataspace
  /** Bound ports (useful when configured as 0). null = listener disabled. */
  ports: { mqtt: number | null, mqtts: number | null, http: number | null }
  close: () => Promise<void>
}

function listen (server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

/** Stops accepting; live connections end when the broker closes them. */
async function stopAccepting (server: Server): Promise<void> {
  server.close()
}

export async function startGateway (config: Config, opts: { log?: Logger } = {}): Promise<Gateway> {
  const log = opts.log ?? createLogger(config.logLevel)
  const metrics = createMetrics()
  const closers: Array<() => Promise<void>> = []
  const close = async (): Promise<void> => {
    while (closers.length > 0) {
      const c = closers.pop()!
      try { await c() } catch (err) { log.error({ err }, 'error while closing') }
    }
  }
  try {
    // Patient data lives under DATA_DIR: owner-only, whatever modes an older install left.
    await secureDataDir(config.dataDir, log)
    // Counts only: user names are not logged here.
    const credentials = await CredentialStore.open(config.dataDir, config.credentialsPollMs, users => {
      log.info({ users }, 'credentials: gave account ids to users added before accounts had ids (their permits can now be granted)')
    })
    credentials.on('error', err => { log.error({ err }, 'credentials reload failed') })
    closers.push(async () => { credentials.close() })

    // Dataspace keys and audit log are opened here, before the spool drains into InfluxDB, so
    // their start-up work does not delay listening; routes and live sources are wired below.
    const dataspace = await Dataspace.open({ config, credentials, registry: metrics.registry, log: log.child({ component: 'dataspace' }) })
    closers.push(() => dataspace.close())
    const dsp = await DspProvider.open(dataspace, credentials, log.child({ component: 'dsp' }), { tokenTtlMs: config.dataspaceDspTokenTtlMs, callbackTimeoutMs: 5000, sweepMs: 1000 })
    closers.push(() => dsp.close())

    // Frame records are turned into line protocol as the spool drains, by the sink's worker
    // thread; a frame the decoder then refuses goes to the dead letters (opened below).
    const spool = await Spool.open({
      dir: join(config.dataDir, 'spool'),
      maxSpoolBytes: config.maxSpoolBytes,
      segmentBytes: config.spoolSegmentBytes,
      onPressure: (high, bytes) => {
        const share = `${Math.round(SPOOL_DEFAULTS.warnRatio * 100)}% of maxSpoolBytes`
        if (high) log.warn({ bytes, max: config.maxSpoolBytes }, `spool above ${share}: frames will be refused at the bound`)
        else log.info({ bytes }, `spool back under ${share}`)
      },
      onRefused: code => { metrics.spoolRefused.inc({ reason: code }) },
      onFault: err => {
        metrics.spoolFault.set(err === null ? 0 : 1)
        if (err !== null) log.error({ code: err.code, err: err.message }, 'spool disk fault: refusing frames (not ready) until the disk takes writes again')
        else log.warn('spool disk fault cleared: taking frames again')
      },
      onRotateFailed: err => {
        metrics.spoolRotationFailures.inc()
        log.error({ err: err.message }, 'spool segment rotation failed; the current segment keeps taking frames')
      }
    })
    metrics.spoolFault.set(0)
    closers.push(() => spool.close())
    metrics.spoolMaxBytes.set(config.maxSpoolBytes)

    const deadLetters = await DeadLetterStore.open({
      dir: join(config.dataDir, 'dead-letters'),
      maxBytes: config.maxDeadLetterBytes,
      onDropped: e => {
        metrics.deadLettersDropped.inc()
        log.error({ code: e.code, unit: e.unit }, 'dead-letter store full: entry dropped')
      }
    })
    closers.push(() => deadLetters.close())
    let sink: InfluxSink | null = null
    if (config.influxUrl !== undefined) {
      sink = new InfluxSink({
        url: config.influxUrl,
        api: config.influxApi as 'v1' | 'v2',
        token: config.influxToken,
        org: config.influxOrg,
        bucket: config.influxBucket,
        db: config.influxDb,
        maxBatchPoints: config.influxBatchPoints,
        maxBatchBytes: config.influxBatchBytes,
        lingerMs: config.influxLingerMs,
        timeoutMs: config.influxTimeoutMs,
        concurrency: config.influxConcurrency,
        workerNice: config.sinkWorkerNice
      }, spool, deadLetters, {
        onWritten: (points, _bytes, latencyMs, firstReceivedAtMs) => {
          metrics.pointsWritten.inc(points)
          metrics.influxWriteSeconds.observe(latencyMs / 1000)
          metrics.storedLagSeconds.observe(Math.max(0, Date.now() - firstReceivedAtMs) / 1000)
          metrics.influxUp.set(1)
        },
        onRetry: (err, attempt, delayMs) => {
          metrics.influxRetries.inc()
          metrics.influxUp.set(0)
          const fn = attempt === 1 || attempt % 10 === 0 ? log.warn.bind(log) : log.debug.bind(log)
          fn({ attempt, delayMs: Math.round(delayMs), err: err.message }, 'InfluxDB write failed; retrying (data stays in the spool)')
        },
        onRejected: (lines, message) => {
          metrics.pointsRejected.inc(lines)
          metrics.deadLetters.inc({ source: 'influx' })
          log.error({ lines, message }, 'InfluxDB refused lines; moved to dead letters')
        },
        onSpoolRefused: (err, kept) => {
          metrics.spoolUndrainable.inc({ reason: err.code })
          if (kept) {
            metrics.deadLetters.inc({ source: 'spool' })
            log.error({ code: err.code, err: err.message }, 'spooled frame refused when draining: kept in the dead letters')
          } else {
            log.error({ code: err.code, err: err.message }, 'spooled frame refused when draining and the dead letters are full: the drain stops, the frame stays spooled')
          }
        },
        onWorkerPriority: p => {
          if (p.notice !== null) log.warn({ tid: p.tid, nice: p.nice, sinkWorkerNice: config.sinkWorkerNice }, `InfluxDB sink worker thread priority: ${p.notice}`)
          else log.info({ tid: p.tid, niceBefore: p.niceBefore, nice: p.nice }, 'InfluxDB sink worker thread started')
        },
        onWorkerCrash: (err, restartInMs) => {
          metrics.sinkWorkerCrashes.inc()
          log.error({ err: err.message, restartInMs }, 'InfluxDB sink worker thread crashed: restarting it; its batches are retried from the spool')
        },
        onError: err => { log.error({ err }, 'InfluxDB sink error') }
      })
      if (config.influxApi === 'v1') await sink.createDatabase().catch(err => { log.warn({ err: (err as Error).message }, 'could not create the InfluxDB database yet (will retry on write)') })
      sink.start()
      const s = sink
      closers.push(() => s.close())
      log.info({ url: config.influxUrl, api: config.influxApi, backlogBytes: spool.pendingBytes }, 'InfluxDB sink started')
    } else {
      log.info({ dir: join(config.dataDir, 'spool') }, 'no INFLUX_URL: embedded default, the spool is the store of record')
    }

    const ingest = new Ingest(new FrameDecoder({
      maxFrameBytes: config.maxFrameBytes,
      maxFutureSkewMs: config.maxFutureSkewMs,
      maxPastAgeMs: config.maxPastAgeMs
    }), spool, deadLetters, metrics, log.child({ component: 'ingest' }))

    const passwordThrottle = new PasswordThrottle({
      maxFailuresPerAddress: config.loginMaxFailuresPerIp,
      windowMs: config.loginFailureWindowMs
    })
    const mqttLog = log.child({ component: 'mqtt' })
    // REDIS_URL: routing, sessions and retained messages shared with the other processes
    // (gateway/cluster.ts). Its closer runs after the broker's (closers run in reverse).
    let cluster: Cluster | undefined
    if (config.redisUrl !== undefined) {
      cluster = await connectCluster({ redisUrl: config.redisUrl, log })
      const c = cluster
      closers.push(() => c.close())
      log.info({ redis: new URL(config.redisUrl).host }, 'cluster mode: MQTT routing and sessions shared through Redis')
    }
    // The clinical side of the cluster (gateway/cluster/): dashboard sessions, the live view, one
    // alert stream, the unit roster. Closed last (closers run in reverse).
    let link: ClusterLink | undefined
    if (config.redisUrl !== undefined) {
      const l = link = await openClusterLink(config.redisUrl, log.child({ component: 'cluster' }))
      closers.unshift(() => l.close())
      log.info({ clusterProcess: l.processId }, 'cluster link up: dashboard sessions, live view, alert stream and unit roster shared through Redis')
    }
    const broker = await createBroker({
      credentials,
      ingest,
      metrics,
      log: mqttLog,
      passwordThrottle,
      cluster,
      limits: { maxSubscriptions: config.maxSubscriptionsPerClient, maxTopicLength: config.maxTopicLength, maxInflight: config.maxInflightPerClient, queueLimit: config.mqttQueueLimit, maxQueued: Math.min(config.maxQueuedPerClient, config.maxInflightPerClient) }
    })
    cluster?.attach(broker)
    // Every MQTT transport (TCP, TLS, WebSocket) enters through the cap and the packet guard.
    const admit = createMqttAdmission({
      broker,
      metrics,
      log: mqttLog,
      connections: new ConnectionLimiter(config.maxConnectionsPerIp),
      maxPacketBytes: config.maxPacketBytes
    })
    const tlsFiles = config.tlsCert !== undefined && config.tlsKey !== undefined
      ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) }
      : undefined
    closers.push(() => new Promise<void>(resolve => { broker.close(() => { resolve() }) }))

    // Alert engine: frames and wills in; spool (InfluxDB `alerts`), MQTT alerts/{unit}, metrics out.
    // Its closer runs before the broker's, so shutdown wills raise no signal loss.
    const alertWiring = await startAlerts({ config, ingest, broker, spool, metrics, log, cluster: link })
    const alerts = alertWiring.engine
    closers.push(() => alertWiring.close())

    metrics.sources.spoolBytes = () => spool.bytes
    metrics.sources.spoolPendingBytes = () => spool.pendingBytes
    metrics.sources.connectedClients = () => broker.connectedClients
    metrics.sources.spoolLagSeconds = () => spool.lagSeconds()

    const ports: Gateway['ports'] = { mqtt: null, mqtts: null, http: null }

    if (config.mqttPort !== null) {
      const tcp = createTcpServer(sock => { admit(sock, sock.remoteAddress) })
      ports.mqtt = await listen(tcp, config.mqttPort, config.host)
      closers.push(() => stopAccepting(tcp))
    }
    if (config.mqttsPort !== null && tlsFiles !== undefined) {
      const tls = createTlsServer({
        ...tlsFiles,
        ...(config.tlsCa !== undefined ? { ca: readFileSync(config.tlsCa), requestCert: true, rejectUnauthorized: true } : {})
      }, sock => { admit(sock, sock.remoteAddress) })
      // A device without a valid certificate (mTLS) never reaches aedes: count and log it here.
      tls.on('tlsClientError', (err, sock) => {
        metrics.mqttRefused.inc({ reason: 'AMB_ERR_TLS_HANDSHAKE' })
        mqttLog.warn({ reason: 'AMB_ERR_TLS_HANDSHAKE', address: sock.remoteAddress, err: err.message }, 'mqtts handshake refused')
      })
      ports.mqtts = await listen(tls, config.mqttsPort, config.host)
      closers.push(() => stopAccepting(tls))
    }

    const http = await createHttp({
      broker,
      ingest,
      credentials,
      metrics,
      log,
      maxFrameBytes: config.maxFrameBytes,
      metricsToken: config.metricsToken,
      mqttAdmission: admit,
      wsAllowedOrigins: config.mqttWsAllowedOrigins.split(',').map(o => o.trim()).filter(o => o !== ''),
      https: tlsFiles,
      requestTimeoutMs: config.httpRequestTimeoutMs,
      trustProxy: config.trustProxy,
      readiness: async () => {
        const checks: Record<string, { ok: boolean, detail?: string }> = {
          spool: spool.faulted !== null
            ? { ok: false, detail: `${spool.faulted.code}: refusing frames until the disk takes writes again` }
            : { ok: spool.bytes < config.maxSpoolBytes && !spool.refusing, detail: `${spool.bytes} of ${config.maxSpoolBytes} bytes${spool.refusing ? ', full: refusing frames' : ''}` }
        }
        // In a cluster, a process cut off from Redis cannot route alerts or find sessions: a
        // load balancer should send devices elsewhere.
        if (cluster !== undefined) checks.redis = cluster.readiness()
        // ... and one cut off from the cluster link cannot find dashboard sessions or publish alerts.
        if (link !== undefined && !link.ready && checks.redis?.ok === true) checks.redis = { ok: false, detail: 'redis: cluster link (sessions, live view, alert stream) down' }
        if (sink !== null) {
          const up = await sink.ping()
          checks.influxdb = { ok: up && sink.healthy, detail: up ? (sink.healthy ? 'writing' : `failing: ${sink.lastError?.message ?? ''}`) : 'unreachable' }
        } else {
          checks.influxdb = { ok: true, detail: 'not configured (embedded default)' }
        }
        return checks
      }
    })
    // The dashboard (page, sessions, live feed) is registered before the app listens; its closer
    // runs after the HTTP server's, once no request can reach it.
    const dashboard = await startDashboard({
      hospital: { name: config.hospitalName, latitude: config.hospitalLat, longitude: config.hospitalLon },
      sessionTtlMs: config.sessionTtlMs,
      liveBlockedTimeoutMs: config.liveBlockedTimeoutMs,
      dataDir: config.dataDir
    }, { app: http, ingest, credentials, passwordThrottle, metrics, log, alerts: alertWiring.view, cluster: link })
    closers.push(() => dashboard.close())
    if (link !== undefined) {
      const roster = await startRoster(link, ingest, alertWiring, dashboard.relay, log)
      closers.push(() => roster.close())
    }
    // Dataspace: routes registered before the app listens; live streams get frames and alerts.
    dataspace.attachFrames({ on: (e, l) => { ingest.consume(e, 'research_live', l) }, off: (e, l) => ingest.off(e, l) })
    dataspace.attachAlerts(alerts)
    registerDspRoutes(http, dsp)
    registerDataspaceRoutes(http, dataspace)
    registerStatisticsRoutes(http, dataspace)
    if (config.httpPort !== null) {
      await http.listen({ port: config.httpPort, host: config.host })
      ports.http = (http.server.address() as AddressInfo).port
    }
    closers.push(async () => { await http.close() })

    log.info({ ports, dataDir: config.dataDir, devices: credentials.deviceCount }, 'ambulink gateway listening')
    return { config, log, metrics, spool, deadLetters, sink, ingest, broker, credentials, http, alerts, live: dashboard.hub, dataspace, ports, close: once(close) }
  } catch (err) {
    await close()
    throw err
  }
}

/**
 * Cluster mode: which process holds which unit (heartbeats in Redis), and signal-loss watch of
 * a dead process' units by the survivor that takes them (gateway/cluster/roster.ts).
 */
async function startRoster (link: ClusterLink, ingest: Ingest, wiring: { engine: AlertEngine, clusterAlerts: { unitArrived: (unit: string) => void, ownsUnit: (unit: string) => boolean } | null, takeOverUnit: (unit: string) => Promise<void> }, relay: { dropProcess: (p: string) => void } | null, log: Logger): Promise<Roster> {
  /** Gateway time of each unit's last frame here; forgotten after an hour of silence. */
  const lastSeen = new Map<string, number>()
  const FORGET_MS = 3_600_000
  const roster = new Roster(link, {
    log: log.child({ component: 'cluster' }),
    lastSeen: unit => {
      const t = lastSeen.get(unit)
      if (t !== undefined && Date.now() - t > FORGET_MS) { lastSeen.delete(unit); return undefined }
      return t
    },
    onClaimed: unit => { wiring.clusterAlerts?.unitArrived(unit) },
    onUnitsClaimed: units => {
      for (const { unit, lastSeenMs } of units) {
        if (!lastSeen.has(unit)) lastSeen.set(unit, lastSeenMs)
        wiring.engine.watchUnit(unit, lastSeenMs)
        // Its state (readings, open alerts, acknowledgements) from Redis, before its next frame here.
        void wiring.takeOverUnit(unit)
      }
    },
    onProcessDead: p => { relay?.dropProcess(p) }
  })
  // With the alert engine (as soon as validated): the claim starts with the unit's take-over, so
  // its first alerts here are not dropped as another process' (cluster/alert-stream.ts).
  ingest.consume('validated', 'cluster_roster', f => {
    lastSeen.set(f.unitId, Date.now())
    roster.seen(f.unitId)
  })
  await roster.start()
  if (wiring.clusterAlerts !== null) wiring.clusterAlerts.ownsUnit = unit => roster.owns(unit)
  return roster
}

function once (fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | null = null
  return () => (p ??= fn())
}
