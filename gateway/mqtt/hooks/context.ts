/**
 * What the broker's hooks share: who each client is (set by authenticate, read by the others),
 * what each connected user holds (granted filters, unacknowledged QoS 1 sends), the limits, and
 * one way to refuse or cut a client (counted with its code, logged at a bounded rate).
 */
import type { AedesOptions, Client } from 'aedes'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { Principal } from '../../credentials.js'
import { AuthError, type GatewayErrorCode } from '../../errors.js'
import type { ClientLimits } from '../../limits.js'
import type { RefusalLog } from '../../logger.js'
import type { Metrics } from '../../metrics.js'

/** An aedes hook's signature, by its option name (aedes does not export the handler types). */
export type Hook<K extends keyof AedesOptions> = NonNullable<AedesOptions[K]>

/** What the gateway tracks per connected user: granted filters (with QoS) and unacked sends. */
export interface ClientState { subs: Map<string, number>, inflight: number }

const principals = new WeakMap<Client, Principal>()

export function principalOf (client: Client): Principal | undefined { return principals.get(client) }

export function setPrincipal (client: Client, principal: Principal): void { principals.set(client, principal) }

export function nameOf (p: Principal): string { return p.kind === 'device' ? p.unit : p.name }

/** The only payloads of units/{unit}/status (docs/device-contract.md). */
const STATUS_PAYLOADS = new Set(['online', 'offline'])

export function validStatus (payload: unknown, qos: number): boolean {
  const text = Buffer.isBuffer(payload) ? payload.toString('latin1') : typeof payload === 'string' ? payload : ''
  return qos <= 1 && STATUS_PAYLOADS.has(text)
}

export interface HookContext {
  limits: ClientLimits
  metrics: Metrics
  log: Logger
  /** Refusals of what clients ask for (warn, bounded rate). */
  refusals: RefusalLog
  /** The state of a connected client, created on first use. */
  stateOf: (client: Client) => ClientState
  /** The state of a client if it has one (for events after the fact). */
  existingStateOf: (client: Client) => ClientState | undefined
  /** Counts and logs a refusal; returns the error to hand to aedes. */
  refuse: (reason: GatewayErrorCode, client: Client | null, detail: string) => Error
  /** Disconnects a client that broke a limit (once, counted, logged). */
  cutClient: (client: Client, reason: GatewayErrorCode, detail: string) => void
}

export function createHookContext (opts: { limits: ClientLimits, metrics: Metrics, log: Logger, refusals: RefusalLog }): HookContext {
  const { metrics, refusals } = opts
  const states = new WeakMap<Client, ClientState>()
  const stateOf = (client: Client): ClientState => {
    let st = states.get(client)
    if (st === undefined) states.set(client, st = { subs: new Map(), inflight: 0 })
    return st
  }

  const refuse = (reason: GatewayErrorCode, client: Client | null, detail: string): Error => {
    metrics.mqttRefused.inc({ reason })
    refusals.warn(reason, { clientId: client?.id, detail }, 'mqtt refused')
    return new AuthError(reason, detail)
  }

  const cutting = new WeakSet<Client>()
  const cutClient = (client: Client, reason: GatewayErrorCode, detail: string): void => {
    if (cutting.has(client)) return
    cutting.add(client)
    metrics.mqttRefused.inc({ reason })
    refusals.warn(reason, { clientId: client.id, detail }, 'mqtt client disconnected')
    // Not from inside mqemitter's delivery loop: aedes' close() unsubscribes synchronously.
    setImmediate(() => { (client.conn as Duplex).destroy() })
  }

  return { ...opts, stateOf, existingStateOf: client => states.get(client), refuse, cutClient }
}
