/**
 * The Dataspace Protocol (DSP 2025-1) provider: contract negotiations and transfer processes
 * over the HTTPS binding, on top of the dataspace's permits, extracts and audit log.
 *
 * - A consumer presents its data permit (local, or an access body's JWS) as
 *   `Authorization: Bearer` on every negotiation and transfer message. The permit is checked as
 *   for an extract; every later message of a process must come with the same permit (another one
 *   sees 404, as the binding says for an unauthorised client).
 * - Negotiation: REQUESTED (acknowledged 201) → the provider sends a ContractAgreementMessage when
 *   the permit covers the offer (AGREED once the consumer acknowledges), or a
 *   ContractNegotiationTerminationMessage with a code and reason otherwise (TERMINATED). The
 *   consumer verifies (VERIFIED), the provider finalises (FINALIZED).
 * - Transfer (HTTP pull): REQUESTED → the provider mints a short-lived bearer token bound to the
 *   transfer and sends a TransferStartMessage whose DataAddress points at the extract
 *   (STARTED). The token is accepted by `/dataspace/extract` for the agreement's dataset only,
 *   through `Dataspace.authenticate`, so the pull is the ordinary anonymised extract, audited as
 *   such. Suspension, completion, termination, the permit's revocation or expiry void the token
 *   and cut open pulls; revocation and expiry also send a TransferTerminationMessage.
 *
 * Messages to the consumer go to its `callbackAddress` (http or https), each validated against
 * the DSP schema before it leaves, bounded by a timeout and without following redirects. A
 * callback that does not acknowledge ends the process (TERMINATED, AMB_ERR_DSP_CALLBACK).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import {
  CONSUMER_NEGOTIATION_TRANSITIONS, CONSUMER_TRANSFER_TRANSITIONS, DSP_CONTEXT, DspError, DspState, agreement, datasetId,
  dspStatePath, isTerminalNegotiation, isTerminalTransfer, notCovered, parseOfferId, productDspValidator,
  type AuditEvent, type DspMessageType, type DspValidator, type Negotiation, type Permit, type PermitClaims, type Transfer
} from '../../streams/index.js'
import { listUsers, type CredentialStore } from '../credentials.js'
import type { Dataspace } from './service.js'

/** Prefix of a transfer token: never a JWS, so it cannot be mistaken for a permit. */
export const TRANSFER_TOKEN_PREFIX = 'ambdsp_'
/** The DSP 2025-1 base path of this connector's HTTPS binding. */
export const DSP_BASE_PATH = '/dsp/2025-1'

export interface DspProviderOptions {
  /** Lifetime of a pull token, ms (never past the permit's expiry). */
  tokenTtlMs: number
  /** Bound on one callback to the consumer, ms. */
  callbackTimeoutMs: number
  /** How often permits of open processes are checked for expiry, ms. */
  sweepMs: number
  now?: () => number
}

type Msg = Record<string, unknown>

const hashToken = (t: string): string => createHash('sha256').update(t).digest('hex')

export class DspProvider {
  private readonly pulls = new Map<string, Set<ServerResponse>>()
  private readonly pending = new Set<Promise<void>>()
  private readonly sweepTimer: NodeJS.Timeout
  private readonly detach: () => void
  private closed = false
  readonly validator: DspValidator = productDspValidator()
  private readonly now: () => number

  private constructor (readonly ds: Dataspace, readonly state: DspState, private readonly log: Logger, private readonly o: DspProviderOptions, credentials: CredentialStore) {
    this.now = o.now ?? Date.now
    const onRevoked = (ids: string[]): void => { this.track(this.permitsEnded(p => ids.includes(p.id), 'AMB_ERR_PERMIT_REVOKED', 'the data permit was revoked')) }
    const onUser = (name: string): void => { this.track(this.permitsEnded(p => p.researcher === name, 'AMB_ERR_PERMIT_REVOKED', 'the permit\'s researcher no longer holds the researcher role')) }
    ds.revocations.on('revoked', onRevoked)
    ds.issuers?.on('revoked', onRevoked)
    credentials.on('revoked', onUser)
    this.detach = () => {
      ds.revocations.off('revoked', onRevoked)
      ds.issuers?.off('revoked', onRevoked)
      credentials.off('revoked', onUser)
    }
    this.sweepTimer = setInterval(() => {
      const now = this.now()
      this.track(this.permitsEnded(p => p.expiresAtMs <= now, 'AMB_ERR_PERMIT_EXPIRED', 'the data permit expired'))
    }, o.sweepMs)
    this.sweepTimer.unref()
  }

