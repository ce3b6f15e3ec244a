/**
 * The HTTP side (fastify): health, readiness, Prometheus metrics, the HTTP telemetry fallback for
 * devices without MQTT, and MQTT-over-WebSocket at /mqtt (@fastify/websocket). Auth on every
 * endpoint but the liveness/readiness probes; /metrics needs METRICS_TOKEN, or comes from loopback.
 * Every answer, on every route, carries the security headers (issue #10, item 17); a browser
 * may open /mqtt only from an allowed Origin.
 */
import { timingSafeEqual, createHash } from 'node:crypto'
import websocket from '@fastify/websocket'
import type { Aedes } from 'aedes'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { createWebSocketStream } from 'ws'
import { FRAME_ERRORS } from '../decoders/index.js'
import { isDeviceToken, type CredentialStore } from './credentials.js'
import type { Ingest } from './ingest.js'
import { RefusalLog } from './logger.js'
import type { Metrics } from './metrics.js'
import type { MqttAdmission } from './mqtt/packet-guard.js'

export interface HttpDeps {
  broker: Aedes
  ingest: Ingest
  credentials: CredentialStore
  metrics: Metrics
  log: Logger
  maxFrameBytes: number
  metricsToken: string | undefined
  /** TRUST_PROXY: unset = X-Forwarded-* headers are ignored; "true" or proxy addresses/CIDRs. */
  trustProxy?: string | undefined
  /** Readiness checks: name → ok (and detail). */
  readiness: () => Promise<Record<string, { ok: boolean, detail?: string }>>
  /** MQTT-over-WebSocket connections go through the packet guard and connection cap. */
  mqttAdmission?: MqttAdmission
  /** MQTT_WS_ALLOWED_ORIGINS: browser origins (scheme://host[:port]) that may open /mqtt, besides the gateway's own. */
  wsAllowedOrigins?: readonly string[]
  /** TLS_CERT/TLS_KEY: serve HTTPS (and wss://…/mqtt) instead of plain HTTP. */
  https?: { cert: Buffer, key: Buffer }
  /** Whole-request deadline, ms (HTTP_REQUEST_TIMEOUT_MS): slow or trickling clients get 408. */
  requestTimeoutMs?: number
}

const PROTOBUF_TYPES = ['application/x-protobuf', 'application/protobuf', 'application/octet-stream']

function bearer (req: FastifyRequest): string | undefined {
  const h = req.headers.authorization
  // RFC 9110 §11.1: the scheme name is case-insensitive.
  if (h === undefined || !/^bearer /i.test(h)) return undefined
  return h.slice(7).trim()
}

function isProtobuf (req: FastifyRequest): boolean {
  const type = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase()
  return type !== undefined && PROTOBUF_TYPES.includes(type)
}

function sameSecret (a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest()
  const hb = createHash('sha256').update(b).digest()
  return timingSafeEqual(ha, hb)
}

/**
 * Headers for every answer (helmet's defaults, tightened for an API): nothing here is meant to
 * run scripts, be framed, sniffed or leak its address. The dashboard's scope sets its own CSP
 * (its page loads its script and styles), which is kept.
 */
const SECURITY_HEADERS: ReadonlyArray<[string, string]> = [
  ['content-security-policy', "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"],
  ['x-content-type-options', 'nosniff'],
  ['x-frame-options', 'DENY'],
  ['referrer-policy', 'no-referrer'],
  ['cross-origin-opener-policy', 'same-origin'],
  ['cross-origin-resource-policy', 'same-origin'],
  ['x-dns-prefetch-control', 'off'],
  ['x-download-options', 'noopen'],
  ['x-permitted-cross-domain-policies', 'none']
]
/** RFC 6797: only over TLS (a browser ignores it on plain HTTP anyway). */
const HSTS = 'max-age=31536000; includeSubDomains'

function originAllowed (origin: string, host: string | undefined, https: boolean, allowed: readonly string[]): boolean {
  if (allowed.includes(origin)) return true
  // Same origin: the page came from this gateway.
  return host !== undefined && origin === `${https ? 'https' : 'http'}://${host}`
}

function isLoopback (ip: string): boolean {
  return ip === '127.0.0.1' || ip === '::1' || ip === '::ffff:127.0.0.1' || ip.startsWith('127.')
}

