/**
 * Scale-out over Redis (REDIS_URL): several gateway processes share MQTT routing
 * (mqemitter-redis) and sessions, subscriptions, retained messages and wills
 * (aedes-persistence-redis), so a clinician connected to one process receives the alerts and
 * unit status published on another, and a device or clinician that reconnects elsewhere (behind
 * a TCP load balancer) finds its session there. the README (Scale-out) has the deployment.
 *
 * What stays per process, on purpose:
 * - Telemetry. A device's frame is consumed where it arrives (decoded, spooled, fsync'd before
 *   the PUBACK, alert engine) and never forwarded to subscribers (broker.ts), so routing it
 *   through Redis would only cost a 2 KB round trip per frame to every process. Telemetry
 *   topics are delivered to local listeners only (see `emit` below).
 * - The spool, dead letters and alert journal (DATA_DIR): each process drains its own spool into
 *   the shared (clustered) InfluxDB. A crashed process is restarted on its DATA_DIR to drain
 *   what it acknowledged; frames are idempotent, so a device's resend to another process after
 *   the crash is harmless.
 * - Alert state: the engine evaluates the frames its process receives, so a unit's alert state
 *   lives with the process holding its connection; when the unit moves, the new process builds
 *   the unit's state from the next frames (thresholds need their minimum duration again).
 *   The clinical side of the cluster (one alert stream, acknowledgements, dashboard sessions,
 *   the live view, the unit roster and signal-loss watch of a dead process' units) is in
 *   gateway/cluster/.
 */
import { createRequire } from 'node:module'
import { Readable } from 'node:stream'
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js'
import { Redis } from 'ioredis'
import MQEmitterRedis from 'mqemitter-redis'
import type { Logger } from 'pino'
import { describeQueued, victim, type OfflineQueueOptions } from './offline-queue.js'

/** MAX_QUEUED_PER_CLIENT for the queues aedes-persistence-redis keeps (see outgoingEnqueueCombi). */
export interface OutgoingCap { max: number, onDrop: OfflineQueueOptions['onDrop'] }

// The persistence's own msgpack (resolved from its package), to read the packets it stored.
const persistenceRequire = createRequire(createRequire(import.meta.url).resolve('aedes-persistence-redis/asyncPersistence.js'))
const msgpack = persistenceRequire('msgpack-lite') as { decode: (buf: Buffer) => unknown }

/** aedes' `mq`: the parts of mqemitter-redis used here (`_emit` = local delivery only). */
interface RedisEmitter {
  on: (topic: string, listener: (packet: AedesPublishPacket, done: () => void) => void, done?: () => void) => unknown
  emit: (packet: AedesPublishPacket, done?: (err?: Error) => void) => void
  _emit: (packet: AedesPublishPacket, done?: (err?: Error) => void) => void
  close: (cb: () => void) => void
  pubConn: { ping: () => Promise<string>, status: string }
  subConn: { status: string }
  state: { on: (event: 'error', listener: (err: Error) => void) => void }
}

export interface ClusterOptions {
  /** redis://[user:password@]host:port[/db] */
  redisUrl: string
  log: Logger
  /** How long start-up waits for Redis before failing, ms. */
  connectTimeoutMs?: number
}

export interface Cluster {
  /** aedes `mq` option. */
  mq: unknown
  /** aedes `persistence` option. */
  persistence: unknown
  /** Caps every client's queue in Redis (MAX_QUEUED_PER_CLIENT; broker.ts sets it). */
  capOutgoing: (cap: OutgoingCap) => void
  /**
   * aedes' broker heartbeat in cluster mode, ms: other processes take a process that missed 3
   * as dead and publish its clients' wills (every 4 heartbeats).
   */
  heartbeatIntervalMs: number
  /** Hooks the broker once created (stale-will clean-up). */
  attach: (broker: Aedes) => void
  /** For /readyz: both Redis connections of the router are up. */
  readiness: () => { ok: boolean, detail: string }
  /** After the broker closed: disconnects the persistence. Safe to call twice. */
  close: () => Promise<void>
}