  static async open (ds: Dataspace, credentials: CredentialStore, log: Logger, o: DspProviderOptions): Promise<DspProvider> {
    const state = await DspState.open(dspStatePath(ds.config.dataDir), o.now)
    const p = new DspProvider(ds, state, log, o, credentials)
    // Transfer tokens are credentials for the extract: resolved here, refused with permit codes there.
    ds.addTokenResolver(async (token, nowMs) => {
      if (!token.startsWith(TRANSFER_TOKEN_PREFIX)) return null
      return (await p.pullPermit(token, nowMs)).permit
    })
    return p
  }

  /** The public root (DATASPACE_PUBLIC_URL, no trailing slash), '' when unset. */
  get root (): string { return this.ds.config.dataspacePublicUrl?.replace(/\/$/, '') ?? '' }
  get participantId (): string { return this.ds.config.dataspacePublicUrl ?? 'urn:ambulink:provider' }

  /** Runs background work (callbacks after an acknowledgement) so close() can wait for it. */
  track (p: Promise<void>): void {
    const t = p.catch((err: unknown) => { this.log.error({ err }, 'DSP background work failed') }).finally(() => { this.pending.delete(t) })
    this.pending.add(t)
  }

  private audit (e: Omit<AuditEvent, 'outcome'> & { outcome: AuditEvent['outcome'] }): Promise<void> {
    return this.ds.audit.append(e).then(() => {}, (err: unknown) => { this.log.error({ err }, 'audit log append failed') })
  }

  private permitAudit (p: Permit): Pick<AuditEvent, 'permit' | 'researcher' | 'level' | 'purpose'> {
    return { permit: p.id, researcher: p.researcher, level: p.level, purpose: p.purpose }
  }

