/**
 * Dashboard sessions: server-side, with a fixed lifetime (a clinical shift). The cookie carries
 * only a random 256-bit token; the store is keyed by its SHA-256 (`Session.id`), so neither a
 * heap dump nor a log line of the store's keys yields a usable cookie. Sessions end on logout, on
 * expiry, and when the user's credentials are revoked or replaced (CredentialStore `revoked`).
 *
 * Two stores behind one interface: `MemorySessionStore` (one process, no REDIS_URL) and
 * `RedisSessionStore` (gateway/cluster/sessions-redis.ts: any process serves any browser, an end
 * takes effect on every process).
 *
 * The session also holds the CSRF secret (`_csrf`), made at login so a shared session is never
 * written again: @fastify/csrf-protection runs in its '@fastify/session' mode and reads
 * `request.session._csrf`.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Role } from './credentials.js'

export interface Session {
  /** SHA-256 of the cookie token (base64url): the store's key, safe to log and to share. */
  id: string
  user: string
  role: Role
  createdAt: number
  expiresAt: number
  /** CSRF secret (@fastify/csrf-protection sessionKey). */
  _csrf?: string
  /** Set when the session ended (logout, expiry, revocation). */
  endedAt?: number
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The dashboard session, once `requireSession` (or login) has found one; null otherwise. */
    session: Session | null
  }
}

export const SESSION_COOKIE = 'ambulink_session'

export interface SessionStoreOptions {
  /** Lifetime of a session from login, ms. */
  ttlMs: number
  /** Most sessions held; the oldest goes first beyond it (bounds memory under login floods). */
  maxSessions: number
  now: () => number
}

export const SESSION_DEFAULTS = Object.freeze({ ttlMs: 12 * 3_600_000, maxSessions: 10_000 })

/** The store's key for a cookie token. */
export function sessionId (token: string): string { return createHash('sha256').update(token).digest('base64url') }
const key = sessionId

/** A cookie value worth looking up (bounded: a 10 kB cookie is not hashed). */
export function plausibleToken (token: string | undefined): token is string {
  return token !== undefined && token !== '' && token.length <= 100
}

/** A fresh cookie token and the CSRF secret of its session. */
export function newToken (): { token: string, csrfSecret: string } {
  return { token: randomBytes(32).toString('base64url'), csrfSecret: randomBytes(18).toString('base64url') }
}

/** What the dashboard asks of a session store (memory or Redis). */
export interface SessionStore {
  create: (user: string, role: Role) => Promise<{ token: string, session: Session }>
  /** The live session for a cookie value, or null (unknown, ended or expired). */
  get: (token: string | undefined) => Promise<Session | null>
  /** Logout: ends the session everywhere. */
  destroy: (token: string | undefined) => Promise<Session | null>
  /** Ends every session of `user` (credentials revoked or replaced); returns how many. */
  destroyUser: (user: string, reason: string) => Promise<number>
  /** True while `session` has not ended and not expired, as far as this process knows. */
  isLive: (session: Session) => boolean
  /** Called on every process for each session that ends: its sockets there must close. */
  onEnded: (session: Pick<Session, 'id' | 'user'>, reason: string) => void
  close: () => void | Promise<void>
}

export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, Session>()
  private readonly timer: NodeJS.Timeout
  private readonly opts: SessionStoreOptions
  /** Called for each session that ends (logout, expiry, revocation): its sockets must close. */
  onEnded: (session: Pick<Session, 'id' | 'user'>, reason: string) => void = () => {}

  constructor (opts: Partial<SessionStoreOptions> = {}) {
    this.opts = { ...SESSION_DEFAULTS, now: Date.now, ...opts }
    this.timer = setInterval(() => { this.sweep() }, 60_000)
    this.timer.unref()
  }

  get size (): number { return this.sessions.size }

  async create (user: string, role: Role): Promise<{ token: string, session: Session }> {
    const now = this.opts.now()
    const { token, csrfSecret } = newToken()
    const session: Session = { id: key(token), user, role, createdAt: now, expiresAt: now + this.opts.ttlMs, _csrf: csrfSecret }
    if (this.sessions.size >= this.opts.maxSessions) {
      const [k, oldest] = this.sessions.entries().next().value ?? []
      if (k !== undefined && oldest !== undefined) this.end(k, oldest, 'too many sessions')
    }
    this.sessions.set(key(token), session)
    return { token, session }
  }

  /** The live session for a cookie value, or null (unknown or expired: expired ones are removed). */
  async get (token: string | undefined): Promise<Session | null> {
    if (!plausibleToken(token)) return null
    const k = key(token)
    const s = this.sessions.get(k)
    if (s === undefined) return null
    if (this.opts.now() >= s.expiresAt) {
      this.end(k, s, 'session expired')
      return null
    }
    return s
  }

  /** Logout. */
  async destroy (token: string | undefined): Promise<Session | null> {
    if (!plausibleToken(token)) return null
    const k = key(token)
    const s = this.sessions.get(k) ?? null
    if (s !== null) this.end(k, s, 'logged out')
    return s
  }

  /** Ends every session of `user` (credentials revoked or replaced); returns how many. */
  async destroyUser (user: string, reason: string): Promise<number> {
    let n = 0
    for (const [k, s] of this.sessions) {
      if (s.user !== user) continue
      this.end(k, s, reason)
      n++
    }
    return n
  }

  /** True while `session` is held and unexpired (sockets check this on the sweep). */
  isLive (session: Session): boolean {
    return session.endedAt === undefined && this.opts.now() < session.expiresAt
  }

  private end (k: string, s: Session, reason: string): void {
    this.sessions.delete(k)
    s.endedAt = this.opts.now()
    this.onEnded(s, reason)
  }

  private sweep (): void {
    const now = this.opts.now()
    for (const [k, s] of this.sessions) if (now >= s.expiresAt) this.end(k, s, 'session expired')
  }

  close (): void {
    clearInterval(this.timer)
    this.sessions.clear()
  }
}

/**
 * onRequest hook factory: 401 without a live session; otherwise sets `request.session`. Runs
 * before the CSRF check (which reads the session's secret) and before a WebSocket upgrade.
 */
export function requireSession (store: SessionStore, onRefused: (req: FastifyRequest) => void) {
  return async function (req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const s = await store.get(req.cookies[SESSION_COOKIE])
    if (s === null) {
      onRefused(req)
      return reply.code(401).send({ code: 'AMB_ERR_UNAUTHENTICATED', message: 'log in first (no valid session)' })
    }
    req.session = s
  }
}
