/**
 * Dashboard login and logout. Only clinicians and admins get a session (researchers work on the
 * dataspace, not on live patients: 403). Login is rate-limited per address, must be JSON (a
 * cross-site HTML form cannot send application/json without a CORS preflight we never grant) and,
 * when the browser says where it comes from, from our own origin: that closes login CSRF, the one
 * state change that cannot carry a CSRF token because no session exists yet.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CredentialStore } from '../credentials.js'
import { SESSION_COOKIE, type Session, type SessionStore } from '../sessions.js'

/** Dashboard login attempts per client address per window (LOGIN_RATE_MAX; the window is fixed). */
export const LOGIN_RATE_DEFAULTS = Object.freeze({ max: 10, windowMs: 60_000 })

export interface AuthRouteDeps {
  sessions: SessionStore
  credentials: CredentialStore
  loginRateMax: number
  loginRateWindowMs: number
  /** Guards for routes that need a session, and a session plus a CSRF token. */
  auth: (req: FastifyRequest, reply: FastifyReply) => Promise<void>
  onLogin: (outcome: 'ok' | 'refused' | 'forbidden', user: string) => void
}

/** Same-origin check for browsers: absent Origin (non-browser client) passes; a foreign one fails. */
export function sameOrigin (req: FastifyRequest): boolean {
  const origin = req.headers.origin
  if (origin === undefined) return true
  try {
    const u = new URL(origin)
    return u.host === req.host && u.protocol === `${req.protocol}:`
  } catch {
    return false
  }
}

function sessionBody (s: Session, csrfToken: string): Record<string, unknown> {
  return { user: s.user, role: s.role, expiresAt: s.expiresAt, csrfToken }
}

export function authRoutes (app: FastifyInstance, deps: AuthRouteDeps): void {
  const { sessions, credentials } = deps

  app.post<{ Body: { name: string, password: string } }>('/api/v1/session', {
    config: { rateLimit: { max: deps.loginRateMax, timeWindow: deps.loginRateWindowMs } },
    schema: {
      body: {
        type: 'object',
        required: ['name', 'password'],
        additionalProperties: false,
        properties: { name: { type: 'string', minLength: 1, maxLength: 64 }, password: { type: 'string', minLength: 1, maxLength: 256 } }
      }
    },
    preValidation: async (req, reply) => {
      if (!sameOrigin(req)) return reply.code(403).send({ code: 'AMB_ERR_FORBIDDEN_ORIGIN', message: 'cross-origin login refused' })
      if (req.headers['content-type']?.split(';')[0]?.trim().toLowerCase() !== 'application/json') {
        return reply.code(415).send({ code: 'AMB_ERR_UNSUPPORTED_MEDIA', message: 'login takes application/json' })
      }
    }
  }, async (req, reply) => {
    const { name, password } = req.body
    const p = await credentials.verify(name, password)
    if (p === null || p.kind !== 'user') {
      deps.onLogin('refused', name)
      return reply.code(401).send({ code: 'AMB_ERR_UNAUTHENTICATED', message: 'wrong user name or password' })
    }
    if (p.role !== 'clinician' && p.role !== 'admin') {
      deps.onLogin('forbidden', name)
      return reply.code(403).send({ code: 'AMB_ERR_FORBIDDEN_ROLE', message: `the dashboard is for clinicians; ${p.role}s use the dataspace` })
    }
    // A fresh token at every login: a cookie planted before login (fixation) is never promoted.
    await sessions.destroy(req.cookies[SESSION_COOKIE])
    const { token, session } = await sessions.create(p.name, p.role)
    req.session = session
    deps.onLogin('ok', name)
    reply.setCookie(SESSION_COOKIE, token, {
      path: '/',
      httpOnly: true,
      sameSite: 'strict',
      // Secure whenever the client reached us over TLS; behind a proxy only if TRUST_PROXY says so.
      secure: req.protocol === 'https',
      expires: new Date(session.expiresAt)
    })
    return reply.code(200).send(sessionBody(session, reply.generateCsrf()))
  })

  app.get('/api/v1/session', { onRequest: deps.auth }, async (req, reply) => {
    return reply.header('cache-control', 'no-store').send(sessionBody(req.session!, reply.generateCsrf()))
  })

  app.delete('/api/v1/session', { onRequest: [deps.auth, app.csrfProtection] }, async (req, reply) => {
    await sessions.destroy(req.cookies[SESSION_COOKIE])
    reply.clearCookie(SESSION_COOKIE, { path: '/' })
    return reply.code(204).send()
  })
}
