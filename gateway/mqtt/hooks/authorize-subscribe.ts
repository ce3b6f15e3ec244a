/**
 * aedes `authorizeSubscribe`: devices subscribe to nothing; clinicians and admins to alerts and
 * unit status; refused subscriptions get SUBACK 0x80. A client holds at most
 * MAX_SUBSCRIPTIONS_PER_CLIENT filters.
 */
import type { Subscription } from 'aedes'
import { nameOf, principalOf, type Hook, type HookContext } from './context.js'

/** Subscriptions a user role may hold (MQTT topic filters, matched exactly). */
const ROLE_FILTERS: Record<string, readonly string[]> = {
  clinician: ['alerts/#', 'alerts/+', 'units/+/status'],
  admin: ['alerts/#', 'alerts/+', 'units/+/status'],
  researcher: []
}

/** One unit's alerts or status, for clinicians following a single ambulance. */
const ONE_UNIT_FILTER = /^(alerts\/[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}|units\/[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\/status)$/

export function authorizeSubscribeHook (ctx: HookContext): Hook<'authorizeSubscribe'> {
  const { limits, refuse } = ctx
  return (client, sub: Subscription, done) => {
    if (sub.topic.length > limits.maxTopicLength) {
      refuse('AMB_ERR_TOPIC_TOO_LONG', client, `topic filter of ${sub.topic.length} characters, MAX_TOPIC_LENGTH is ${limits.maxTopicLength}`)
      return done(null, null)
    }
    const p = principalOf(client)
    const allowed = p?.kind === 'user' && ((ROLE_FILTERS[p.role] ?? []).includes(sub.topic) || (p.role !== 'researcher' && ONE_UNIT_FILTER.test(sub.topic)))
    if (!allowed) {
      refuse('AMB_ERR_FORBIDDEN_SUBSCRIBE', client, `${p === undefined ? 'anonymous' : nameOf(p)} may not subscribe to ${sub.topic}`)
      return done(null, null)
    }
    const st = ctx.stateOf(client)
    if (!st.subs.has(sub.topic) && st.subs.size >= limits.maxSubscriptions) {
      refuse('AMB_ERR_TOO_MANY_SUBSCRIPTIONS', client, `${nameOf(p)} holds ${st.subs.size} subscriptions, MAX_SUBSCRIPTIONS_PER_CLIENT is ${limits.maxSubscriptions}`)
      return done(null, null)
    }
    st.subs.set(sub.topic, sub.qos)
    done(null, sub)
  }
}