export async function createHttp (deps: HttpDeps): Promise<FastifyInstance> {
  const { ingest, credentials, metrics, log } = deps
  const requestTimeoutMs = deps.requestTimeoutMs ?? 30_000
  // With `https` fastify's instance is typed for https.Server; the gateway only listens, reads
  // the address and closes it, which both server types do alike.
  const app = Fastify({
    ...(deps.https !== undefined ? { https: deps.https } : {}),
    loggerInstance: log.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.maxFrameBytes,
    // Slow clients (slowloris) are cut off instead of holding sockets.
    requestTimeout: requestTimeoutMs,
    connectionTimeout: Math.max(60_000, requestTimeoutMs),
    return503OnClosing: true,
    // Only a configured proxy may claim https (Secure cookies) or a client address (rate limits).
    trustProxy: deps.trustProxy === undefined ? false : deps.trustProxy === 'true' ? true : deps.trustProxy.split(',').map(s => s.trim())
  }) as unknown as FastifyInstance
  // Node checks requestTimeout only every connectionsCheckingInterval (30 s by default, read when
  // the server starts listening): a trickling client would get up to 30 s beyond its deadline.
  ;(app.server as { connectionsCheckingInterval?: number }).connectionsCheckingInterval = Math.min(30_000, Math.max(250, Math.floor(requestTimeoutMs / 3)))

  const tls = deps.https !== undefined
  app.addHook('onSend', async (_req, reply, payload) => {
    for (const [name, value] of SECURITY_HEADERS) if (!reply.hasHeader(name)) reply.header(name, value)
    if (tls && !reply.hasHeader('strict-transport-security')) reply.header('strict-transport-security', HSTS)
    return payload
  })
  const refusals = new RefusalLog(log.child({ component: 'http' }))
  app.addHook('onClose', async () => { refusals.close() })

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

  // A browser always sends Origin on a WebSocket handshake (RFC 6455 §4.1); devices and tools
  // send none. Without this check any web page a clinician opens could connect to /mqtt with
  // the browser's network position (cross-site WebSocket hijacking).
  const wsOrigins = deps.wsAllowedOrigins ?? []
  const checkOrigin = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const origin = req.headers.origin
    if (origin === undefined || originAllowed(origin, req.headers.host, tls, wsOrigins)) return
    metrics.httpRefused.inc({ reason: 'AMB_ERR_ORIGIN_NOT_ALLOWED' })
    refusals.warn('AMB_ERR_ORIGIN_NOT_ALLOWED', { origin, address: req.ip }, '/mqtt refused: origin not allowed')
    return reply.code(403).send({ code: 'AMB_ERR_ORIGIN_NOT_ALLOWED', message: 'this Origin may not open /mqtt' })
  }

  app.get('/mqtt', { websocket: true, onRequest: checkOrigin }, (socket, req) => {
    const stream = createWebSocketStream(socket)
    stream.on('error', () => { socket.terminate() })
    if (deps.mqttAdmission !== undefined) deps.mqttAdmission(stream, req.ip, req.raw)
    else deps.broker.handle(stream, req.raw)
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

  // Authentication and the content type are checked in onRequest, before the body is read:
  // strangers get 401 without making the gateway buffer up to maxFrameBytes, and any type but
  // protobuf gets 415 (not a JSON parser's 400, nor a 413 counted as a rejected frame).
  const telemetryGate = async (req: FastifyRequest<{ Params: { unit: string } }>, reply: FastifyReply): Promise<void> => {
    const token = bearer(req)
    // Only device tokens can post telemetry: checked by HMAC in microseconds, never limited, so
    // no stream of wrong tokens can keep the unit's own requests out. Anything else is refused
    // unchecked, whatever the name (the answer says nothing about which units exist).
    const principal = token === undefined || !isDeviceToken(token) ? null : await credentials.verify(req.params.unit, token)
    if (principal === null || principal.kind !== 'device') {
      metrics.httpRefused.inc({ reason: 'AMB_ERR_UNAUTHENTICATED' })
      return reply.code(401).header('www-authenticate', 'Bearer realm="ambulink"').send({ code: 'AMB_ERR_UNAUTHENTICATED', message: 'unit id and device token do not match' })
    }
    if (!isProtobuf(req)) {
      metrics.httpRefused.inc({ reason: 'AMB_ERR_UNSUPPORTED_MEDIA' })
      return reply.code(415).send({ code: 'AMB_ERR_UNSUPPORTED_MEDIA', message: `content-type must be one of ${PROTOBUF_TYPES.join(', ')}` })
    }
  }

  app.post<{ Params: { unit: string } }>('/api/v1/units/:unit/telemetry', { onRequest: telemetryGate }, async (req, reply) => {
    const unit = req.params.unit
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
