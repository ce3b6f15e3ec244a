/**
 * A cap on the QoS 1 messages aedes queues for a client with a persistent session (clean=false),
 * per client (MAX_QUEUED_PER_CLIENT, issue #10, item 13). aedes' in-memory persistence keeps them
 * in an array per client id without bound: a clinician's system offline over a weekend of alerts,
 * or a user who connects once with clean=false and never again, grows the gateway's heap forever.
 *
 * The queue is the persistence's "outgoing" store (what aedes delivers on reconnect, and what it
 * holds until PUBACK), so this replaces those five methods of aedes' memory persistence and
 * delegates everything else to it. When a client's queue is full, one message is dropped per
 * message added, choosing what matters least for patient safety, in this order:
 *
 * 1. a message superseded by a newer one in the queue: an alert event carries the whole alert
 *    after the change (streams/alerts/types.ts), so the newest event of an alert id, or the newest
 *    status of a unit, holds everything the older ones did;
 * 2. the event of an alert that is cleared (its condition ended);
 * 3. a unit status message or anything that is not an alert event;
 * 4. alerts by priority, low before medium before high;
 * oldest first within each. So a clinician who reconnects still receives the current state of
 * every open alert as long as the open alerts fit in the cap, and the newest events otherwise.
 * Every drop is counted (`ambulink_mqtt_offline_dropped_total{kind}`) and logged at a bounded
 * rate with AMB_ERR_OFFLINE_QUEUE_FULL.
 *
 * In a cluster the queue lives in Redis (aedes-persistence-redis): `cluster.ts` applies the same
 * cap and the same drop order there, after each enqueue (`RedisOutgoingCap`).
 */
import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import type { AedesPublishPacket, Client } from 'aedes'
import { cap, type RefusalLog } from '../logger.js'
import type { Metrics } from '../metrics.js'

/** What a dropped message was, from least to most important (the `kind` label of the metric). */
export const DROP_ORDER = ['superseded', 'cleared', 'other', 'low', 'medium', 'high'] as const
export type DropKind = typeof DROP_ORDER[number]

type QueuedPacket = AedesPublishPacket & { brokerId?: string, brokerCounter?: number, messageId?: number }

interface Queued {
  packet: QueuedPacket
  /** Alert id or topic: a newer message with the same key supersedes this one. */
  key: string
  /** Index in DROP_ORDER when not superseded (1 cleared, 2 other, 3-5 priority). */
  rank: number
}

export interface OfflineQueueOptions {
  /** Most messages queued per client (≥ 1). */
  maxPerClient: number
  /** Told about every message dropped. */
  onDrop: (clientId: string, kind: DropKind) => void
}

const PRIORITY_RANK: Record<string, number> = { low: 3, medium: 4, high: 5 }
const meta = new WeakMap<object, { key: string, rank: number }>()

/** The packet's supersession key and importance, parsed once per packet (shared by every queue). */
export function describeQueued (packet: AedesPublishPacket): { key: string, rank: number } {
  let m = meta.get(packet)
  if (m !== undefined) return m
  m = { key: `topic:${packet.topic}`, rank: 2 }
  if (packet.topic.startsWith('alerts/')) {
    try {
      const payload = Buffer.isBuffer(packet.payload) ? packet.payload.toString('utf8') : String(packet.payload)
      const a = (JSON.parse(payload) as { alert?: { id?: unknown, priority?: unknown, clearedAt?: unknown } }).alert
      if (typeof a?.id === 'string') {
        m = { key: `alert:${a.id}`, rank: a.clearedAt !== null && a.clearedAt !== undefined ? 1 : PRIORITY_RANK[String(a.priority)] ?? 2 }
      }
    } catch { /* not an alert event: kept as "other" */ }
  }
  meta.set(packet, m)
  return m
}