  /** Sends a message to the consumer's callback; resolves true when it was acknowledged (2xx). */
  private async send (callbackAddress: string, path: string, type: DspMessageType, msg: Msg): Promise<boolean> {
    const errors = this.validator.errors(type, msg)
    // Our own message failing the schema is a bug here, not the consumer's: never send it.
    if (errors !== null) throw new Error(`outgoing ${type} does not validate: ${errors.join('; ')}`)
    const url = `${callbackAddress.replace(/\/+$/, '')}/${path}`
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(msg),
        redirect: 'error',
        signal: AbortSignal.timeout(this.o.callbackTimeoutMs)
      })
      await res.arrayBuffer().catch(() => {})
      if (res.ok) return true
      this.log.warn({ type, status: res.status }, 'DSP callback not acknowledged')
    } catch (err) {
      this.log.warn({ type, err: (err as Error).message }, 'DSP callback failed')
    }
    return false
  }

  // ---- negotiation ----

  /** A new negotiation from an initiating ContractRequestMessage (already schema-valid). */
  async request (permit: PermitClaims, msg: Msg): Promise<{ negotiation: Negotiation, next: () => Promise<void> }> {
    const offerMsg = msg.offer as { '@id': string, target?: string }
    const o = parseOfferId(offerMsg['@id'])
    if (o === null) throw new DspError('AMB_ERR_DSP_UNKNOWN_OFFER', `the catalogue holds no offer ${JSON.stringify(offerMsg['@id']).slice(0, 120)}`)
    if (offerMsg.target !== undefined && offerMsg.target !== datasetId(o.dataset)) throw new DspError('AMB_ERR_DSP_UNKNOWN_OFFER', `offer ${offerMsg['@id']} is for ${datasetId(o.dataset)}, not ${String(offerMsg.target).slice(0, 120)}`)
    const callbackAddress = callback(msg.callbackAddress)
    const n: Negotiation = {
      providerPid: `urn:uuid:${randomUUID()}`,
      consumerPid: msg.consumerPid as string,
      state: 'REQUESTED',
      callbackAddress,
      offerId: offerMsg['@id'],
      dataset: o.dataset,
      level: o.level,
      permit,
      agreement: null,
      code: null,
      reason: null,
      updatedAt: new Date(this.now()).toISOString()
    }
    this.state.negotiations.set(n.providerPid, n)
    await this.state.save()
    return { negotiation: n, next: () => this.decide(n) }
  }

  /** After the REQUESTED acknowledgement: agree when the permit covers the offer, else terminate. */
  private async decide (n: Negotiation): Promise<void> {
    if (n.state !== 'REQUESTED') return
    const why = notCovered(n.permit, { dataset: n.dataset, level: n.level })
    const base = { kind: 'dsp.negotiation' as const, ...this.permitAudit(n.permit), dataset: n.dataset }
    if (why !== null) {
      this.state.end(n, 'AMB_ERR_DSP_OFFER_NOT_COVERED', why)
      await this.state.save()
      this.ds.metrics.refused.inc({ code: 'AMB_ERR_DSP_OFFER_NOT_COVERED' })
      await this.audit({ ...base, outcome: 'refused', code: 'AMB_ERR_DSP_OFFER_NOT_COVERED', reason: why })
      await this.send(n.callbackAddress, `negotiations/${encodeURIComponent(n.consumerPid)}/termination`, 'ContractNegotiationTerminationMessage', this.negotiationTermination(n))
      return
    }
    n.agreement = agreement({
      id: `urn:uuid:${randomUUID()}`,
      dataset: n.dataset,
      permit: n.permit,
      assigner: this.participantId,
      assignee: assignee(n.permit),
      atMs: this.now()
    })
    const msg = { '@context': [DSP_CONTEXT], '@type': 'ContractAgreementMessage', providerPid: n.providerPid, consumerPid: n.consumerPid, agreement: n.agreement }
    // The state follows the acknowledged message (DSP 2025-1, "AGREED: ... the Consumer has sent an ACK").
    if (await this.send(n.callbackAddress, `negotiations/${encodeURIComponent(n.consumerPid)}/agreement`, 'ContractAgreementMessage', msg)) {
      if (n.state !== 'REQUESTED') return
      n.state = 'AGREED'
      this.state.touch(n)
      await this.state.save()
      this.ds.metrics.accesses.inc({ endpoint: 'dsp', outcome: 'granted' })
      await this.audit({ ...base, outcome: 'granted', reason: `agreement ${n.agreement['@id']}` })
    } else {
      this.state.end(n, 'AMB_ERR_DSP_CALLBACK', 'the consumer did not acknowledge the agreement')
      await this.state.save()
    }
  }

  private negotiationTermination (n: Negotiation): Msg {
    return { '@context': [DSP_CONTEXT], '@type': 'ContractNegotiationTerminationMessage', providerPid: n.providerPid, consumerPid: n.consumerPid, code: n.code ?? 'TERMINATED', reason: [n.reason ?? 'terminated by the provider'] }
  }

  /** The negotiation `providerPid` of this permit; 404 for another permit's (DSP HTTPS binding). */
  negotiation (permit: Permit, providerPid: string): Negotiation {
    const n = this.state.negotiations.get(providerPid)
    if (n === undefined || n.permit.id !== permit.id) throw new DspError('AMB_ERR_DSP_NOT_FOUND', `no negotiation ${providerPid.slice(0, 100)} for this permit`)
    return n
  }

  /** A consumer message on an existing negotiation (verification, event, termination, counter-request). */
  async negotiationMessage (permit: Permit, providerPid: string, type: string, msg: Msg): Promise<{ negotiation: Negotiation, next: (() => Promise<void>) | null }> {
    const n = this.negotiation(permit, providerPid)
    if (msg.consumerPid !== n.consumerPid || msg.providerPid !== n.providerPid) throw new DspError('AMB_ERR_DSP_NOT_FOUND', 'providerPid and consumerPid do not name this negotiation')
    const key = type === 'ContractNegotiationEventMessage' ? `${type}:${String(msg.eventType)}` : type
    const t = CONSUMER_NEGOTIATION_TRANSITIONS[key]
    if (t === undefined || !t.from.includes(n.state)) throw new DspError('AMB_ERR_DSP_STATE', `${key} is not allowed in state ${n.state}`)
    if (t.to === 'TERMINATED') {
      this.state.end(n, typeof msg.code === 'string' ? msg.code.slice(0, 100) : 'CONSUMER_TERMINATED', 'terminated by the consumer')
      await this.state.save()
      return { negotiation: n, next: null }
    }
    n.state = t.to
    this.state.touch(n)
    await this.state.save()
    if (t.to !== 'VERIFIED') return { negotiation: n, next: null }
    return { negotiation: n, next: () => this.finalize(n) }
  }

  private async finalize (n: Negotiation): Promise<void> {
    if (n.state !== 'VERIFIED') return
    const msg = { '@context': [DSP_CONTEXT], '@type': 'ContractNegotiationEventMessage', providerPid: n.providerPid, consumerPid: n.consumerPid, eventType: 'FINALIZED' }
    if (await this.send(n.callbackAddress, `negotiations/${encodeURIComponent(n.consumerPid)}/events`, 'ContractNegotiationEventMessage', msg)) {
      if (n.state !== 'VERIFIED') return
      n.state = 'FINALIZED'
      this.state.touch(n)
    } else {
      this.state.end(n, 'AMB_ERR_DSP_CALLBACK', 'the consumer did not acknowledge the finalisation')
    }
    await this.state.save()
  }

  // ---- transfer ----

  /** A new transfer from a TransferRequestMessage: needs a FINALIZED agreement of the same permit. */
  async requestTransfer (permit: PermitClaims, msg: Msg): Promise<{ transfer: Transfer, next: () => Promise<void> }> {
    const n = this.state.byAgreement(msg.agreementId as string)
    if (n === undefined || n.permit.id !== permit.id) throw new DspError('AMB_ERR_DSP_NOT_FOUND', `no agreement ${String(msg.agreementId).slice(0, 100)} for this permit`)
    if (n.state !== 'FINALIZED') throw new DspError('AMB_ERR_DSP_STATE', `the agreement's negotiation is ${n.state}, not FINALIZED`)
    if (msg.format !== 'HttpData-PULL') throw new DspError('AMB_ERR_DSP_FORMAT', `format ${JSON.stringify(msg.format).slice(0, 60)} is not offered; use HttpData-PULL`)
    const t: Transfer = {
      providerPid: `urn:uuid:${randomUUID()}`,
      consumerPid: msg.consumerPid as string,
      state: 'REQUESTED',
      callbackAddress: callback(msg.callbackAddress),
      agreementId: msg.agreementId as string,
      dataset: n.dataset,
      // The permit as presented now (the freshest check), bound to the agreement's permit id.
      permit,
      tokenHash: null,
      tokenExpiresAtMs: null,
      code: null,
      reason: null,
      updatedAt: new Date(this.now()).toISOString()
    }
    this.state.transfers.set(t.providerPid, t)
    await this.state.save()
    return { transfer: t, next: () => this.start(t) }
  }

  /**
   * Starts (or restarts) a transfer: a new token, the transfer STARTED, then the start message
   * with the DataAddress. STARTED is written before the message leaves, so a consumer that pulls
   * as soon as it reads the message is served; if the message is not acknowledged the transfer
   * is TERMINATED and the token void.
   */
  private async start (t: Transfer): Promise<void> {
    if (t.state !== 'REQUESTED' && t.state !== 'STARTED') return
    const token = TRANSFER_TOKEN_PREFIX + randomBytes(32).toString('base64url')
    const expiresAtMs = Math.min(this.now() + this.o.tokenTtlMs, t.permit.expiresAtMs)
    t.tokenHash = hashToken(token)
    t.tokenExpiresAtMs = expiresAtMs
    t.state = 'STARTED'
    this.state.touch(t)
    await this.state.save()
    await this.audit({ kind: 'dsp.transfer', outcome: 'granted', ...this.permitAudit(t.permit), dataset: t.dataset, reason: `transfer ${t.providerPid} started` })
    const msg = {
      '@context': [DSP_CONTEXT],
      '@type': 'TransferStartMessage',
      providerPid: t.providerPid,
      consumerPid: t.consumerPid,
      dataAddress: {
        '@type': 'DataAddress',
        endpointType: 'https://w3id.org/idsa/v4.1/HTTP',
        endpoint: `${this.root}/dataspace/extract?dataset=${t.dataset}`,
        endpointProperties: [
          { '@type': 'EndpointProperty', name: 'authorization', value: token },
          { '@type': 'EndpointProperty', name: 'authType', value: 'bearer' },
          { '@type': 'EndpointProperty', name: 'expiresAt', value: new Date(expiresAtMs).toISOString() }
        ]
      }
    }
    if (!await this.send(t.callbackAddress, `transfers/${encodeURIComponent(t.consumerPid)}/start`, 'TransferStartMessage', msg)) {
      this.endTransfer(t, 'AMB_ERR_DSP_CALLBACK', 'the consumer did not acknowledge the start message')
      await this.state.save()
    }
  }

  transfer (permit: Permit, providerPid: string): Transfer {
    const t = this.state.transfers.get(providerPid)
    if (t === undefined || t.permit.id !== permit.id) throw new DspError('AMB_ERR_DSP_NOT_FOUND', `no transfer ${providerPid.slice(0, 100)} for this permit`)
    return t
  }

  /** A consumer message on a transfer: start (from SUSPENDED), suspension, completion, termination. */
  async transferMessage (permit: PermitClaims, providerPid: string, type: string, msg: Msg): Promise<{ transfer: Transfer, next: (() => Promise<void>) | null }> {
    const t = this.transfer(permit, providerPid)
    if (msg.consumerPid !== t.consumerPid || msg.providerPid !== t.providerPid) throw new DspError('AMB_ERR_DSP_NOT_FOUND', 'providerPid and consumerPid do not name this transfer')
    const tr = CONSUMER_TRANSFER_TRANSITIONS[type]
    if (tr === undefined || !tr.from.includes(t.state)) throw new DspError('AMB_ERR_DSP_STATE', `${type} is not allowed in state ${t.state}`)
    if (tr.to === 'STARTED') {
      t.permit = permit
      // Restarted: the start message with a fresh token follows the acknowledgement.
      t.state = 'REQUESTED'
      return { transfer: t, next: () => this.start(t) }
    }
    if (tr.to === 'TERMINATED') {
      this.endTransfer(t, typeof msg.code === 'string' ? msg.code.slice(0, 100) : 'CONSUMER_TERMINATED', 'terminated by the consumer')
    } else {
      t.state = tr.to
      t.tokenHash = null
      t.tokenExpiresAtMs = null
      this.state.touch(t)
      this.cutPulls(t.providerPid)
    }
    await this.state.save()
    await this.audit({ kind: 'dsp.transfer', outcome: 'closed', ...this.permitAudit(t.permit), dataset: t.dataset, reason: `transfer ${t.providerPid} ${t.state} by the consumer` })
    return { transfer: t, next: null }
  }

  private endTransfer (t: Transfer, code: string, reason: string): void {
    this.state.endTransfer(t, code, reason)
    this.cutPulls(t.providerPid)
  }

  /**
   * Ends every open negotiation and transfer of the permits `match` selects: TERMINATED with the
   * code and reason, tokens void, open pulls cut, and the consumer told.
   */
  async permitsEnded (match: (p: PermitClaims) => boolean, code: string, reason: string): Promise<void> {
    const transfers = [...this.state.transfers.values()].filter(t => !isTerminalTransfer(t.state) && match(t.permit))
    const negotiations = [...this.state.negotiations.values()].filter(n => !isTerminalNegotiation(n.state) && match(n.permit))
    if (transfers.length === 0 && negotiations.length === 0) return
    for (const t of transfers) this.endTransfer(t, code, reason)
    for (const n of negotiations) this.state.end(n, code, reason)
    await this.state.save()
    this.log.info({ transfers: transfers.length, negotiations: negotiations.length, code }, 'DSP processes terminated: the permit ended')
    for (const t of transfers) {
      await this.audit({ kind: 'dsp.transfer', outcome: 'closed', ...this.permitAudit(t.permit), dataset: t.dataset, code, reason })
      const msg = { '@context': [DSP_CONTEXT], '@type': 'TransferTerminationMessage', providerPid: t.providerPid, consumerPid: t.consumerPid, code, reason: [reason] }
      await this.send(t.callbackAddress, `transfers/${encodeURIComponent(t.consumerPid)}/termination`, 'TransferTerminationMessage', msg)
    }
    for (const n of negotiations) {
      await this.send(n.callbackAddress, `negotiations/${encodeURIComponent(n.consumerPid)}/termination`, 'ContractNegotiationTerminationMessage', this.negotiationTermination(n))
    }
  }

  // ---- pull ----

  /**
   * The transfer and the permit a pull token stands for: the transfer STARTED, the token not
   * expired, the permit still valid (not revoked locally or by its issuer, not expired, its
   * researcher still a researcher). The permit is narrowed to the agreement's dataset.
   */
  async pullPermit (token: string, nowMs: number): Promise<{ transfer: Transfer, permit: Permit }> {
    const t = this.state.byTokenHash(hashToken(token))
    if (t === undefined || t.state !== 'STARTED') throw new DspError('AMB_ERR_DSP_TRANSFER_TOKEN', 'unknown transfer token, or its transfer is not STARTED')
    if (t.tokenExpiresAtMs === null || t.tokenExpiresAtMs <= nowMs) throw new DspError('AMB_ERR_DSP_TRANSFER_TOKEN', 'the transfer token has expired: suspend and restart the transfer for a new one')
    const p = t.permit
    const ended = await this.permitEndedWhy(p, nowMs)
    if (ended !== null) {
      this.track(this.permitsEnded(x => x.id === p.id, ended.code, ended.reason))
      throw new DspError('AMB_ERR_DSP_TRANSFER_TOKEN', `the transfer ended: ${ended.reason}`)
    }
    const { issuer: _i, organisation: _o, ...permit } = p
    return { transfer: t, permit: { ...permit, datasets: [t.dataset], fields: { [t.dataset]: p.fields[t.dataset] ?? [] } } }
  }

  private async permitEndedWhy (p: PermitClaims, nowMs: number): Promise<{ code: string, reason: string } | null> {
    if (p.expiresAtMs <= nowMs) return { code: 'AMB_ERR_PERMIT_EXPIRED', reason: 'the data permit expired' }
    await this.ds.revocations.refresh()
    const revoked = this.ds.revocations.has(p.id) || (p.issuer !== undefined && this.ds.issuers?.isRevoked(p.issuer, p.id) === true)
    if (revoked) return { code: 'AMB_ERR_PERMIT_REVOKED', reason: 'the data permit was revoked' }
    const user = (await listUsers(this.ds.config.dataDir)).find(u => u.name === p.researcher)
    if (user?.role !== 'researcher' || user.accountId !== p.accountId) return { code: 'AMB_ERR_PERMIT_REVOKED', reason: 'the permit\'s researcher no longer holds the researcher role' }
    return null
  }

  /** Tracks an open pull so that ending its transfer cuts it. */
  openPull (transferPid: string, res: ServerResponse): void {
    let set = this.pulls.get(transferPid)
    if (set === undefined) this.pulls.set(transferPid, set = new Set())
    set.add(res)
    res.once('close', () => {
      set.delete(res)
      if (set.size === 0 && this.pulls.get(transferPid) === set) this.pulls.delete(transferPid)
    })
  }

  /** Destroys the open pulls of a transfer: the body ends without its last chunk (no trailers). */
  private cutPulls (transferPid: string): void {
    const set = this.pulls.get(transferPid)
    if (set === undefined) return
    this.pulls.delete(transferPid)
    for (const res of set) res.destroy()
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.sweepTimer)
    this.detach()
    await Promise.allSettled([...this.pending])
  }
}

function callback (v: unknown): string {
  let u: URL
  try { u = new URL(String(v)) } catch { throw new DspError('AMB_ERR_DSP_CALLBACK', 'callbackAddress is not a URL') }
  // DSP 2025-1: "If the address is not understood, the Provider MUST return an unrecoverable error."
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new DspError('AMB_ERR_DSP_CALLBACK', 'callbackAddress must be an http(s) URL')
  return u.toString()
}

/** Who the agreement is with: the requesting organisation of an access-body permit, else the local researcher. */
function assignee (p: PermitClaims): string {
  if (p.issuer !== undefined && p.organisation !== undefined) return `${p.issuer}#organisation=${encodeURIComponent(p.organisation)}`
  return `urn:ambulink:researcher:${encodeURIComponent(p.researcher)}`
}
