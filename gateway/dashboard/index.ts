/**
 * The clinicians' dashboard, composed: the live hub fed by ingest and the alert engine, the
 * session store, and the HTTP side (page, login, live socket, acknowledge) registered on the
 * gateway's fastify app in an encapsulated scope, so its cookie, CSRF and CSP
 * (helmet) hooks apply to the dashboard's routes only and not to devices or probes.
 */
import { join } from 'node:path'
import cookie from '@fastify/cookie'
import csrf from '@fastify/csrf-protection'
import helmet from '@fastify/helmet'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { Counter, Gauge } from 'prom-client'
import type { Frame } from '../../decoders/index.js'
import type { AlertEvent } from '../../streams/index.js'
import { LiveHub, type LiveSubscription } from '../../streams/index.js'
import type { CredentialStore } from '../credentials.js'
import type { PasswordThrottle } from '../limits.js'
import type { Ingest } from '../ingest.js'
import type { Metrics } from '../metrics.js'
import { ClusterAssignments } from '../cluster/assignments-redis.js'
import { LiveRelay, clusterEpoch } from '../cluster/live-relay.js'
import type { ClusterLink } from '../cluster/redis.js'
import { RedisSessionStore } from '../cluster/sessions-redis.js'
import { MemorySessionStore, requireSession, type SessionStore } from '../sessions.js'
import { NEWS2_NOT_APPLIED, news2Points, news2View, type AlertEngineLike } from './alerts-adapter.js'
import { authRoutes } from './auth-routes.js'
import { boardRoutes } from './board-routes.js'
import { DashboardJournal } from './journal.js'
import { DASHBOARD_DIR, dashboardBundle } from './bundle.js'
import { liveRoutes } from './live-routes.js'
import { ecgRoutes } from './ecg-routes.js'

export interface DashboardOptions {
  hospital: { name: string, latitude: number, longitude: number }
  sessionTtlMs: number
  liveBlockedTimeoutMs: number
  /** DATA_DIR: the dashboard's journal (assignments, saved views) lives under it. */
  dataDir: string
}

export interface DashboardDeps {
  app: FastifyInstance
  ingest: Ingest
  credentials: CredentialStore
  /** The MQTT listeners' throttle: dashboard logins share its per-address failure budget. */
  passwordThrottle: PasswordThrottle
  metrics: Metrics
  log: Logger
  /** gw.alerts; null while no alert engine runs (the page then shows no alerts). */
  alerts: AlertEngineLike | null
  /** REDIS_URL: sessions and the live view shared with the other processes. */
  cluster?: ClusterLink
}

export interface Dashboard {
  hub: LiveHub
  sessions: SessionStore
  /** Cluster mode: the live view's relay (its counters feed the benchmark). */
  relay: LiveRelay | null
  close: () => Promise<void>
}

