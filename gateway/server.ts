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
import { DeadLetterStore } from '../streams/dead-letter.js'
import { InfluxSink } from '../streams/influx-sink.js'
import { Spool } from '../streams/spool.js'
import { createBroker } from './broker.js'
import type { Config } from './config.js'
import { CredentialStore } from './credentials.js'
import { createHttp } from './http.js'
import { Ingest } from './ingest.js'
import { createLogger } from './logger.js'
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
    const credentials = await CredentialStore.open(config.dataDir, config.credentialsPollMs)
    credentials.on('error', err => { log.error({ err }, 'credentials reload failed') })
    closers.push(async () => { credentials.close() })

    const spool = await Spool.open({
      dir: join(config.dataDir, 'spool'),
      maxSpoolBytes: config.maxSpoolBytes,
      segmentBytes: config.spoolSegmentBytes,
      onPressure: (high, bytes) => {
        if (high) log.warn({ bytes, max: config.maxSpoolBytes }, 'spool above 80% of maxSpoolBytes: frames will be refused at the bound')
        else log.info({ bytes }, 'spool back under 80% of maxSpoolBytes')
      }
    })
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
        timeoutMs: config.influxTimeoutMs
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
        onError: err => { log.error({ err }, 'InfluxDB sink stopped') }
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
    }), spool, deadLetters, metrics)

    const broker = await createBroker({ credentials, ingest, metrics, log: log.child({ component: 'mqtt' }) })
    closers.push(() => new Promise<void>(resolve => { broker.close(() => { resolve() }) }))

    metrics.sources.spoolBytes = () => spool.bytes
    metrics.sources.spoolPendingBytes = () => spool.pendingBytes
    metrics.sources.connectedClients = () => broker.connectedClients
    metrics.sources.spoolLagSeconds = () => spool.lagSeconds()

    const ports: Gateway['ports'] = { mqtt: null, mqtts: null, http: null }

    if (config.mqttPort !== null) {
      const tcp = createTcpServer(sock => broker.handle(sock))
      ports.mqtt = await listen(tcp, config.mqttPort, config.host)
      closers.push(() => stopAccepting(tcp))
    }
    if (config.mqttsPort !== null && config.tlsCert !== undefined && config.tlsKey !== undefined) {
      const tls = createTlsServer({
        cert: readFileSync(config.tlsCert),
        key: readFileSync(config.tlsKey),
        ...(config.tlsCa !== undefined ? { ca: readFileSync(config.tlsCa), requestCert: true, rejectUnauthorized: true } : {})
      }, sock => broker.handle(sock))
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
      readiness: async () => {
        const checks: Record<string, { ok: boolean, detail?: string }> = {
          spool: { ok: spool.bytes < config.maxSpoolBytes, detail: `${spool.bytes} of ${config.maxSpoolBytes} bytes` }
        }
        if (sink !== null) {
          const up = await sink.ping()
          checks.influxdb = { ok: up && sink.healthy, detail: up ? (sink.healthy ? 'writing' : `failing: ${sink.lastError?.message ?? ''}`) : 'unreachable' }
        } else {
          checks.influxdb = { ok: true, detail: 'not configured (embedded default)' }
        }
        return checks
      }
    })
    if (config.httpPort !== null) {
      await http.listen({ port: config.httpPort, host: config.host })
      ports.http = (http.server.address() as AddressInfo).port
    }
    closers.push(async () => { await http.close() })

    log.info({ ports, dataDir: config.dataDir, devices: credentials.deviceCount }, 'ambulink gateway listening')
    return { config, log, metrics, spool, deadLetters, sink, ingest, broker, credentials, http, ports, close: once(close) }
  } catch (err) {
    await close()
    throw err
  }
}

function once (fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | null = null
  return () => (p ??= fn())
}
