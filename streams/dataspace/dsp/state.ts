/**
 * The provider's Dataspace Protocol state: contract negotiations and transfer processes, kept in
 * one JSON file (`DATA_DIR/dataspace/dsp-state.json`, 0600) rewritten atomically and durably
 * (streams/storage/durable.ts) before a message that changed it is acknowledged, so a restart
 * keeps every agreement and transfer. Transfer tokens are kept only as SHA-256 hashes, permits
 * only as their verified claims (never the token: a stored token would be a credential at rest).
 *
 * At open, processes that were waiting on the provider's own next message (a negotiation still
 * REQUESTED, a transfer still REQUESTED) are TERMINATED with a reason: the gateway cannot know
 * whether the consumer saw that message, and DSP says both sides must agree on the state
 * (DSP 2025-1, Contract Negotiation Protocol: "In case the states differ, the Contract
 * Negotiation MUST be terminated").
 *
 * The transition tables follow the state machines of DSP 2025-1 (Contract Negotiation Protocol,
 * "State Machine"; Transfer Process Protocol, "State Machine"), provider side.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { writeFileAtomic } from '../../storage/durable.js'
import type { DatasetName } from '../datasets.js'
import type { Permit, ProtectionLevel } from '../permit.js'
import { dataspaceDir } from '../keys.js'
import { DspError } from './errors.js'
import type { OdrlPolicy } from './offers.js'

export type NegotiationState = 'REQUESTED' | 'OFFERED' | 'ACCEPTED' | 'AGREED' | 'VERIFIED' | 'FINALIZED' | 'TERMINATED'
export type TransferState = 'REQUESTED' | 'STARTED' | 'SUSPENDED' | 'COMPLETED' | 'TERMINATED'

/** A verified permit's claims (an access body's keeps its issuer). */
export type PermitClaims = Permit & { issuer?: string, organisation?: string }

export interface Negotiation {
  providerPid: string
  consumerPid: string
  state: NegotiationState
  callbackAddress: string
  offerId: string
  dataset: DatasetName
  level: ProtectionLevel
  permit: PermitClaims
  agreement: OdrlPolicy | null
  code: string | null
  reason: string | null
  updatedAt: string
}

export interface Transfer {
  providerPid: string
  consumerPid: string
  state: TransferState
  callbackAddress: string
  agreementId: string
  dataset: DatasetName
  permit: PermitClaims
  /** SHA-256 (hex) of the current pull token; null when none is valid. */
  tokenHash: string | null
  tokenExpiresAtMs: number | null
  code: string | null
  reason: string | null
  updatedAt: string
}

/** Provider-side transitions the consumer's messages may cause (DSP 2025-1 state machines). */
export const CONSUMER_NEGOTIATION_TRANSITIONS: Readonly<Record<string, { from: readonly NegotiationState[], to: NegotiationState }>> = {
  // AGREED --> VERIFIED: C
  ContractAgreementVerificationMessage: { from: ['AGREED'], to: 'VERIFIED' },
  // REQUESTED/OFFERED/AGREED --> TERMINATED: C (ACCEPTED and VERIFIED end only by the provider)
  ContractNegotiationTerminationMessage: { from: ['REQUESTED', 'OFFERED', 'AGREED'], to: 'TERMINATED' },
  // OFFERED --> ACCEPTED: C. This provider never sends an offer of its own, so never OFFERED.
  'ContractNegotiationEventMessage:ACCEPTED': { from: ['OFFERED'], to: 'ACCEPTED' },
  // OFFERED --> REQUESTED: C (a counter-request), likewise never reachable here.
  ContractRequestMessage: { from: ['OFFERED'], to: 'REQUESTED' }
}

