/**
 * The clinicians' dashboard, composed: the live hub fed by ingest and the alert engine, the
 * session store, and the HTTP side (page, login, live socket, acknowledge) registered on the
 * gateway's fastify app in an encapsulated scope, so its cookie, CSRF, rate-limit and CSP
 * (helmet) hooks apply to the dashboard's routes only and not to devices or probes.
 */
import { join } from 'node:path'
import cookie from '@fastify/cookie'
import csrf from '@fastify/csrf-protection'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { Counter, Gauge } from 'prom-client'
import type { Frame } from '../../decoders/index.js'
import type { AlertEvent } from '../../streams/index.js'
import { LiveHub, type LiveSubscription } from '../../streams/index.js'
import type { CredentialStore } from '../credentials.js'
import type { Ingest } from '../ingest.js'
import type { Metrics } from '../metrics.js'
import { SessionStore, requireSession, type Session } from '../sessions.js'
import { NEWS2_NOT_APPLIED, news2Points, news2View, type AlertEngineLike } from './alerts-adapter.js'
import { authRoutes } from './auth-routes.js'
import { DASHBOARD_DIR, dashboardBundle } from './bundle.js'
import { liveRoutes } from './live-routes.js'

export interface DashboardOptions {
  hospital: { name: string, latitude: number, longitude: number }
  sessionTtlMs: number
  loginRateMax: number
  loginRateWindowMs: number
  liveBlockedTimeoutMs: number
}

export interface DashboardDeps {
  app: FastifyInstance
  ingest: Ingest
  credentials: CredentialStore
  metrics: Metrics
  log: Logger
  /** gw.alerts; null while no alert engine runs (the page then shows no alerts). */
  alerts: AlertEngineLike | null
}

export interface Dashboard {
  hub: LiveHub
  sessions: SessionStore
  close: () => Promise<void>
}

