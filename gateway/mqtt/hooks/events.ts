/**
 * aedes events the gateway listens to (not hooks: nothing is refused here): acknowledgements and
 * unsubscriptions keep each client's state (see authorize-subscribe.ts, authorize-forward.ts)
 * true; protocol errors are logged capped and rate-limited.
 */
import type { Aedes } from 'aedes'
import { cap, type RefusalLog } from '../../logger.js'
import type { HookContext } from './context.js'

/** A PUBACK frees one in-flight slot; an UNSUBSCRIBE frees its subscriptions. */
export function trackClientState (broker: Aedes, ctx: HookContext): void {
  broker.on('ack', (_packet, client) => {
    const st = ctx.existingStateOf(client)
    if (st !== undefined && st.inflight > 0) st.inflight--
  })
  broker.on('unsubscribe', (topics: string[], client) => {
    const st = ctx.existingStateOf(client)
    if (st !== undefined) for (const t of topics) st.subs.delete(t)
  })
}

/** Protocol errors carry whatever the client sent (a 60 KB client id): capped, rate-limited. */
export function logClientErrors (broker: Aedes, noise: RefusalLog): void {
  broker.on('clientError', (client, err) => {
    noise.warn('client-error', { clientId: cap(client.id), err: cap(err.message) }, 'mqtt client error')
  })
  broker.on('connectionError', (client, err) => {
    noise.warn('connection-error', { clientId: cap(client.id), err: cap(err.message) }, 'mqtt connection error')
  })
}
