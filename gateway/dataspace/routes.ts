/**
 * The dataspace's HTTP side:
 * - `GET /dataspace/catalog`: public DCAT-AP / HealthDCAT-AP JSON-LD;
 * - `GET /dataspace/extract?dataset=&from=&to=&fields=&format=ndjson|csv|fhir`: a protected
 *   extract, streamed with backpressure, with the permit as `Authorization: Bearer`;
 * - `GET /dataspace/stream?dataset=vitals|alerts&fields=`: the live stream (WebSocket).
 *
 * Every access to data is written to the audit log before any data leaves (an access that
 * cannot be logged is refused with 503), and again when it ends, with what was released.
 * Refusals: 401 for the permit itself (missing, forged, expired, revoked), 403 for what it does
 * not cover, each with its code and reason, and each logged too.
 */
import { calculateJwkThumbprint, exportJWK } from 'jose'
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import {
  DataspaceError,
  Extractor,
  Protector,
  QUASI_IDENTIFIERS,
  SUMMARISABLE_FIELDS,
  SummaryExtractor,
  claimedPermitId,
  createSerializer,
  type AuditEvent,
  type EndReason,
  type ExtractPlan,
  type Permit
} from '../../streams/index.js'
import { resolveScope, type Scope, type ScopeQuery } from '../../streams/index.js'
import { sendCatalog } from './catalog-route.js'
import { refusal } from './refuse.js'
import type { Dataspace } from './service.js'

function bearer (req: FastifyRequest): string | undefined {
  const h = req.headers.authorization
  // RFC 9110 §11.1: the scheme name is case-insensitive.
  if (h === undefined || !/^bearer /i.test(h)) return undefined
  return h.slice(7).trim()
}

/** What was asked, once understood: only names we define, never the raw query (client text). */
function scopeAudit (scope: Scope | null, withFormat: boolean): Pick<AuditEvent, 'dataset' | 'format' | 'fields' | 'from' | 'to'> {
  if (scope === null) return {}
  return { dataset: scope.dataset, ...(withFormat ? { format: scope.format } : {}), fields: scope.fields, from: new Date(scope.fromMs).toISOString(), to: new Date(scope.toMs).toISOString() }
}

function permitAudit (permit: Permit | null, token: string | undefined): Pick<AuditEvent, 'permit' | 'researcher' | 'level' | 'purpose'> {
  if (permit === null) return { permit: token === undefined ? null : claimedPermitId(token) }
  return { permit: permit.id, researcher: permit.researcher, level: permit.level, purpose: permit.purpose }
}

function asDataspaceError (err: unknown, req: FastifyRequest): DataspaceError {
  if (err instanceof DataspaceError) return err
  req.log.error({ err }, 'extract failed')
  return new DataspaceError('AMB_ERR_DATASPACE_QUERY_FAILED', 'extract failed', { cause: err })
}