/**
 * aedes 1.2 pipes what createRetainedStreamCombi returns (`stream.pipe`), while
 * aedes-persistence-redis 11 returns async generators: without this, a SUBSCRIBE that matches a
 * retained message throws "stream.pipe is not a function" and takes the process down.
 */
class StreamingRedisPersistence extends AsyncRedisPersistence {
  /** Set by the broker (broker.ts): MAX_QUEUED_PER_CLIENT applied to the queues in Redis. */
  outgoingCap: OutgoingCap | undefined
  readonly #db: Redis
  /** One trim at a time per client in this process (two would drop twice for one message). */
  readonly #trims = new Map<string, Promise<void>>()

  constructor (opts: { conn: Redis, maxSessionDelivery: number }) {
    super(opts)
    this.#db = opts.conn
  }

  /**
   * aedes-persistence-redis keeps a client's queue as the list `outgoing:<encoded clientId>` of packet
   * keys (`packet:<brokerId>:<counter>`, shared by every client it was queued for, with a
   * `:offlineCount` of those clients). After each enqueue, a list longer than the cap loses the
   * least important messages, in the order of the single-process queue (offline-queue.ts
   * `victim`); a dropped packet's count is decremented and the packet deleted with its last client,
   * as the persistence does on PUBACK. Across processes two trims may race and drop one message
   * more than needed; never fewer.
   */
  override async outgoingEnqueueCombi (subs: Array<{ clientId: string }> | null | undefined, packet: unknown): Promise<void> {
    await super.outgoingEnqueueCombi(subs, packet)
    const cap = this.outgoingCap
    if (cap === undefined || subs === null || subs === undefined) return
    for (const sub of subs) {
      const id = sub.clientId
      const next = (this.#trims.get(id) ?? Promise.resolve()).then(async () => { await this.#trim(id, cap) })
      this.#trims.set(id, next)
      try { await next } finally { if (this.#trims.get(id) === next) this.#trims.delete(id) }
    }
  }

  async #trim (clientId: string, cap: OutgoingCap): Promise<void> {
    const db = this.#db
    // The persistence's key: outgoingKey() in aedes-persistence-redis encodes the client id.
    const listKey = `outgoing:${encodeURIComponent(clientId)}`
    if (await db.llen(listKey) <= cap.max) return
    const keys = await db.lrange(listKey, 0, -1)
    const rows = await Promise.all(keys.map(async key => {
      const buf = await db.getBuffer(key)
      const packet = buf === null ? undefined : msgpack.decode(buf) as AedesPublishPacket | undefined
      // An expired or missing packet is dropped first: the persistence skips it on delivery anyway.
      return { listKey: key, ...(packet === undefined ? { key: `missing:${key}`, rank: 0 } : describeQueued(packet)) }
    }))
    while (rows.length > cap.max) {
      const v = victim(rows)
      const [row] = rows.splice(v.index, 1)
      await db.lrem(listKey, 1, row!.listKey)
      if (await db.decr(`${row!.listKey}:offlineCount`) <= 0) await db.del(row!.listKey, `${row!.listKey}:offlineCount`)
      cap.onDrop(clientId, v.kind)
    }
  }

  override createRetainedStreamCombi (patterns: string[]): Readable & AsyncIterable<unknown> {
    return Readable.from(super.createRetainedStreamCombi(patterns))
  }

  override outgoingStream (client: unknown): Readable & AsyncIterable<unknown> {
    return Readable.from(super.outgoingStream(client))
  }
}

/** Telemetry is consumed by the process it reaches; see the file comment. */
const TELEMETRY = /^units\/[^/]+\/telemetry$/

/** Default 60 s would leave a crashed process' units "online" for up to 4 minutes. */
const CLUSTER_HEARTBEAT_MS = 10_000

export async function connectCluster (o: ClusterOptions): Promise<Cluster> {
  const url = new URL(o.redisUrl)
  if (url.protocol !== 'redis:') throw new Error(`REDIS_URL must be redis://host:port[/db], got ${url.protocol}`)
  const conn = {
    host: url.hostname,
    port: url.port === '' ? 6379 : Number(url.port),
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    // During a Redis outage, commands wait for it instead of failing after 20 retries:
    // aedes-persistence-redis issues some without awaiting them (putWill, delWill), and a
    // rejection there would be unhandled.
    maxRetriesPerRequest: null
  }
  const log = o.log.child({ component: 'cluster' })
  // concurrency as aedes' own default mqemitter (100), so delivery is bounded the same way.
  const mq = MQEmitterRedis({ ...conn, concurrency: 100, matchEmptyLevels: true }) as unknown as RedisEmitter
  mq.state.on('error', err => { log.error({ err: err.message }, 'redis (mq) error') })
  const routeEverywhere = mq.emit.bind(mq)
  mq.emit = (packet, done) => {
    if (TELEMETRY.test(packet.topic)) mq._emit(packet, done)
    else routeEverywhere(packet, done)
  }
  const timeoutMs = o.connectTimeoutMs ?? 10_000
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      mq.pubConn.ping(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`Redis at ${url.host} did not answer within ${timeoutMs} ms (REDIS_URL)`)), timeoutMs) })
    ])
  } catch (err) {
    await new Promise<void>(resolve => { mq.close(resolve) })
    throw err
  } finally {
    clearTimeout(timer)
  }
  // The persistence's own connection, given to it so that its errors during an outage are
  // logged here (ioredis reconnects by itself) instead of "Unhandled error event" on stderr.
  const db = new Redis(conn)
  db.on('error', (err: Error) => { log.debug({ err: err.message }, 'redis (persistence) error') })
  const persistence = new StreamingRedisPersistence({ conn: db, maxSessionDelivery: 1000 })
  const capOutgoing = (cap: OutgoingCap): void => { persistence.outgoingCap = cap }

  const brokers = new Set<string>()
  let closed = false
  return {
    mq,
    persistence,
    capOutgoing,
    heartbeatIntervalMs: CLUSTER_HEARTBEAT_MS,
    attach (broker) {
      // Every process id ever heard of (birth at start, heartbeats after).
      const note = (p: AedesPublishPacket, done: () => void): void => {
        const id = p.payload.toString()
        if (id !== broker.id) brokers.add(id)
        done()
      }
      broker.subscribe('$SYS/+/birth', note, () => {})
      broker.subscribe('$SYS/+/heartbeat', note, () => {})
      // A client that moved here after its process died still has a will stored under that
      // process; aedes would publish it once the process is declared dead, marking a unit that
      // is streaming here "offline". The client is here now: those wills are stale.
      broker.on('client', (client: Client) => {
        for (const id of brokers) {
          persistence.delWill({ id: client.id, brokerId: id }).catch((err: Error) => {
            log.warn({ err: err.message, clientId: client.id }, 'could not delete a stale will')
          })
        }
      })
    },
    readiness () {
      const ok = mq.pubConn.status === 'ready' && mq.subConn.status === 'ready'
      return { ok, detail: ok ? `redis ${url.host}` : `redis ${url.host}: publish ${mq.pubConn.status}, subscribe ${mq.subConn.status}` }
    },
    async close () {
      if (closed) return
      closed = true
      try {
        // destroy() unsubscribes through the broker's mq, already closed with the broker: its
        // callback may never come, so it is given a moment, not trusted.
        let timer: NodeJS.Timeout | undefined
        await Promise.race([persistence.destroy(), new Promise<void>(resolve => { timer = setTimeout(resolve, 2000) })])
        clearTimeout(timer)
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'redis persistence close')
      }
    }
  }
}
