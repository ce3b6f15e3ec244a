/**
 * The Redis link of the cluster's clinical side (sessions, live view, alert stream, unit roster):
 * one connection for commands and one for subscriptions, shared by every part of the process,
 * with one dispatcher per channel. Keys and channels live under `ambulink:` (aedes' MQTT keys,
 * gateway/mqtt/cluster.ts, have no prefix: use a Redis database per deployment).
 */
import { randomBytes } from 'node:crypto'
import type { Redis, RedisOptions } from 'ioredis'
import type { Logger } from 'pino'

export const PREFIX = 'ambulink:'

/** ioredis options from REDIS_URL (redis://[user:password@]host:port[/db]). */
export function redisOptions (redisUrl: string): RedisOptions {
  const url = new URL(redisUrl)
  if (url.protocol !== 'redis:') throw new Error(`REDIS_URL must be redis://host:port[/db], got ${url.protocol}`)
  return {
    host: url.hostname,
    port: url.port === '' ? 6379 : Number(url.port),
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    // During an outage, commands wait for Redis rather than fail after 20 retries; callers that
    // must not wait (alert publication) race them against their own deadline.
    maxRetriesPerRequest: null,
    lazyConnect: true
  }
}

/** `p`, or nothing after `ms` (its outcome is then ignored). */
export async function within<T> (ms: number, p: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  p.catch(() => {})
  try {
    return await Promise.race([p, new Promise<undefined>(resolve => { timer = setTimeout(() => { resolve(undefined) }, ms) })])
  } finally {
    clearTimeout(timer)
  }
}

export type ChannelListener = (message: Buffer) => void

export interface ClusterLink {
  /** This process' id in the cluster (random per start). */
  readonly processId: string
  /** Commands. */
  readonly cmd: Redis
  /** Listens on a channel (one listener per channel); resolves once subscribed. */
  listen: (channel: string, listener: ChannelListener) => Promise<void>
  unlisten: (channel: string) => Promise<void>
  /** Publishes; never throws (a failed publish is logged). */
  publish: (channel: string, message: string | Buffer) => Promise<number>
  readonly ready: boolean
  close: () => Promise<void>
}

export async function openClusterLink (redisUrl: string, log: Logger, connectTimeoutMs = 10_000): Promise<ClusterLink> {
  const o = redisOptions(redisUrl)
  // Loaded here, in cluster mode only: a gateway without REDIS_URL never loads ioredis (issue 12,
  // goal 4: the fixed memory).
  const { Redis } = await import('ioredis')
  const cmd = new Redis({ ...o, connectionName: 'ambulink-cmd' })
  const sub = new Redis({ ...o, connectionName: 'ambulink-sub' })
  for (const c of [cmd, sub]) c.on('error', (err: Error) => { log.warn({ err: err.message }, 'redis (cluster link) error') })
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      Promise.all([cmd.connect(), sub.connect()]),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`Redis did not answer within ${connectTimeoutMs} ms (REDIS_URL)`)), connectTimeoutMs) })
    ])
  } catch (err) {
    cmd.disconnect()
    sub.disconnect()
    throw err
  } finally {
    clearTimeout(timer)
  }
  const listeners = new Map<string, ChannelListener>()
  sub.on('messageBuffer', (channel: Buffer, message: Buffer) => {
    const l = listeners.get(channel.toString())
    if (l === undefined) return
    try { l(message) } catch (err) { log.error({ err, channel: channel.toString() }, 'cluster message handler failed') }
  })
  let closed = false
  return {
    processId: randomBytes(9).toString('base64url'),
    cmd,
    async listen (channel, listener) {
      listeners.set(channel, listener)
      await sub.subscribe(channel)
    },
    async unlisten (channel) {
      listeners.delete(channel)
      // Commands wait for Redis during an outage: a shutdown must not.
      if (!closed && sub.status === 'ready') await within(1000, sub.unsubscribe(channel))
    },
    async publish (channel, message) {
      try { return await cmd.publish(channel, message) } catch (err) {
        log.warn({ err: (err as Error).message, channel }, 'redis publish failed')
        return 0
      }
    },
    get ready () { return cmd.status === 'ready' && sub.status === 'ready' },
    async close () {
      if (closed) return
      closed = true
      listeners.clear()
      // QUIT lets replies in flight arrive; during an outage it would wait for Redis forever.
      await Promise.allSettled([cmd, sub].map(c => c.status === 'ready' ? within(1000, c.quit()) : Promise.resolve()))
      cmd.disconnect()
      sub.disconnect()
    }
  }
}
