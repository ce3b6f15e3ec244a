/**
 * Team views and the incoming-patients board over HTTP: a clinician's chosen view (remembered on
 * the server, per user), and acknowledge-and-assign on an incoming ambulance ("cath lab
 * activated", "stroke team on standby"), recorded durably with who and when before it is
 * broadcast to every dashboard through the live hub. State changes need the session and its CSRF
 * token; every refusal carries a code and is counted.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { ASSIGNMENT_ACTIONS, DEFAULT_VIEW, parseViewSpec, type Assignment, type AssignmentAction, type LiveHub, type ViewSpec } from '../../streams/index.js'
import type { CredentialStore } from '../credentials.js'
import type { DashboardJournal } from './journal.js'

export interface BoardRouteDeps {
  hub: LiveHub
  journal: DashboardJournal
  credentials: CredentialStore
  auth: (req: FastifyRequest, reply: FastifyReply) => Promise<void>
  log: Logger
  now: () => number
  onRefused: (route: 'view' | 'assign') => void
  /** Cluster mode: shares an assignment (shows it here too); resolves whether Redis has it (gateway/cluster/assignments-redis.ts). */
  share?: (a: Assignment) => Promise<boolean>
}

/** The view a user's dashboard opens on: their own choice, else the admin's default, else the ED's. */
export function viewOf (user: string, deps: Pick<BoardRouteDeps, 'journal' | 'credentials'>): { view: ViewSpec, saved: boolean, default: ViewSpec } {
  const admin = deps.credentials.defaultView(user)
  const dflt: ViewSpec = admin !== undefined ? { id: admin } : { ...DEFAULT_VIEW }
  const own = deps.journal.views.get(user)
  return { view: own ?? dflt, saved: own !== undefined, default: dflt }
}

function bad (reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ code: 'AMB_ERR_DASHBOARD_BAD_REQUEST', message })
}

export function boardRoutes (app: FastifyInstance, deps: BoardRouteDeps): void {
  const { hub, journal, log } = deps

  app.get('/api/v1/view', { onRequest: deps.auth }, async (req, reply) => {
    return reply.header('cache-control', 'no-store').send(viewOf(req.session!.user, deps))
  })

  app.put<{ Body: { view?: unknown } }>('/api/v1/view', {
    onRequest: [deps.auth, app.csrfProtection],
    bodyLimit: 16 * 1024
  }, async (req, reply) => {
    const body = req.body as { view?: unknown } | undefined
    const raw = body?.view
    const view = raw === null ? null : parseViewSpec(raw)
    if (raw === undefined || (view === null && raw !== null)) {
      deps.onRefused('view')
      return bad(reply, 'view must be {id: ed|cath|stroke} or {id: custom, excludeKinds?, minPriority?, units?}, or null for the default')
    }
    const user = req.session!.user
    await journal.append({ type: 'view', user, view, at: deps.now() })
    return reply.send(viewOf(user, deps))
  })

  app.post<{ Params: { unit: string }, Body: { action?: unknown } }>('/api/v1/incoming/:unit/assign', {
    onRequest: [deps.auth, app.csrfProtection],
    bodyLimit: 4 * 1024,
    schema: { params: { type: 'object', properties: { unit: { type: 'string', minLength: 1, maxLength: 64 } }, required: ['unit'] } }
  }, async (req, reply) => {
    const action = (req.body as { action?: unknown } | undefined)?.action
    if (typeof action !== 'string' || !ASSIGNMENT_ACTIONS.includes(action as AssignmentAction)) {
      deps.onRefused('assign')
      return bad(reply, `action must be one of ${ASSIGNMENT_ACTIONS.join(', ')}`)
    }
    const encounter = hub.encounterOf(req.params.unit)
    if (encounter === null) {
      deps.onRefused('assign')
      return bad(reply, 'no such unit on the board')
    }
    const a: Assignment = { unit: req.params.unit, encounter, action: action as AssignmentAction, by: req.session!.user, at: deps.now() }
    // Durable first: what every dashboard is told has happened must survive a crash.
    await journal.append({ type: 'assign', assignment: a })
    if (deps.share === undefined) {
      hub.pushAssignment(a)
      log.info({ unit: a.unit, action: a.action, by: a.by }, 'incoming patient assigned')
      return reply.send({ assignment: a })
    }
    // Cluster: on every process' board; `shared: false` when Redis did not answer (retried).
    const shared = await deps.share(a)
    log.info({ unit: a.unit, action: a.action, by: a.by, shared }, 'incoming patient assigned')
    return reply.send({ assignment: a, shared })
  })
}
