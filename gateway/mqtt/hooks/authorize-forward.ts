/**
 * aedes `authorizeForward`: what reaches a subscriber. Raw telemetry never; a congested subscriber
 * is cut rather than waited for; a client holds at most MAX_INFLIGHT_PER_CLIENT unacknowledged
 * QoS 1 messages.
 */
import type { AedesPublishPacket, Client } from 'aedes'
import type { Duplex } from 'node:stream'
import { principalOf, type Hook, type HookContext } from './context.js'

/** MQTT topic filter matching (§4.7): '+' one level, '#' the rest. */
function matches (filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false
  }
  return f.length === t.length
}

export function authorizeForwardHook (ctx: HookContext): Hook<'authorizeForward'> {
  const { limits, cutClient } = ctx
  const cutSlowSubscriber = (client: Client): void => {
    cutClient(client, 'AMB_ERR_SUBSCRIBER_TOO_SLOW', `subscriber is not reading; ${(client.conn as Duplex).writableLength} bytes queued`)
  }
  return (client, packet: AedesPublishPacket) => {
    // Raw telemetry is never forwarded (see authorize-publish.ts); devices receive nothing.
    if (principalOf(client)?.kind !== 'user') return null
    if (packet.topic.endsWith('/telemetry')) return null
    // A subscriber whose connection is congested is cut now rather than after drainTimeout:
    // aedes would hold an mqemitter slot per delivery waiting for 'drain' (see packet-guard.ts,
    // which does the same for every guarded connection at write time; this covers any
    // connection handed to aedes without the guard).
    if ((client.conn as Duplex).writableNeedDrain) {
      cutSlowSubscriber(client)
      return null
    }
    // QoS 1 deliveries wait in aedes for the client's PUBACK: a client that never acks would
    // grow them without end. Delivered QoS = min(message, best matching subscription).
    if (packet.qos > 0) {
      const st = ctx.stateOf(client)
      let qos = 0
      for (const [filter, q] of st.subs) if (q > qos && matches(filter, packet.topic)) qos = q
      if (qos > 0) {
        if (st.inflight >= limits.maxInflight) {
          cutClient(client, 'AMB_ERR_TOO_MANY_INFLIGHT', `${st.inflight} QoS 1 messages unacknowledged, MAX_INFLIGHT_PER_CLIENT is ${limits.maxInflight}`)
          return null
        }
        st.inflight++
      }
    }
    return packet
  }
}
