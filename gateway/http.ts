/**
 * The HTTP side (fastify): health, readiness, Prometheus metrics, the HTTP telemetry fallback for
 * devices without MQTT, and MQTT-over-WebSocket at /mqtt (@fastify/websocket). Auth on every
 * endpoint but the liveness/readiness probes; /metrics needs METRICS_TOKEN, or comes from loopback.
 */
import { timingSafeEqual, createHash } from 'node:crypto'
import websocket from '@fastify/websocket'
import type { Aedes } from 'aedes'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { createWebSocketStream } from 'ws'
import { FRAME_ERRORS } from '../decoders/index.js'
import type { CredentialStore } from './credentials.js'
import type { Ingest } from './ingest.js'
import type { Metrics } from './metrics.js'

export interface HttpDeps {
  broker: Aedes
  ingest: Ingest
  credentials: CredentialStore
  metrics: Metrics
  log: Logger
  maxFrameBytes: number
  metricsToken: string | undefined
  /** Readiness checks: name → ok (and detail). */
  readiness: () => Promise<Record<string, { ok: boolean, detail?: string }>>
}

const PROTOBUF_TYPES = ['application/x-protobuf', 'application/protobuf', 'application/octet-stream']

function bearer (req: FastifyRequest): string | undefined {
  const h = req.headers.authorization
  if (h === undefined || !h.startsWith('Bearer ')) return undefined
  return h.slice(7).trim()
}

function sameSecret (a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest()
  const hb = createHash('sha256').update(b).digest()
  return timingSafeEqual(ha, hb)
}

function isLoopback (ip: string): boolean {
  return ip === '127.0.0.1' || ip === '::1' || ip === '::ffff:127.0.0.1' || ip.startsWith('127.')
}

export async function createHttp (deps: HttpDeps): Promise<FastifyInstance> {
  const { ingest, credentials, metrics, log } = deps
  const app = Fastify({
    loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.maxFrameBytes,
    // Slow clients (slowloris) are cut off instead of holding sockets.
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    return503OnClosing: true
  })

  app.addContentTypeParser(PROTOBUF_TYPES, { parseAs: 'buffer' }, (_req, body, done) => { done(null, body) })

  app.setErrorHandler((err: Error & { statusCode?: number, code?: string }, req, reply) => {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      metrics.framesRejected.inc({ reason: 'AMB_ERR_FRAME_TOO_LARGE' })
      return reply.code(413).send({ code: 'AMB_ERR_FRAME_TOO_LARGE', message: `body exceeds maxFrameBytes ${deps.maxFrameBytes}` })
    }
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      metrics.httpRefused.inc({ reason: 'AMB_ERR_UNSUPPORTED_MEDIA' })
      return reply.code(415).send({ code: 'AMB_ERR_UNSUPPORTED_MEDIA', message: `content-type must be one of ${PROTOBUF_TYPES.join(', ')}` })
    }
    const status = err.statusCode ?? 500
    if (status >= 500) req.log.error({ err }, 'request failed')
    return reply.code(status).send({ code: err.code ?? 'AMB_ERR_INTERNAL', message: status >= 500 ? 'internal error' : err.message })
  })

  await app.register(websocket, {
    options: {
      maxPayload: deps.maxFrameBytes + 1024,
      // MQTT over WebSocket negotiates the "mqtt" subprotocol (MQTT 3.1.1 §6).
      handleProtocols: (protocols: Set<string>) => protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false
    }
  })

  app.get('/mqtt', { websocket: true }, (socket, req) => {
    const stream = createWebSocketStream(socket)
    stream.on('error', () => { socket.terminate() })
    deps.broker.handle(stream, req.raw)
  })

  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_req, reply) => {
    const checks = await deps.readiness()
    const ok = Object.values(checks).every(c => c.ok)
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', checks })
  })

  app.get('/metrics', async (req, reply) => {
    const token = bearer(req)
    const allowed = deps.metricsToken !== undefined
      ? token !== undefined && sameSecret(token, deps.metricsToken)
      : isLoopback(req.ip)
    if (!allowed) {
      metrics.httpRefused.inc({ reason: 'AMB_ERR_UNAUTHENTICATED' })
      return reply.code(401).header('www-authenticate', 'Bearer realm="metrics"').send({ code: 'AMB_ERR_UNAUTHENTICATED', message: 'metrics need METRICS_TOKEN as a Bearer token' })
    }
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })

  app.post<{ Params: { unit: string } }>('/api/v1/units/:unit/telemetry', async (req, reply) => {
    const unit = req.params.unit
    const token = bearer(req)
    const principal = token === undefined ? null : await credentials.verify(unit, token)
    if (principal === null || principal.kind !== 'device') {
      metrics.httpRefused.inc({ reason: 'AMB_ERR_UNAUTHENTICATED' })
      return reply.code(401).header('www-authenticate', 'Bearer realm="ambulink"').send({ code: 'AMB_ERR_UNAUTHENTICATED', message: 'unit id and device token do not match' })
    }
    const body = req.body
    if (!Buffer.isBuffer(body)) {
      metrics.httpRefused.inc({ reason: 'AMB_ERR_UNSUPPORTED_MEDIA' })
      return reply.code(415).send({ code: 'AMB_ERR_UNSUPPORTED_MEDIA', message: `content-type must be one of ${PROTOBUF_TYPES.join(', ')}` })
    }
    const result = await ingest.ingest(unit, body, 'http').catch((err: Error & { code?: string, retryAfter?: () => number | null }) => err)
    if (result instanceof Error) {
      const retry = typeof result.retryAfter === 'function' ? result.retryAfter() : null
      if (retry !== null) reply.header('retry-after', Math.ceil(retry / 1000))
      return reply.code(503).send({ code: result.code ?? 'AMB_ERR_SPOOL_IO', message: 'frame not stored; retry later' })
    }
    if (!result.ok) {
      return reply.code(FRAME_ERRORS[result.error.code].status).send({ code: result.error.code, message: result.error.message })
    }
    return reply.code(200).send({ accepted: true, unit, boot_id: result.frame.bootId, seq: result.frame.seq, points: result.points, replay: result.replay })
  })

  return app
}
