/**
 * Dashboard sessions shared through Redis: any gateway process serves any browser, without sticky
 * routing. A session is a JSON value under `ambulink:session:{id}` (id = SHA-256 of the cookie
 * token: Redis never holds a usable cookie) that expires with the session; the ids of a user's
 * sessions sit in a set so a revocation finds them. An end (logout, revocation) deletes the key
 * (so no process accepts the cookie any more) and is published on `ambulink:session-ended`, so
 * every process closes that session's live sockets at once. A process that missed the message
 * (Redis link down) finds out on its next check (`checkLive`, every minute).
 */
import type { Logger } from 'pino'
import type { Role } from '../credentials.js'
import { newToken, plausibleToken, sessionId, type Session, type SessionStore } from '../sessions.js'
import { PREFIX, type ClusterLink } from './redis.js'

const ENDED = `${PREFIX}session-ended`
const keyOf = (id: string): string => `${PREFIX}session:${id}`
const userKey = (user: string): string => `${PREFIX}user-sessions:${user}`

export interface RedisSessionStoreOptions {
  ttlMs: number
  now?: () => number
  log: Logger
}

export class RedisSessionStore implements SessionStore {
  /** Ids ended while this process held sockets for them (what `isLive` reads between messages). */
  private readonly ended = new Map<string, number>()
  private readonly now: () => number
  onEnded: (session: Pick<Session, 'id' | 'user'>, reason: string) => void = () => {}

  private constructor (private readonly link: ClusterLink, private readonly opts: RedisSessionStoreOptions) {
    this.now = opts.now ?? Date.now
  }

  static async open (link: ClusterLink, opts: RedisSessionStoreOptions): Promise<RedisSessionStore> {
    const store = new RedisSessionStore(link, opts)
    await link.listen(ENDED, msg => { store.heard(msg) })
    return store
  }

  private heard (msg: Buffer): void {
    let m: { id?: unknown, user?: unknown, reason?: unknown }
    try { m = JSON.parse(msg.toString()) as typeof m } catch { return }
    if (typeof m.id !== 'string' || typeof m.user !== 'string') return
    this.markEnded(m.id)
    this.onEnded({ id: m.id, user: m.user }, typeof m.reason === 'string' ? m.reason : 'session ended')
  }

  private markEnded (id: string): void {
    const now = this.now()
    this.ended.set(id, now + this.opts.ttlMs)
    if (this.ended.size > 10_000) for (const [k, until] of this.ended) if (until <= now) this.ended.delete(k)
  }

  async create (user: string, role: Role): Promise<{ token: string, session: Session }> {
    const now = this.now()
    const { token, csrfSecret } = newToken()
    const session: Session = { id: sessionId(token), user, role, createdAt: now, expiresAt: now + this.opts.ttlMs, _csrf: csrfSecret }
    await this.link.cmd.multi()
      .set(keyOf(session.id), JSON.stringify(session), 'PXAT', session.expiresAt)
      .sadd(userKey(user), session.id)
      .pexpireat(userKey(user), session.expiresAt)
      .exec()
    return { token, session }
  }

  async get (token: string | undefined): Promise<Session | null> {
    if (!plausibleToken(token)) return null
    const raw = await this.link.cmd.get(keyOf(sessionId(token)))
    if (raw === null) return null
    const s = JSON.parse(raw) as Session
    return this.now() < s.expiresAt ? s : null
  }

  async destroy (token: string | undefined): Promise<Session | null> {
    if (!plausibleToken(token)) return null
    const s = await this.get(token)
    if (s !== null) await this.end(s.id, s.user, 'logged out')
    return s
  }

  async destroyUser (user: string, reason: string): Promise<number> {
    const ids = await this.link.cmd.smembers(userKey(user))
    let n = 0
    for (const id of ids) if (await this.end(id, user, reason)) n++
    return n
  }

  /** Deletes and announces; true when the session was still held. */
  private async end (id: string, user: string, reason: string): Promise<boolean> {
    const [[, deleted] = []] = await this.link.cmd.multi().del(keyOf(id)).srem(userKey(user), id).exec() ?? []
    this.markEnded(id)
    await this.link.publish(ENDED, JSON.stringify({ id, user, reason }))
    return deleted === 1
  }

  isLive (session: Session): boolean {
    return !this.ended.has(session.id) && this.now() < session.expiresAt
  }

  /** Of the given session ids, those Redis no longer holds (ended while a message was missed). */
  async gone (ids: string[]): Promise<string[]> {
    if (ids.length === 0) return []
    const exists = await this.link.cmd.pipeline(ids.map(id => ['exists', keyOf(id)])).exec() ?? []
    return ids.filter((_id, i) => exists[i]?.[1] === 0)
  }

  async close (): Promise<void> {
    await this.link.unlisten(ENDED).catch(() => {})
  }
}
