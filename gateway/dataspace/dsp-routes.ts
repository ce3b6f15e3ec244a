/**
 * The Dataspace Protocol 2025-1 HTTPS binding, provider side:
 * - `GET /.well-known/dspace-version` (public, unversioned);
 * - under `/dsp/2025-1`: the catalogue (`POST /catalog/request`, `GET /catalog/datasets/:id`,
 *   public), contract negotiation (`/negotiations/...`) and transfer process (`/transfers/...`),
 *   with the consumer's data permit as `Authorization: Bearer`.
 *
 * Every incoming message is validated against the official DSP 2025-1 JSON schema of its type
 * before anything else; a message that is not JSON or fails it is answered 400 in the error shape
 * of its protocol (CatalogError, ContractNegotiationError, TransferError) with
 * `code: AMB_ERR_DSP_BAD_MESSAGE` and the schema errors as `reason`. Every refusal is counted in
 * `ambulink_dataspace_refused_total{code}`; refusals of a permit are written to the audit log.
 *
 * Pulls: a DSP transfer token is accepted by `/dataspace/extract` (checked here first, for a
 * precise code, then by `Dataspace.authenticate`) and refused on the live stream.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  DSP_CONTEXT, DataspaceError, DspError, dspCatalog, dspDataset, datasetName,
  type DspMessageType, type Negotiation, type PermitClaims, type Transfer
} from '../../streams/index.js'
import { DSP_BASE_PATH, TRANSFER_TOKEN_PREFIX, type DspProvider } from './dsp-provider.js'

type Area = 'catalog' | 'negotiation' | 'transfer'
type Msg = Record<string, unknown>

const ERROR_TYPE: Record<Area, string> = { catalog: 'CatalogError', negotiation: 'ContractNegotiationError', transfer: 'TransferError' }

function bearer (req: FastifyRequest): string | undefined {
  const h = req.headers.authorization
  if (h === undefined || !/^bearer /i.test(h)) return undefined
  return h.slice(7).trim()
}

const str = (v: unknown): string => typeof v === 'string' ? v.slice(0, 200) : ''

export function registerDspRoutes (app: FastifyInstance, provider: DspProvider): void {
  const ds = provider.ds

  /** Answers an error in the DSP shape of `area`; permit refusals are audited. */
  const refuse = async (req: FastifyRequest, reply: FastifyReply, area: Area, err: DspError | DataspaceError, pids: { providerPid?: unknown, consumerPid?: unknown } = {}, status = err.statusCode): Promise<FastifyReply> => {
    ds.metrics.refused.inc({ code: err.code })
    ds.metrics.accesses.inc({ endpoint: 'dsp', outcome: 'refused' })
    if (err instanceof DataspaceError && area !== 'catalog') {
      await ds.audit.append({ kind: area === 'transfer' ? 'dsp.transfer' : 'dsp.negotiation', outcome: 'refused', ip: req.ip, status: err.statusCode, code: err.code, reason: err.message })
        .catch((e: unknown) => { req.log.error({ err: e }, 'audit log append failed') })
    }
    const body: Msg = { '@context': [DSP_CONTEXT], '@type': ERROR_TYPE[area] }
    if (area !== 'catalog') { body.providerPid = str(pids.providerPid); body.consumerPid = str(pids.consumerPid) }
    body.code = err.code
    body.reason = err instanceof DspError && err.code === 'AMB_ERR_DSP_BAD_MESSAGE' && Array.isArray(err.cause) ? err.cause : [err.message]
    if (err.statusCode === 401) reply.header('www-authenticate', `Bearer realm="dataspace", error="invalid_token", error_description="${err.code}"`)
    const retry = err.retryAfter()
    if (retry !== null) reply.header('retry-after', Math.ceil(retry / 1000))
    return reply.code(status).header('cache-control', 'no-store').type('application/json').send(body)
  }

  const validate = (type: DspMessageType, body: unknown): Msg => {
    const errors = provider.validator.errors(type, body)
    if (errors !== null) throw new DspError('AMB_ERR_DSP_BAD_MESSAGE', `not a valid DSP 2025-1 ${type}: ${errors.join('; ')}`, { cause: errors })
    return body as Msg
  }

  /** The permit on a negotiation or transfer message (a transfer token is not one). */
  const permitOf = async (req: FastifyRequest): Promise<PermitClaims> => {
    const token = bearer(req)
    if (token?.startsWith(TRANSFER_TOKEN_PREFIX) === true) throw new DataspaceError('AMB_ERR_PERMIT_INVALID', 'a transfer token is not a data permit: send the permit')
    return await ds.authenticate(token) as PermitClaims
  }

  const negotiationAck = (n: Negotiation): Msg => ({ '@context': [DSP_CONTEXT], '@type': 'ContractNegotiation', providerPid: n.providerPid, consumerPid: n.consumerPid, state: n.state })
  const transferAck = (t: Transfer): Msg => ({ '@context': [DSP_CONTEXT], '@type': 'TransferProcess', providerPid: t.providerPid, consumerPid: t.consumerPid, state: t.state })

  /** Runs `next` (the provider's answering message) once the acknowledgement has left. */
  const after = (reply: FastifyReply, next: (() => Promise<void>) | null): void => {
    if (next !== null) reply.raw.once('close', () => { provider.track(next()) })
  }

  const catchAs = (area: Area, handler: (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>) =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      try {
        return await handler(req, reply)
      } catch (err) {
        if (err instanceof DspError || err instanceof DataspaceError) {
          const b = (req.body ?? {}) as Msg
          const p = req.params as { providerPid?: string }
          return await refuse(req, reply, area, err, { providerPid: b.providerPid ?? p.providerPid, consumerPid: b.consumerPid })
        }
        throw err
      }
    }

  app.get('/.well-known/dspace-version', async (_req, reply) => {
    const body = {
      protocolVersions: [{
        version: '2025-1',
        path: DSP_BASE_PATH,
        binding: 'HTTPS',
        // How the endpoints are secured: the EHDS data permit as a bearer token (docs/dataspace.md).
        auth: { protocol: 'ambulink-data-permit', version: '1', profile: ['EdDSA', 'ES256'] }
      }]
    }
    return reply.type('application/json').header('cache-control', 'public, max-age=300').send(body)
  })

  // Pulls with a transfer token: refused on the live stream; on the extract, checked for a precise
  // code and tracked so that suspension, termination or revocation cut it.
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0]
    if (path !== '/dataspace/extract' && path !== '/dataspace/stream') return
    const token = bearer(req)
    if (token === undefined || !token.startsWith(TRANSFER_TOKEN_PREFIX)) return
    let err: DspError
    if (path === '/dataspace/stream') {
      err = new DspError('AMB_ERR_DSP_TRANSFER_ONLY_PULL', 'a DSP transfer token serves the HTTP pull of its transfer only, not the live stream')
    } else {
      try {
        const { transfer } = await provider.pullPermit(token, Date.now())
        provider.openPull(transfer.providerPid, reply.raw)
        return
      } catch (e) {
        if (!(e instanceof DspError)) throw e
        err = e
      }
    }
    ds.metrics.refused.inc({ code: err.code })
    ds.metrics.accesses.inc({ endpoint: path === '/dataspace/stream' ? 'stream' : 'extract', outcome: 'refused' })
    await ds.audit.append({ kind: 'extract', outcome: 'refused', ip: req.ip, status: err.statusCode, code: err.code, reason: err.message })
      .catch((e: unknown) => { req.log.error({ err: e }, 'audit log append failed') })
    if (err.statusCode === 401) reply.header('www-authenticate', `Bearer realm="dataspace", error="invalid_token", error_description="${err.code}"`)
    return await reply.code(err.statusCode).header('cache-control', 'no-store').send({ code: err.code, message: err.message })
  })

  app.register(async scope => {
    // DSP 2025-1 HTTPS binding: messages are `application/json`; `application/ld+json` is accepted too.
    scope.addContentTypeParser('application/ld+json', { parseAs: 'string' }, scope.getDefaultJsonParser('error', 'error'))
    scope.setErrorHandler(async (err: FastifyError, req, reply) => {
      const area: Area = req.url.includes('/negotiations') ? 'negotiation' : req.url.includes('/transfers') ? 'transfer' : 'catalog'
      const status = err.statusCode ?? 500
      if (status >= 400 && status < 500) {
        // Not JSON, too large, or the wrong media type: a bad message, in the DSP error shape.
        const e = new DspError('AMB_ERR_DSP_BAD_MESSAGE', `not a DSP message: ${err.message}`)
        return await refuse(req, reply, area, e, {}, status)
      }
      req.log.error({ err }, 'DSP request failed')
      return await reply.code(500).send({ '@context': [DSP_CONTEXT], '@type': ERROR_TYPE[area], ...(area === 'catalog' ? {} : { providerPid: '', consumerPid: '' }), code: 'INTERNAL', reason: ['internal error'] })
    })
    const opts = { bodyLimit: 64 * 1024 }

    // ---- catalogue (public) ----
    scope.post('/catalog/request', opts, catchAs('catalog', async (req, reply) => {
      const msg = validate('CatalogRequestMessage', req.body)
      // DSP 2025-1: "If a filter expression is not supported by an implementation, it MUST return a HTTP 400".
      if (Array.isArray(msg.filter) && msg.filter.length > 0) throw new DspError('AMB_ERR_DSP_BAD_MESSAGE', 'catalogue filters are not supported')
      return await reply.type('application/json').header('cache-control', 'no-store')
        .send(dspCatalog({ participantId: provider.participantId, serviceUrl: `${provider.root}${DSP_BASE_PATH}` }))
    }))
    scope.get<{ Params: { id: string } }>('/catalog/datasets/:id', catchAs('catalog', async (req, reply) => {
      const name = datasetName((req.params as { id: string }).id)
      if (name === null) throw new DspError('AMB_ERR_DSP_NOT_FOUND', 'no such dataset')
      return await reply.type('application/json').send(dspDataset(name))
    }))

    // ---- contract negotiation ----
    scope.get('/negotiations/:providerPid', catchAs('negotiation', async (req, reply) => {
      const permit = await permitOf(req)
      return await reply.type('application/json').send(negotiationAck(provider.negotiation(permit, (req.params as { providerPid: string }).providerPid)))
    }))
    scope.post('/negotiations/request', opts, catchAs('negotiation', async (req, reply) => {
      const msg = validate('ContractRequestMessage', req.body)
      // A request naming a providerPid belongs on /negotiations/:providerPid/request.
      if (msg.providerPid !== undefined) throw new DspError('AMB_ERR_DSP_STATE', 'an initiating contract request carries no providerPid')
      const permit = await permitOf(req)
      const { negotiation, next } = await provider.request(permit, msg)
      after(reply, next)
      return await reply.code(201).type('application/json').send(negotiationAck(negotiation))
    }))
    const negotiationMessage = (suffix: string, type: DspMessageType): void => {
      scope.post(`/negotiations/:providerPid/${suffix}`, opts, catchAs('negotiation', async (req, reply) => {
        const msg = validate(type, req.body)
        const permit = await permitOf(req)
        const { next } = await provider.negotiationMessage(permit, (req.params as { providerPid: string }).providerPid, type, msg)
        after(reply, next)
        return await reply.code(200).send()
      }))
    }
    negotiationMessage('request', 'ContractRequestMessage')
    negotiationMessage('events', 'ContractNegotiationEventMessage')
    negotiationMessage('agreement/verification', 'ContractAgreementVerificationMessage')
    negotiationMessage('termination', 'ContractNegotiationTerminationMessage')

    // ---- transfer process ----
    scope.get('/transfers/:providerPid', catchAs('transfer', async (req, reply) => {
      const permit = await permitOf(req)
      return await reply.type('application/json').send(transferAck(provider.transfer(permit, (req.params as { providerPid: string }).providerPid)))
    }))
    scope.post('/transfers/request', opts, catchAs('transfer', async (req, reply) => {
      const msg = validate('TransferRequestMessage', req.body)
      const permit = await permitOf(req)
      const { transfer, next } = await provider.requestTransfer(permit, msg)
      after(reply, next)
      return await reply.code(201).type('application/json').send(transferAck(transfer))
    }))
    const transferMessage = (suffix: string, type: DspMessageType): void => {
      scope.post(`/transfers/:providerPid/${suffix}`, opts, catchAs('transfer', async (req, reply) => {
        const msg = validate(type, req.body)
        const permit = await permitOf(req)
        const { next } = await provider.transferMessage(permit, (req.params as { providerPid: string }).providerPid, type, msg)
        after(reply, next)
        return await reply.code(200).send()
      }))
    }
    transferMessage('start', 'TransferStartMessage')
    transferMessage('completion', 'TransferCompletionMessage')
    transferMessage('termination', 'TransferTerminationMessage')
    transferMessage('suspension', 'TransferSuspensionMessage')
  }, { prefix: DSP_BASE_PATH })
}