export async function startDashboard (opts: DashboardOptions, deps: DashboardDeps): Promise<Dashboard> {
  const log = deps.log.child({ component: 'dashboard' })
  const r = { registers: [deps.metrics.registry] }
  const subscribersDropped = new Counter({ name: 'ambulink_live_subscribers_dropped_total', help: 'Dashboard sockets disconnected because they stayed blocked (slow or frozen tab)', labelNames: ['reason'], ...r })
  const messagesDropped = new Counter({ name: 'ambulink_live_messages_dropped_total', help: 'Live messages dropped from a slow dashboard\'s queue (ECG first, then superseded unit updates; never alerts)', labelNames: ['kind'], ...r })
  const logins = new Counter({ name: 'ambulink_dashboard_logins_total', help: 'Dashboard login attempts by outcome', labelNames: ['outcome'], ...r })
  const refused = new Counter({ name: 'ambulink_dashboard_refused_total', help: 'Dashboard requests refused for want of a session', ...r })
  const badRequests = new Counter({ name: 'ambulink_dashboard_bad_requests_total', help: 'Dashboard requests refused as malformed (AMB_ERR_DASHBOARD_BAD_REQUEST), by route', labelNames: ['route'], ...r })
  const journal = await DashboardJournal.open(opts.dataDir)
  if (journal.skipped > 0) log.warn({ skipped: journal.skipped }, 'dashboard journal: unreadable lines skipped (torn write after a crash?)')

  const link = deps.cluster
  const relay = link !== undefined ? new LiveRelay(link, log) : null
  const snapshotEpoch = link !== undefined ? await clusterEpoch(link) : undefined
  const hub = new LiveHub({ hospital: opts.hospital, blockedTimeoutMs: opts.liveBlockedTimeoutMs, snapshotEpoch }, {
    ...relay?.hooks,
    onSubscriberDropped: info => {
      subscribersDropped.inc({ reason: info.reason })
      log.warn(info, 'live subscriber blocked too long: disconnected')
    },
    onMessagesDropped: (kind, n) => { messagesDropped.inc({ kind }, n) }
  })
  for (const a of journal.assignments.values()) hub.pushAssignment(a)
  new Gauge({ name: 'ambulink_live_subscribers', help: 'Open dashboard live sockets', ...r, collect () { this.set(hub.subscriberCount) } })
  new Gauge({ name: 'ambulink_live_units', help: 'Units in the live hub', ...r, collect () { this.set(hub.unitCount) } })

  await relay?.start(hub)
  // Cluster: the incoming board's assignments are shared (Redis), the local journal kept.
  const assignments = link !== undefined ? await ClusterAssignments.open(link, hub, journal, log) : null
  const sessions: SessionStore = link !== undefined
    ? await RedisSessionStore.open(link, { ttlMs: opts.sessionTtlMs, log })
    : new MemorySessionStore({ ttlMs: opts.sessionTtlMs })
  const bySession = new Map<string, Set<LiveSubscription>>()
  const endSockets = (id: string, reason: string): void => {
    for (const sub of bySession.get(id) ?? []) sub.close(4001, reason)
    bySession.delete(id)
  }
  sessions.onEnded = (s, reason) => { endSockets(s.id, reason) }
  // A shared store announces ends; a process that missed an announcement finds out here.
  const recheck = sessions instanceof RedisSessionStore
    ? setInterval(() => {
      sessions.gone([...bySession.keys()]).then(ids => { for (const id of ids) endSockets(id, 'session ended') }, (err: Error) => {
        log.warn({ err: err.message }, 'could not check live sessions in Redis')
      })
    }, 60_000)
    : null
  recheck?.unref()
  const onRevoked = (name: string): void => {
    sessions.destroyUser(name, 'credentials revoked').catch((err: Error) => { log.error({ err: err.message, user: name }, 'could not end a revoked user\'s sessions') })
  }
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
  // With the alert engine, as soon as the frame is validated (its spool append in flight).
  deps.ingest.consume('validated', 'live_hub', onFrame)
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
    authRoutes(scope, { sessions, credentials: deps.credentials, passwordThrottle: deps.passwordThrottle, auth, onLogin: outcome => { logins.inc({ outcome }) } })
    liveRoutes(scope, { hub, sessions, alerts: () => alerts, auth, log, bySession })
    boardRoutes(scope, { hub, journal, credentials: deps.credentials, auth, log, now: Date.now, onRefused: route => { badRequests.inc({ route }) }, share: assignments === null ? undefined : async a => await assignments.share(a) })
    ecgRoutes(scope, { alerts: () => alerts, auth, log })
  })
  // Bundle now, so the first page load does not wait and a broken bundle shows in the start log.
  dashboardBundle().catch((err: unknown) => { log.error({ err }, 'dashboard bundle failed') })

  let closed = false
  return {
    hub,
    sessions,
    relay,
    close: async () => {
      if (closed) return
      closed = true
      deps.ingest.off('validated', onFrame)
      attach(null)
      deps.credentials.off('revoked', onRevoked)
      if (news2Timer !== null) clearImmediate(news2Timer)
      if (recheck !== null) clearInterval(recheck)
      await relay?.close()
      await assignments?.close()
      await hub.close()
      await sessions.close()
      await journal.close()
    }
  }
}
