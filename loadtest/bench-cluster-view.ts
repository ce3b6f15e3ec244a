/**
 * The real-time phase of `bench --gateways N` (N ≥ 2) runs through HAProxy with the cluster-wide
 * live view on: HAProxy with docs/scale-out.md's configuration in front of the gateways (the
 * fleet connects through its MQTT listener, leastconn), and clinicians' live sockets through its
 * HTTP listener (round-robin) that watch a few units each, so fleet updates, alerts and on-demand
 * ECG cross Redis. Redis' own counters (INFO: bytes in and out, commands) are read before and
 * after: the Redis traffic per unit per second.
 */
import { Redis } from 'ioredis'
import WebSocket from 'ws'
import { haproxyConfigFromDocs, startHaproxy, type HaproxyServer } from '../testkit/haproxy.js'
import type { BenchEnv } from './bench-env.js'

export interface RedisCounters { inBytes: number, outBytes: number, commands: number, atMs: number }

export interface ClusterViewResult {
  through: 'haproxy'
  live_sockets: number
  watched_units: number
  /** Live-view messages the sockets received (JSON) and ECG bytes (binary). */
  live_messages: number
  live_ecg_bytes: number
  redis: {
    seconds: number
    units: number
    bytes_in_per_s: number
    bytes_out_per_s: number
    commands_per_s: number
    per_unit: { bytes_in_per_s: number, bytes_out_per_s: number, commands_per_s: number }
  }
}

async function redisCounters (r: Redis): Promise<RedisCounters> {
  const info = await r.info('stats')
  const num = (k: string): number => Number(new RegExp(`^${k}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN)
  return { inBytes: num('total_net_input_bytes'), outBytes: num('total_net_output_bytes'), commands: num('total_commands_processed'), atMs: Date.now() }
}

export interface ClusterView {
  /** The balancer's MQTT URL (the fleet connects there). */
  mqttUrl: string
  /** Starts the live sockets (once the fleet streams) and the Redis counters. */
  watch: (units: readonly string[]) => Promise<void>
  /** Reads the counters and closes the sockets; the balancer stays until `stop`. */
  result: (units: number) => Promise<ClusterViewResult>
  stop: () => Promise<void>
}

export async function startClusterView (env: BenchEnv, o: { sockets: number, watchPerSocket: number, progress: (line: string) => void }): Promise<ClusterView> {
  if (env.redis === null) throw new Error('the cluster view needs the gateways\' Redis')
  const lb: HaproxyServer = await startHaproxy({
    config: await haproxyConfigFromDocs(),
    listeners: ['AMBULINK_LB_MQTT', 'AMBULINK_LB_HTTP'],
    env: Object.fromEntries(env.gateways.slice(0, 2).flatMap((g, i) => [
      [`AMBULINK_GW${i + 1}`, '127.0.0.1'], [`AMBULINK_GW${i + 1}_MQTT`, String(g.ports.mqtt)], [`AMBULINK_GW${i + 1}_HTTP`, String(g.ports.http)]
    ]))
  })
  const httpUrl = `http://127.0.0.1:${lb.ports.AMBULINK_LB_HTTP}`
  o.progress(`cluster view: haproxy mqtt :${lb.ports.AMBULINK_LB_MQTT} http :${lb.ports.AMBULINK_LB_HTTP}`)
  const redis = new Redis(env.redis.url)
  const sockets: WebSocket[] = []
  let watched = 0
  let messages = 0
  let ecgBytes = 0
  let before: RedisCounters | null = null

  const login = async (): Promise<string> => {
    const res = await fetch(`${httpUrl}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(env.creds.clinician) })
    if (res.status !== 200) throw new Error(`bench clinician login through haproxy: ${res.status}`)
    return res.headers.getSetCookie().map(c => c.split(';')[0]!).join('; ')
  }

  return {
    mqttUrl: `mqtt://127.0.0.1:${lb.ports.AMBULINK_LB_MQTT}`,
    async watch (units) {
      const cookie = await login()
      for (let i = 0; i < o.sockets; i++) {
        const watch = units.slice(i * o.watchPerSocket, (i + 1) * o.watchPerSocket)
        watched += watch.length
        const ws = new WebSocket(`${httpUrl.replace('http', 'ws')}/api/v1/live`, { headers: { origin: httpUrl, cookie } })
        ws.on('message', (data: Buffer, binary) => { if (binary) ecgBytes += data.length; else messages++ })
        ws.on('error', err => { o.progress(`cluster view: live socket error ${err.message}`) })
        await new Promise<void>((resolve, reject) => { ws.once('open', () => { resolve() }); ws.once('error', reject) })
        ws.send(JSON.stringify({ type: 'hello', watch, resume: {} }))
        sockets.push(ws)
      }
      before = await redisCounters(redis)
    },
    async result (units) {
      const after = await redisCounters(redis)
      for (const ws of sockets) ws.close()
      const b = before ?? after
      const s = Math.max(0.001, (after.atMs - b.atMs) / 1000)
      const per = (x: number): number => Math.round(x / s)
      const r = { bytes_in_per_s: per(after.inBytes - b.inBytes), bytes_out_per_s: per(after.outBytes - b.outBytes), commands_per_s: per(after.commands - b.commands) }
      const u = Math.max(1, units)
      return {
        through: 'haproxy',
        live_sockets: sockets.length,
        watched_units: watched,
        live_messages: messages,
        live_ecg_bytes: ecgBytes,
        redis: {
          seconds: Math.round(s * 10) / 10,
          units,
          ...r,
          per_unit: { bytes_in_per_s: Math.round(r.bytes_in_per_s / u), bytes_out_per_s: Math.round(r.bytes_out_per_s / u), commands_per_s: Math.round(r.commands_per_s / u * 100) / 100 }
        }
      }
    },
    async stop () {
      for (const ws of sockets) ws.terminate()
      redis.disconnect()
      await lb.stop()
    }
  }
}