/** The index of the message to drop from a full queue, and what it was. */
export function victim (queue: ReadonlyArray<{ key: string, rank: number }>): { index: number, kind: DropKind } {
  const last = new Map<string, number>()
  for (let i = 0; i < queue.length; i++) last.set(queue[i]!.key, i)
  let best = -1
  let bestRank = Infinity
  for (let i = 0; i < queue.length; i++) {
    const q = queue[i]!
    const rank = last.get(q.key)! > i ? 0 : q.rank
    if (rank < bestRank) {
      best = i
      bestRank = rank
      if (rank === 0) break
    }
  }
  return { index: best, kind: DROP_ORDER[bestRank]! }
}

/**
 * `inner` (aedes' memory persistence) with a bounded outgoing store. Only the outgoing methods are
 * replaced; every other property is the inner persistence's, bound to it.
 */
export function boundedOutgoing<P extends object> (inner: P, o: OfflineQueueOptions): P {
  const queues = new Map<string, Queued[]>()
  const enqueue = (clientId: string, packet: AedesPublishPacket): void => {
    let q = queues.get(clientId)
    if (q === undefined) queues.set(clientId, q = [])
    // A copy per client, as aedes-persistence makes (the message id is set per client).
    q.push({ packet: { ...packet }, ...describeQueued(packet) })
    while (q.length > o.maxPerClient) {
      const v = victim(q)
      q.splice(v.index, 1)
      o.onDrop(clientId, v.kind)
    }
  }
  const overrides: Record<string, unknown> = {
    async outgoingEnqueue (sub: { clientId: string }, packet: AedesPublishPacket) { enqueue(sub.clientId, packet) },
    async outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: AedesPublishPacket) { for (const s of subs) enqueue(s.clientId, packet) },
    async outgoingUpdate (client: Client, packet: QueuedPacket) {
      // As aedes-persistence matches: by (brokerId, brokerCounter), else by message id. A message
      // dropped while being delivered is not an error here (aedes would close the client).
      for (const q of queues.get(client.id) ?? []) {
        const t = q.packet
        if (t.brokerId === packet.brokerId) {
          if (t.brokerCounter === packet.brokerCounter) { t.messageId = packet.messageId; return }
        } else if (t.messageId === packet.messageId) {
          q.packet = packet
          return
        }
      }
    },
    async outgoingClearMessageId (client: Client, packet: { messageId?: number }) {
      const q = queues.get(client.id)
      if (q === undefined) return undefined
      const i = q.findIndex(x => x.packet.messageId === packet.messageId)
      if (i < 0) return undefined
      const [removed] = q.splice(i, 1)
      if (q.length === 0) queues.delete(client.id)
      return removed!.packet
    },
    outgoingStream (client: Client) {
      return Readable.from((queues.get(client.id) ?? []).map(q => q.packet))
    }
  }
  return new Proxy(inner, {
    get (target, prop) {
      if (typeof prop === 'string' && Object.hasOwn(overrides, prop)) return overrides[prop]
      const v = Reflect.get(target, prop, target) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    }
  })
}

/** Counts and logs a dropped message (the same for the memory and the Redis queues). */
export function reportDrop (maxPerClient: number, metrics: Pick<Metrics, 'mqttOfflineDropped'>, log: Pick<RefusalLog, 'warn'>): OfflineQueueOptions['onDrop'] {
  return (clientId, kind) => {
    metrics.mqttOfflineDropped.inc({ kind })
    log.warn('AMB_ERR_OFFLINE_QUEUE_FULL', { clientId: cap(clientId), kind, max: maxPerClient }, 'mqtt offline queue full: message dropped')
  }
}

/** aedes' in-memory persistence with the cap, its drops counted and logged (broker.ts wires it). */
export function boundedOffline (maxPerClient: number, metrics: Pick<Metrics, 'mqttOfflineDropped'>, log: Pick<RefusalLog, 'warn'>): object {
  // The package's CommonJS entry (the factory aedes itself defaults to); its typings do not
  // describe the default export as callable under NodeNext resolution.
  const memory = createRequire(import.meta.url)('aedes-persistence') as () => object
  return boundedOutgoing(memory(), { maxPerClient, onDrop: reportDrop(maxPerClient, metrics, log) })
}
