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
import { Readable } from 'node:stream'
import type { Aedes, AedesPublishPacket, Client } from 'aedes'
import AsyncRedisPersistence from 'aedes-persistence-redis/asyncPersistence.js'
import { Redis } from 'ioredis'
import MQEmitterRedis from 'mqemitter-redis'
import type { Logger } from 'pino'

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

  const brokers = new Set<string>()
  let closed = false
  return {
    mq,
    persistence,
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