export async function startDashboard (opts: DashboardOptions, deps: DashboardDeps): Promise<Dashboard> {
  const log = deps.log.child({ component: 'dashboard' })
  const r = { registers: [deps.metrics.registry] }
  const subscribersDropped = new Counter({ name: 'ambulink_live_subscribers_dropped_total', help: 'Dashboard sockets disconnected because they stayed blocked (slow or frozen tab)', labelNames: ['reason'], ...r })
  const messagesDropped = new Counter({ name: 'ambulink_live_messages_dropped_total', help: 'Live messages dropped from a slow dashboard\'s queue (ECG first, then superseded unit updates; never alerts)', labelNames: ['kind'], ...r })
  const logins = new Counter({ name: 'ambulink_dashboard_logins_total', help: 'Dashboard login attempts by outcome', labelNames: ['outcome'], ...r })
  const refused = new Counter({ name: 'ambulink_dashboard_refused_total', help: 'Dashboard requests refused for want of a session', ...r })

  const hub = new LiveHub({ hospital: opts.hospital, blockedTimeoutMs: opts.liveBlockedTimeoutMs }, {
    onSubscriberDropped: info => {
      subscribersDropped.inc({ reason: info.reason })
      log.warn(info, 'live subscriber blocked too long: disconnected')
    },
    onMessagesDropped: (kind, n) => { messagesDropped.inc({ kind }, n) }
  })
  new Gauge({ name: 'ambulink_live_subscribers', help: 'Open dashboard live sockets', ...r, collect () { this.set(hub.subscriberCount) } })
  new Gauge({ name: 'ambulink_live_units', help: 'Units in the live hub', ...r, collect () { this.set(hub.unitCount) } })

  const sessions = new SessionStore({ ttlMs: opts.sessionTtlMs })
  const bySession = new Map<Session, Set<LiveSubscription>>()
  sessions.onEnded = (s, reason) => {
    for (const sub of bySession.get(s) ?? []) sub.close(4001, reason)
    bySession.delete(s)
  }
  const onRevoked = (name: string): void => { sessions.destroyUser(name, 'credentials revoked') }
  deps.credentials.on('revoked', onRevoked)

  // NEWS2 is read after the frame's other listeners (the alert engine among them) have run, once
  // per unit per tick, however many frames arrived in it.
  let alerts = deps.alerts
  const news2Due = new Set<string>()
  let news2Timer: NodeJS.Immediate | null = null
  const flushNews2 = (): void => {
    news2Timer = null
    for (const unit of news2Due) {
      if (alerts?.news2Applies?.(unit) === false) {
        hub.setNews2(unit, { total: 0, partial: false, missing: [], band: 'none', scores: {}, at: Date.now(), notApplied: NEWS2_NOT_APPLIED })
        continue
      }
      const r = alerts?.news2For(unit)
      if (r !== null && r !== undefined) hub.setNews2(unit, news2View(r))
    }
    news2Due.clear()
  }
  const onFrame = (f: Frame): void => {
    hub.push(f)
    if (f.numerics.length > 0 && alerts !== null) {
      news2Due.add(f.unitId)
      news2Timer ??= setImmediate(flushNews2)
    }
  }
  deps.ingest.on('frame', onFrame)
  const onAlert = (e: AlertEvent): void => { hub.pushAlert(e) }
  const attach = (engine: AlertEngineLike | null): void => {
    alerts?.off('alert', onAlert)
    alerts = engine
    engine?.on('alert', onAlert)
    hub.setAlertSource(engine === null
      ? null
      : {
          openAlerts: () => engine.openAlerts(),
          alertsFor: unit => engine.alertsFor(unit),
          news2History: unit => news2Points(engine.news2History?.(unit))
        })
  }
  attach(deps.alerts)

  const auth = requireSession(sessions, () => { refused.inc() })
  await deps.app.register(async scope => {
    await scope.register(cookie)
    // '@fastify/session' mode: the CSRF secret lives in our server-side session (request.session).
    await scope.register(csrf, { sessionPlugin: '@fastify/session', getToken: (req: FastifyRequest) => req.headers['x-csrf-token'] as string | undefined })
    await scope.register(rateLimit, { global: false })
    await scope.register(helmet, {
      // Everything is ours and offline: no CDN, no tiles, no inline script or style. No
      // upgrade-insecure-requests: a hospital LAN may serve the page over plain HTTP.
      contentSecurityPolicy: { directives: { defaultSrc: ["'self'"], scriptSrc: ["'self'"], styleSrc: ["'self'"], imgSrc: ["'self'", 'data:'], connectSrc: ["'self'"], upgradeInsecureRequests: null } }
    })
    scope.decorateRequest('session', null)
    await scope.register(fastifyStatic, { root: join(DASHBOARD_DIR, 'public'), prefix: '/', wildcard: false, index: 'index.html' })
    scope.get('/app.js', async (req, reply) => {
      const b = await dashboardBundle().catch((err: unknown) => { log.error({ err }, 'dashboard bundle failed'); return null })
      if (b === null) return reply.code(500).send({ code: 'AMB_ERR_INTERNAL', message: 'dashboard bundle failed' })
      if (req.headers['if-none-match'] === b.etag) return reply.code(304).send()
      return reply.type('text/javascript; charset=utf-8').header('etag', b.etag).header('cache-control', 'no-cache').send(b.js)
    })
    scope.get('/app.js.map', async (_req, reply) => reply.type('application/json').send((await dashboardBundle()).map))
    authRoutes(scope, { sessions, credentials: deps.credentials, loginRateMax: opts.loginRateMax, loginRateWindowMs: opts.loginRateWindowMs, auth, onLogin: outcome => { logins.inc({ outcome }) } })
    liveRoutes(scope, { hub, sessions, alerts: () => alerts, auth, log, bySession })
  })
  // Bundle now, so the first page load does not wait and a broken bundle shows in the start log.
  dashboardBundle().catch((err: unknown) => { log.error({ err }, 'dashboard bundle failed') })

  let closed = false
  return {
    hub,
    sessions,
    close: async () => {
      if (closed) return
      closed = true
      deps.ingest.off('frame', onFrame)
      attach(null)
      deps.credentials.off('revoked', onRevoked)
      if (news2Timer !== null) clearImmediate(news2Timer)
      hub.close()
      sessions.close()
    }
  }
}
