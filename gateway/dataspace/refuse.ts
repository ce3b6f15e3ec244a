/**
 * How every dataspace HTTP route answers a refusal: the audit entry first (when even that cannot
 * be written, the answer is that failure, 503: every dataspace answer depends on the audit log),
 * then the metrics, the headers (Bearer challenge on 401, Retry-After) and the coded body.
 */
import type { FastifyReply } from 'fastify'
import { DataspaceError, type AuditEvent } from '../../streams/index.js'
import type { Dataspace } from './service.js'

export type Refuse = (reply: FastifyReply, endpoint: string, original: DataspaceError, event: AuditEvent) => Promise<FastifyReply>

export function refusal (ds: Pick<Dataspace, 'metrics' | 'audit'>): Refuse {
  const { metrics, audit } = ds
  return async (reply, endpoint, original, event) => {
    let err = original
    if (err.code !== 'AMB_ERR_AUDIT_INTEGRITY' && err.code !== 'AMB_ERR_AUDIT_UNAVAILABLE') {
      try {
        await audit.append({ ...event, outcome: 'refused', status: err.statusCode, code: err.code, reason: err.message })
      } catch (auditErr) {
        reply.log.error({ err: auditErr }, 'audit log append failed')
        if (auditErr instanceof DataspaceError) err = auditErr
      }
    }
    metrics.accesses.inc({ endpoint, outcome: 'refused' })
    metrics.refused.inc({ code: err.code })
    if (err.statusCode === 401) reply.header('www-authenticate', `Bearer realm="dataspace", error="invalid_token", error_description="${err.code}"`)
    const retry = err.retryAfter()
    if (retry !== null) reply.header('retry-after', Math.ceil(retry / 1000))
    return reply.code(err.statusCode).header('cache-control', 'no-store').send({ code: err.code, message: err.message })
  }
}