export function registerDataspaceRoutes (app: FastifyInstance, ds: Dataspace): void {
  const { metrics, audit, options } = ds

  const refuse = refusal(ds)

  // The local issuer's public key (what `ambulink permit grant` signs with) as a JWKS (RFC 7517),
  // so any JOSE library can check a local permit without reading DATA_DIR.
  app.get('/dataspace/jwks.json', async (_req, reply) => {
    const jwk = await exportJWK(ds.keys.permitPublicKey)
    const kid = await calculateJwkThumbprint(jwk)
    return reply.type('application/jwk-set+json').header('cache-control', 'public, max-age=300').send(JSON.stringify({ keys: [{ ...jwk, kid, alg: 'EdDSA', use: 'sig' }] }))
  })

  // HealthDCAT-AP as JSON-LD or Turtle by content negotiation (catalog-route.ts).
  app.get('/dataspace/catalog', async (req, reply) => await sendCatalog(ds, req, reply))

  app.get<{ Querystring: ScopeQuery }>('/dataspace/extract', async (req, reply) => {
    const started = Date.now()
    const token = bearer(req)
    const q = req.query
    let permit: Permit | null = null
    let scope: Scope | null = null
    const event = (): AuditEvent => ({ kind: 'extract', outcome: 'refused', ip: req.ip, ...permitAudit(permit, token), ...scopeAudit(scope, true) })
    try {
      permit = await ds.authenticate(token)
      scope = resolveScope(q, permit, { maxShiftMs: options.maxShiftDays * 86_400_000 })
      if (ds.reader === null) throw new DataspaceError('AMB_ERR_DATASPACE_STORE_UNAVAILABLE', 'extracts need InfluxDB (INFLUX_URL); none is configured')
    } catch (err) {
      if (!(err instanceof DataspaceError)) throw err
      return await refuse(reply, 'extract', err, event())
    }

    const protector = new Protector(ds.keys.holderSecret, permit, 'extract', options)
    // Level aggregated: per-encounter summaries, released in groups of k (summary-extract.ts).
    const extractor = permit.level === 'aggregated' ? new SummaryExtractor(ds.reader, protector, options) : new Extractor(ds.reader, protector, options)
    const ac = new AbortController()
    reply.raw.once('close', () => { ac.abort() })
    let plan: ExtractPlan
    try {
      const anonymised = permit.level !== 'pseudonymised'
      const released = anonymised ? await ds.released.of(permit.id) : new Set<string>()
      plan = await extractor.plan({
        dataset: scope.dataset,
        fields: scope.fields,
        fromMs: scope.shifted ? permit.fromMs : scope.fromMs,
        toMs: scope.shifted ? permit.toMs : scope.toMs,
        shiftedWindow: scope.shifted ? { fromMs: scope.fromMs, toMs: scope.toMs } : null,
        qiFields: [...released]
      }, ac.signal)
      await audit.append({ ...event(), outcome: 'granted', encounters: null })
      // Before the first row leaves: later extracts of this permit are classified on these too.
      // At level aggregated the summarised fields link records too, so they are tracked as well.
      if (anonymised) await ds.released.record(permit.id, scope.fields, released, permit.level === 'aggregated' ? [...QUASI_IDENTIFIERS, ...SUMMARISABLE_FIELDS] : QUASI_IDENTIFIERS)
    } catch (err) {
      return await refuse(reply, 'extract', asDataspaceError(err, req), event())
    }
    metrics.accesses.inc({ endpoint: 'extract', outcome: 'granted' })

    const sum = plan.summary
    const serializer = createSerializer(scope.format, { plan, level: permit.level, nowMs: started, codeSystem: ds.config.dataspaceFhirCodeSystem })
    reply
      .type(serializer.contentType)
      .header('cache-control', 'no-store')
      .header('ambulink-permit', permit.id)
      .header('ambulink-protection', permit.level)
      .header('ambulink-k-anonymity', sum.k === null ? 'none' : String(sum.k))
    if (sum.encounters !== null) {
      // Known before the first row (the first pass): how much k-anonymity withheld. A count of
      // people below k is never given (item 5: "was anyone here then" is itself a disclosure).
      const k = sum.k ?? options.k
      const people = (n: number): string => n === 0 || n >= k ? String(n) : `<${k}`
      reply
        .header('ambulink-encounters', people(sum.encounters - sum.suppressedEncounters))
        .header('ambulink-suppressed-encounters', people(sum.suppressedEncounters))
        .header('ambulink-suppressed-classes', `${sum.classesBelowK}/${sum.classes}`)
    }
    // Known only at the end: rows released and withheld, as HTTP trailers (RFC 9110 §6.5). At
    // level anonymised rows withheld are not counted out loud: they are the record lengths of
    // fewer than k people.
    let complete = false
    reply.trailer('ambulink-rows', async () => String(sum.rows))
    if (permit.level === 'pseudonymised') {
      reply.trailer('ambulink-suppressed-rows', async () => String(sum.suppressedRows + sum.suppressedCellRows))
      reply.trailer('ambulink-unassigned-rows', async () => String(sum.unassignedRows))
    }
    reply.trailer('ambulink-complete', async () => String(complete))

    let bytes = 0
    let failure: DataspaceError | null = null
    const dataset = scope.dataset
    async function * body (): AsyncGenerator<string> {
      try {
        const head = serializer.head()
        if (head !== '') { bytes += Buffer.byteLength(head); yield head }
        for await (const batch of extractor.rows(plan, ac.signal)) {
          const text = serializer.batch(batch)
          if (text === '') continue
          bytes += Buffer.byteLength(text)
          yield text
        }
        const tail = serializer.tail()
        bytes += Buffer.byteLength(tail)
        complete = true
        if (tail !== '') yield tail
      } catch (err) {
        if (!ac.signal.aborted) {
          failure = asDataspaceError(err, req)
          req.log.error({ code: failure.code, err: failure.message }, 'extract broke off')
        }
        throw err
      }
    }
    reply.raw.once('close', () => {
      metrics.rows.inc({ dataset }, sum.rows)
      metrics.suppressedRows.inc({ dataset }, sum.suppressedRows + sum.suppressedCellRows)
      const failed = failure as DataspaceError | null
      audit.append({
        ...event(),
        outcome: complete ? 'completed' : 'aborted',
        ...(failed !== null ? { code: failed.code, reason: failed.message } : complete ? {} : { reason: 'client went away' }),
        encounters: sum.encounters,
        suppressedEncounters: sum.suppressedEncounters,
        rows: sum.rows,
        suppressedRows: sum.suppressedRows + sum.suppressedCellRows,
        bytes,
        durationMs: Date.now() - started
      }).catch((err: unknown) => { req.log.error({ err }, 'audit log append failed') })
    })
    return reply.send(Readable.from(body(), { objectMode: false, highWaterMark: 64 * 1024 }))
  })

  /** Live stream: authorised before the upgrade, so refusals are plain HTTP 401/403. */
  const admitted = new WeakMap<FastifyRequest, { permit: Permit, scope: Scope }>()

  app.get<{ Querystring: ScopeQuery }>('/dataspace/stream', {
    websocket: true,
    preHandler: async (req, reply) => {
      if (!req.ws) {
        metrics.refused.inc({ code: 'AMB_ERR_DATASPACE_NOT_WEBSOCKET' })
        return await reply.code(426).header('upgrade', 'websocket').send({ code: 'AMB_ERR_DATASPACE_NOT_WEBSOCKET', message: 'this endpoint is a WebSocket: send an Upgrade request' })
      }
      const token = bearer(req)
      let permit: Permit | null = null
      let scope: Scope | null = null
      const event = (): AuditEvent => ({ kind: 'stream', outcome: 'refused', ip: req.ip, ...permitAudit(permit, token), ...scopeAudit(scope, false) })
      try {
        permit = await ds.authenticate(token)
        scope = resolveScope({ ...req.query, format: undefined }, permit, { live: true })
        const now = Date.now()
        if (now < permit.fromMs || now >= permit.toMs) {
          throw new DataspaceError('AMB_ERR_DATASPACE_WINDOW_FORBIDDEN', `the permit's window ${new Date(permit.fromMs).toISOString()}..${new Date(permit.toMs).toISOString()} does not include now`)
        }
        await audit.append({ ...event(), outcome: 'granted' })
      } catch (err) {
        if (!(err instanceof DataspaceError)) throw err
        return await refuse(reply, 'stream', err, event())
      }
      metrics.accesses.inc({ endpoint: 'stream', outcome: 'granted' })
      admitted.set(req, { permit, scope })
    }
  }, (socket: WebSocket, req) => {
    const a = admitted.get(req)
    if (a === undefined) { socket.terminate(); return }
    const { permit, scope } = a
    const started = Date.now()
    const dataset = scope.dataset as 'vitals' | 'alerts'
    let timer: NodeJS.Timeout | null = null
    const sub = ds.hub.subscribe({
      dataset,
      permitId: permit.id,
      researcher: permit.researcher,
      fields: new Set(scope.fields),
      fromMs: permit.fromMs,
      toMs: permit.toMs,
      protector: new Protector(ds.keys.holderSecret, permit, 'live', options),
      socket,
      onEnd: (reason: EndReason, messages: number) => {
        if (timer !== null) clearTimeout(timer)
        metrics.liveMessages.inc({ dataset }, messages)
        audit.append({
          kind: 'stream',
          outcome: 'closed',
          ip: req.ip,
          ...permitAudit(permit, undefined),
          ...scopeAudit(scope, false),
          ...(reason === 'slow consumer' ? { code: 'AMB_ERR_DATASPACE_SLOW_CONSUMER' } : {}),
          reason,
          rows: messages,
          durationMs: Date.now() - started
        }).catch((err: unknown) => { req.log.error({ err }, 'audit log append failed') })
      }
    })
    // The stream ends when the permit does: at expiry or at the end of its window.
    const endAt = Math.min(permit.expiresAtMs, permit.toMs)
    const arm = (): void => {
      const left = endAt - Date.now()
      if (left <= 0) { sub.end('permit expired'); return }
      // setTimeout holds at most 2^31-1 ms; re-arm for long permits.
      timer = setTimeout(arm, Math.min(left, 2 ** 31 - 1))
      timer.unref()
    }
    arm()
    socket.on('close', () => { sub.end('client closed') })
    // Researchers only listen; anything they send is ignored.
    socket.on('message', () => {})
  })
}
