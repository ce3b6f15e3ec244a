/**
 * `GET /dataspace/catalog` by content negotiation (RFC 9110 §12.5.1): HealthDCAT-AP as JSON-LD
 * (`application/ld+json`, the default, also for `application/json` and `*\/*`) or Turtle
 * (`text/turtle`). Public; URLs from DATASPACE_PUBLIC_URL only, never from the request. Turtle
 * needs absolute IRIs: without DATASPACE_PUBLIC_URL it is refused (400 AMB_ERR_DATASPACE_FORMAT).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { catalogJsonLd, catalogTurtle } from '../../streams/index.js'
import { DSP_BASE_PATH } from './dsp-provider.js'
import type { Dataspace } from './service.js'

type Representation = 'jsonld' | 'turtle'

/** The representation the Accept header prefers (q-values honoured); JSON-LD when nothing matches. */
export function preferredCatalog (accept: string | undefined): Representation {
  if (accept === undefined || accept.trim() === '') return 'jsonld'
  let best: { r: Representation, q: number } = { r: 'jsonld', q: 0 }
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.trim().toLowerCase().split(';').map(x => x.trim())
    const qp = params.find(p => p.startsWith('q='))
    const q = qp === undefined ? 1 : Number(qp.slice(2))
    if (!Number.isFinite(q) || q <= 0) continue
    const r: Representation | null = type === 'text/turtle' ? 'turtle' : ['application/ld+json', 'application/json', '*/*', 'application/*'].includes(type) ? 'jsonld' : null
    if (r !== null && q > best.q) best = { r, q }
  }
  return best.r
}

export async function sendCatalog (ds: Dataspace, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const c = ds.config
  // From configuration only (issue #10, item 16): a Host header is the client's to choose.
  const baseUrl = c.dataspacePublicUrl?.replace(/\/$/, '') ?? ''
  const doc = await ds.catalog.document({
    baseUrl,
    publisher: c.dataspacePublisher,
    contactEmail: c.dataspaceContact,
    k: ds.options.k,
    hdab: { name: c.dataspaceHdabName, url: c.dataspaceHdabUrl },
    country: c.dataspaceCountry,
    dspEndpoint: baseUrl === '' ? undefined : `${baseUrl}${DSP_BASE_PATH}`
  })
  reply.header('vary', 'accept').header('cache-control', 'public, max-age=60')
  if (preferredCatalog(req.headers.accept) === 'turtle') {
    if (baseUrl === '') {
      ds.metrics.refused.inc({ code: 'AMB_ERR_DATASPACE_FORMAT' })
      return await reply.code(400).header('cache-control', 'no-store').send({ code: 'AMB_ERR_DATASPACE_FORMAT', message: 'the Turtle catalogue needs absolute IRIs: set DATASPACE_PUBLIC_URL' })
    }
    return await reply.type('text/turtle; charset=utf-8').send(await catalogTurtle(doc))
  }
  return await reply.type('application/ld+json; charset=utf-8').send(JSON.stringify(await catalogJsonLd(doc)))
}
