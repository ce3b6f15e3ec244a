/**
 * `GET /dataspace/statistics?sign=&statistic=count|mean|histogram|quantiles&by=age_band,sex,week
 * &from=&to=&lo=&hi=&bins=&q=&epsilon=`: aggregate answers for permits at level `statistical`
 * (streams/dataspace/statistics.ts), the permit as `Authorization: Bearer`.
 *
 * Order: permit → level → scope (dataset vitals, the sign and the demographics grouped by must be
 * granted, the window inside the permit's) → computed from InfluxDB → budget spent (durably,
 * refused when it would run out) → audit entry → answer. Nothing leaves unaudited or unpaid; a
 * refusal is audited too and spends nothing.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { VITAL_SIGNS } from '../../decoders/index.js'
import {
  DataspaceError,
  PrivacyBudget,
  StatisticsEngine,
  claimedPermitId,
  parseTime,
  type AuditEvent,
  type GroupKey,
  type NoiseMechanism,
  type Permit,
  type Statistic,
  type StatsQuery
} from '../../streams/index.js'
import { refusal } from './refuse.js'
import type { Dataspace } from './service.js'

interface StatsQuerystring {
  sign?: string
  statistic?: string
  by?: string
  from?: string
  to?: string
  lo?: string
  hi?: string
  bins?: string
  q?: string
  epsilon?: string
}

function bearer (req: FastifyRequest): string | undefined {
  const h = req.headers.authorization
  if (h === undefined || !/^bearer /i.test(h)) return undefined
  return h.slice(7).trim()
}

function numberParam (raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined || raw === '') return fallback
  const v = Number(raw)
  if (!Number.isFinite(v)) throw new DataspaceError('AMB_ERR_DATASPACE_BAD_REQUEST', `${name} is not a number`)
  return v
}

/** Reads the query string and checks it against the permit (403 for what it does not cover). */
function parseQuery (q: StatsQuerystring, permit: Permit, defaultEpsilon: number): StatsQuery {
  const sign = q.sign ?? ''
  const info = VITAL_SIGNS.find(s => s.field === sign)
  if (info === undefined) throw new DataspaceError('AMB_ERR_DATASPACE_BAD_REQUEST', `sign is required: one of ${VITAL_SIGNS.map(s => s.field).join(', ')}`)
  const by = (q.by ?? '').split(',').map(s => s.trim()).filter(s => s !== '') as GroupKey[]
  const query: StatsQuery = {
    sign,
    statistic: (q.statistic ?? 'count') as Statistic,
    by,
    fromMs: q.from === undefined || q.from === '' ? permit.fromMs : parseTime(q.from, 'from'),
    toMs: q.to === undefined || q.to === '' ? permit.toMs : parseTime(q.to, 'to'),
    // The clamping range defaults to the sign's plausible range (decoders/vitals.ts): public, never from the data.
    lo: numberParam(q.lo, 'lo', info.min),
    hi: numberParam(q.hi, 'hi', info.max),
    bins: numberParam(q.bins, 'bins', 10),
    quantiles: q.q === undefined || q.q === '' ? [0.25, 0.5, 0.75] : q.q.split(',').map(Number),
    epsilon: numberParam(q.epsilon, 'epsilon', defaultEpsilon)
  }
  if (!permit.datasets.includes('vitals')) throw new DataspaceError('AMB_ERR_DATASPACE_DATASET_FORBIDDEN', `permit ${permit.id} does not cover dataset vitals`)
  const granted = permit.fields.vitals ?? []
  const needed = [sign, ...(by.includes('age_band') ? ['age'] : []), ...(by.includes('sex') ? ['sex'] : [])]
  const missing = needed.filter(f => !granted.includes(f))
  if (missing.length > 0) throw new DataspaceError('AMB_ERR_DATASPACE_FIELD_FORBIDDEN', `permit ${permit.id} does not grant ${missing.join(', ')} on vitals`)
  if (query.fromMs < permit.fromMs || query.toMs > permit.toMs) {
    throw new DataspaceError('AMB_ERR_DATASPACE_WINDOW_FORBIDDEN', `the window reaches outside the permit's ${new Date(permit.fromMs).toISOString()}..${new Date(permit.toMs).toISOString()}`)
  }
  return query
}

export function registerStatisticsRoutes (app: FastifyInstance, ds: Dataspace): void {
  const { metrics, audit, options, config } = ds
  const noise = config.dataspaceStatsNoise as NoiseMechanism
  const budget = PrivacyBudget.forDataDir(config.dataDir, config.dataspaceStatsBudget)

  const refuse = refusal(ds)

  app.get<{ Querystring: StatsQuerystring }>('/dataspace/statistics', async (req, reply) => {
    const token = bearer(req)
    let permit: Permit | null = null
    let query: StatsQuery | null = null
    const event = (): AuditEvent => ({
      kind: 'statistics',
      outcome: 'refused',
      ip: req.ip,
      ...(permit === null
        ? { permit: token === undefined ? null : claimedPermitId(token) }
        : { permit: permit.id, researcher: permit.researcher, level: permit.level, purpose: permit.purpose }),
      ...(query === null ? {} : { dataset: 'vitals', fields: [query.sign], from: new Date(query.fromMs).toISOString(), to: new Date(query.toMs).toISOString() })
    })
    const ac = new AbortController()
    reply.raw.once('close', () => { ac.abort() })
    try {
      permit = await ds.authenticate(token)
      if (permit.level !== 'statistical') {
        throw new DataspaceError('AMB_ERR_DATASPACE_LEVEL_FORBIDDEN', `permit ${permit.id} is at level ${permit.level}: /dataspace/statistics serves permits at level statistical (its budget is what bounds the answers)`)
      }
      query = parseQuery(req.query, permit, config.dataspaceStatsEpsilon)
      if (ds.reader === null) throw new DataspaceError('AMB_ERR_DATASPACE_STORE_UNAVAILABLE', 'statistics need InfluxDB (INFLUX_URL); none is configured')
      const engine = new StatisticsEngine(ds.reader, options, noise)
      let result
      try {
        result = await engine.run(query, ac.signal)
      } catch (err) {
        if (err instanceof DataspaceError) throw err
        req.log.error({ err }, 'statistics query failed')
        throw new DataspaceError('AMB_ERR_DATASPACE_QUERY_FAILED', 'statistics query failed', { cause: err })
      }
      // Paid before anything leaves; an exhausted budget refuses and spends nothing.
      const paid = result.noise !== null ? await budget.spend(permit.id, query.epsilon) : null
      const stats = {
        sign: query.sign,
        statistic: query.statistic,
        by: query.by,
        epsilon: result.noise !== null ? query.epsilon : null,
        budgetLeft: paid?.left ?? null,
        cells: result.cells.length,
        suppressedCells: result.suppressedCells
      }
      await audit.append({ ...event(), outcome: 'granted', statistics: stats })
      metrics.accesses.inc({ endpoint: 'statistics', outcome: 'granted' })
      return await reply.type('application/json; charset=utf-8').header('cache-control', 'no-store')
        .header('ambulink-permit', permit.id)
        .header('ambulink-protection', 'statistical')
        .send({ ...result, budget: paid === null ? null : { limit: budget.limit, spent: paid.spent, left: paid.left } })
    } catch (err) {
      if (!(err instanceof DataspaceError)) throw err
      return await refuse(reply, 'statistics', err, event())
    }
  })
}
