/**
 * aedes `authorizePublish`: a device publishes only under its own `units/{unit}/` (status and
 * telemetry); telemetry is ingested (spooled, fsync'd) before aedes sends the PUBACK. Users
 * publish nothing.
 */
import type { Ingest } from '../../ingest.js'
import { traceFrameReceived, type FrameReceivedTrace } from '../../trace.js'
import { principalOf, validStatus, type Hook, type HookContext } from './context.js'

const UNITS = 'units/'
const SLASH = 0x2f

/** Whether `topic` from `at` on is exactly `leaf`. */
function isLeaf (topic: string, at: number, leaf: string): boolean {
  return topic.length === at + leaf.length && topic.startsWith(leaf, at)
}

export function authorizePublishHook (ctx: HookContext, ingest: Ingest): Hook<'authorizePublish'> {
  const { limits, refuse, log } = ctx
  return (client, packet, done) => {
    if (packet.topic.length > limits.maxTopicLength) return done(refuse('AMB_ERR_TOPIC_TOO_LONG', client, `topic of ${packet.topic.length} characters, MAX_TOPIC_LENGTH is ${limits.maxTopicLength}`))
    if (packet.topic.startsWith('$')) return done(refuse('AMB_ERR_FORBIDDEN_TOPIC', client, `publish to ${packet.topic}`))
    if (client === null) {
      // A will published by aedes after its client is gone: only status topics carry wills.
      return /^units\/[^/]+\/status$/.test(packet.topic) ? done(null) : done(new Error('will outside units/{unit}/status'))
    }
    const p = principalOf(client)
    if (p === undefined || p.kind !== 'device') return done(refuse('AMB_ERR_FORBIDDEN_TOPIC', client, `${p?.kind ?? 'anonymous'} may not publish (${packet.topic})`))
    // The topic must be `units/{unit}/` + leaf: checked in place, with no string built per frame.
    const topic = packet.topic
    const leafAt = UNITS.length + p.unit.length + 1
    if (!(topic.startsWith(UNITS) && topic.startsWith(p.unit, UNITS.length) && topic.charCodeAt(leafAt - 1) === SLASH)) {
      return done(refuse('AMB_ERR_FORBIDDEN_TOPIC', client, `${p.unit} may not publish to ${topic}`))
    }
    // The device contract names two topics; anything else would only grow retained state.
    if (isLeaf(topic, leafAt, 'status')) {
      // Clinicians receive (and late subscribers get retained) whatever is accepted here.
      if (!validStatus(packet.payload, packet.qos)) return done(refuse('AMB_ERR_BAD_STATUS', client, `${p.unit}: status must be "online" or "offline" at QoS 0 or 1 (got ${packet.payload.length} bytes at QoS ${packet.qos})`))
      return done(null)
    }
    if (!isLeaf(topic, leafAt, 'telemetry')) return done(refuse('AMB_ERR_FORBIDDEN_TOPIC', client, `${p.unit} may not publish to ${topic}`))
    // Telemetry is consumed here, never retained nor routed to subscribers as raw frames.
    packet.retain = false
    if (traceFrameReceived.hasSubscribers) traceFrameReceived.publish({ unit: p.unit } satisfies FrameReceivedTrace)
    ingest.ingest(p.unit, packet.payload as Buffer, 'mqtt').then(
      () => { done(null) },
      (err: Error) => {
        // Could not keep the frame (spool full or failing): no PUBACK. MQTT 3.1.1 has no
        // negative ack, so the connection closes and the device resends later.
        log.error({ unit: p.unit, code: (err as { code?: string }).code, err: err.message }, 'frame not spooled; disconnecting device')
        done(err)
      }
    )
  }
}