export const CONSUMER_TRANSFER_TRANSITIONS: Readonly<Record<string, { from: readonly TransferState[], to: TransferState }>> = {
  TransferStartMessage: { from: ['SUSPENDED'], to: 'STARTED' },
  TransferSuspensionMessage: { from: ['STARTED'], to: 'SUSPENDED' },
  TransferCompletionMessage: { from: ['STARTED'], to: 'COMPLETED' },
  TransferTerminationMessage: { from: ['REQUESTED', 'STARTED', 'SUSPENDED'], to: 'TERMINATED' }
}

export function isTerminalNegotiation (s: NegotiationState): boolean { return s === 'TERMINATED' || s === 'FINALIZED' }
export function isTerminalTransfer (s: TransferState): boolean { return s === 'TERMINATED' || s === 'COMPLETED' }

export function dspStatePath (dataDir: string): string { return join(dataspaceDir(dataDir), 'dsp-state.json') }

interface StateFile { v: 1, negotiations: Negotiation[], transfers: Transfer[] }

export class DspState {
  readonly negotiations = new Map<string, Negotiation>()
  readonly transfers = new Map<string, Transfer>()
  private writing: Promise<void> = Promise.resolve()

  private constructor (private readonly path: string, private readonly now: () => number) {}

  static async open (path: string, now: () => number = Date.now): Promise<DspState> {
    const s = new DspState(path, now)
    let doc: StateFile | null = null
    try {
      doc = JSON.parse(await readFile(path, 'utf8')) as StateFile
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new DspError('AMB_ERR_DSP_STATE_STORE', `${path}: ${(err as Error).message}`, { cause: err })
    }
    for (const n of doc?.negotiations ?? []) s.negotiations.set(n.providerPid, n)
    for (const t of doc?.transfers ?? []) s.transfers.set(t.providerPid, t)
    let changed = false
    for (const n of s.negotiations.values()) {
      if (n.state === 'REQUESTED') { s.end(n, 'AMB_ERR_DSP_STATE', 'the provider restarted before it answered this request'); changed = true }
    }
    for (const t of s.transfers.values()) {
      if (t.state === 'REQUESTED') { s.endTransfer(t, 'AMB_ERR_DSP_STATE', 'the provider restarted before it started this transfer'); changed = true }
    }
    if (changed) await s.save()
    return s
  }

  /** Marks a negotiation TERMINATED with a code and reason (not saved: call save()). */
  end (n: Negotiation, code: string, reason: string): void {
    n.state = 'TERMINATED'
    n.code = code
    n.reason = reason
    n.updatedAt = new Date(this.now()).toISOString()
  }

  /** Marks a transfer TERMINATED and voids its token (not saved: call save()). */
  endTransfer (t: Transfer, code: string, reason: string): void {
    t.state = 'TERMINATED'
    t.tokenHash = null
    t.tokenExpiresAtMs = null
    t.code = code
    t.reason = reason
    t.updatedAt = new Date(this.now()).toISOString()
  }

  touch (x: { updatedAt: string }): void { x.updatedAt = new Date(this.now()).toISOString() }

  /** The negotiation whose agreement has this `@id`. */
  byAgreement (agreementId: string): Negotiation | undefined {
    for (const n of this.negotiations.values()) if (n.agreement?.['@id'] === agreementId) return n
    return undefined
  }

  byTokenHash (hash: string): Transfer | undefined {
    for (const t of this.transfers.values()) if (t.tokenHash === hash) return t
    return undefined
  }

  /** Writes the whole state durably; writes are serialised, each sees every change before it. */
  save (): Promise<void> {
    const next = this.writing.then(async () => {
      const doc: StateFile = { v: 1, negotiations: [...this.negotiations.values()], transfers: [...this.transfers.values()] }
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 })
      await writeFileAtomic(this.path, JSON.stringify(doc))
    })
    this.writing = next.catch(() => {})
    return next.catch((err: unknown) => { throw new DspError('AMB_ERR_DSP_STATE_STORE', `the DSP state could not be written: ${(err as Error).message}`, { cause: err, retryAfterMs: 1000 }) })
  }
}
