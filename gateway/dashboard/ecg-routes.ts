/**
 * GET /api/v1/alerts/:id/ecg: the 10 s 12-lead snapshot kept with an ECG STEMI alert, for the
 * dashboard's 12-lead viewer. Same session cookie as the other dashboard APIs (401 without);
 * no-store, since it is patient data; each read is logged with the user and the alert id (never
 * the encounter).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { AlertEngineLike } from './alerts-adapter.js'

export interface EcgRouteDeps {
  alerts: () => AlertEngineLike | null
  auth: (req: FastifyRequest, reply: FastifyReply) => Promise<void>
  log: Logger
}

export function ecgRoutes (app: FastifyInstance, deps: EcgRouteDeps): void {
  app.get<{ Params: { id: string } }>('/api/v1/alerts/:id/ecg', {
    onRequest: [deps.auth],
    schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Za-z0-9-]{1,64}$' } }, required: ['id'] } }
  }, async (req, reply) => {
    const engine = deps.alerts()
    if (engine?.ecgSnapshot === undefined) return reply.code(503).send({ code: 'AMB_ERR_UNAVAILABLE', message: 'the alert engine is not running' })
    const snap = await engine.ecgSnapshot(req.params.id)
    if (snap === null) return reply.code(404).send({ code: 'AMB_ERR_NOT_FOUND', message: 'no ECG snapshot for this alert' })
    deps.log.info({ alert: req.params.id, by: req.session!.user }, 'ECG snapshot read')
    return reply.header('cache-control', 'no-store').send(snap)
  })
}
