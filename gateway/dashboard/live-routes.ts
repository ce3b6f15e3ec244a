/**
 * The live feed socket (GET /api/v1/live) and the acknowledge API. The session cookie and the
 * Origin are checked before the upgrade: a refused socket gets a plain HTTP 401/403, never a
 * WebSocket. The socket lives only as long as its session (logout, expiry and revocation close it
 * with code 4001, which the page answers by showing the login form).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { LiveHub, LiveSubscription } from '../../streams/index.js'
import type { SessionStore } from '../sessions.js'
import type { AlertEngineLike } from './alerts-adapter.js'
import { sameOrigin } from './auth-routes.js'
import { MAX_CLIENT_MESSAGE_BYTES, parseClientMessage } from './client-messages.js'

export interface LiveRouteDeps {
  hub: LiveHub
  sessions: SessionStore
  alerts: () => AlertEngineLike | null
  auth: (req: FastifyRequest, reply: FastifyReply) => Promise<void>
  log: Logger
  /** Open subscriptions by session id, so the end of a session closes exactly its sockets. */
  bySession: Map<string, Set<LiveSubscription>>
}

export function liveRoutes (app: FastifyInstance, deps: LiveRouteDeps): void {
  const { hub, bySession, log } = deps

  const originGuard = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!sameOrigin(req)) {
      log.warn({ origin: req.headers.origin }, 'live socket from a foreign origin refused')
      return reply.code(403).send({ code: 'AMB_ERR_FORBIDDEN_ORIGIN', message: 'cross-origin WebSocket refused' })
    }
  }

  app.get('/api/v1/live', { websocket: true, onRequest: [deps.auth, originGuard] }, (socket, req) => {
    const session = req.session!
    socket.binaryType = 'nodebuffer'
    const sub = hub.subscribe(socket, { name: session.user, role: session.role })
    let set = bySession.get(session.id)
    if (set === undefined) bySession.set(session.id, set = new Set())
    set.add(sub)
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary || data.length > MAX_CLIENT_MESSAGE_BYTES) { sub.close(1003, 'text JSON messages only'); return }
      if (!deps.sessions.isLive(session)) { sub.close(4001, 'session ended'); return }
      const msg = parseClientMessage(data.toString('utf8'))
      if (msg === null) { sub.close(1008, 'unknown message'); return }
      sub.handle(msg)
    })
    socket.on('close', () => {
      sub.unsubscribe()
      set.delete(sub)
      if (set.size === 0) bySession.delete(session.id)
    })
    socket.on('error', err => { log.debug({ err: err.message }, 'live socket error') })
  })

  app.post<{ Params: { id: string } }>('/api/v1/alerts/:id/ack', {
    onRequest: [deps.auth, app.csrfProtection],
    schema: { params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 128 } }, required: ['id'] } }
  }, async (req, reply) => {
    const engine = deps.alerts()
    if (engine === null) return reply.code(503).send({ code: 'AMB_ERR_UNAVAILABLE', message: 'the alert engine is not running' })
    const user = req.session!.user
    const result = await engine.acknowledge(req.params.id, user)
    if (result === null || result === undefined || result === false) {
      return reply.code(404).send({ code: 'AMB_ERR_NOT_FOUND', message: 'no such alert' })
    }
    log.info({ alert: req.params.id, by: user }, 'alert acknowledged')
    return reply.code(200).send({ acknowledged: true, id: req.params.id, by: user, alert: typeof result === 'object' ? result : undefined })
  })

  // A clinician sets SpO2 scale 2 (or back to 1) for the unit's encounter (RCP 2017: a prescribed
  // 88–92 % target). The engine records who and when in its fsync'd clinical audit file first.
  app.post<{ Params: { unit: string }, Body: { scale: 1 | 2 } }>('/api/v1/units/:unit/spo2-scale', {
    onRequest: [deps.auth, app.csrfProtection],
    schema: {
      params: { type: 'object', properties: { unit: { type: 'string', minLength: 1, maxLength: 64 } }, required: ['unit'] },
      body: { type: 'object', properties: { scale: { type: 'integer', enum: [1, 2] } }, required: ['scale'], additionalProperties: false }
    }
  }, async (req, reply) => {
    const engine = deps.alerts()
    if (engine?.setSpo2ScaleBy === undefined) return reply.code(503).send({ code: 'AMB_ERR_UNAVAILABLE', message: 'the alert engine is not running' })
    const user = req.session!.user
    if (!await engine.setSpo2ScaleBy(req.params.unit, req.body.scale, user)) {
      return reply.code(404).send({ code: 'AMB_ERR_NOT_FOUND', message: 'no such unit with an active encounter' })
    }
    log.info({ unit: req.params.unit, scale: req.body.scale, by: user }, 'SpO2 scale set')
    return reply.code(200).send({ unit: req.params.unit, scale: req.body.scale, by: user })
  })
}
