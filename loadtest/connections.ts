/**
 * Idle connections: how much gateway memory one connected ambulance costs.
 *
 * Starts a gateway as a child process (no InfluxDB: idle devices write nothing), registers
 * `--connections` units, and opens that many authenticated MQTT connections (CONNECT with the
 * device contract's will, keepalive 30 s, clean session), then holds them for `--hold` seconds
 * with a PINGREQ every 20 s, so they must survive the gateway's keepalive check (1.5 × 30 s).
 * Reports the gateway's RSS and V8 heap before and after, per connection, as JSON on stdout.
 *
 * Limits met on the way, and how the run deals with them:
 * - Ephemeral ports and the gateway's per-address cap (MAX_CONNECTIONS_PER_IP, default 1000):
 *   client sockets bind to 127.0.0.2, 127.0.0.3, … with at most `--per-address` each (Linux
 *   routes all of 127/8 to loopback).
 * - Device tokens are checked by HMAC (microseconds, see loadtest/bench-auth.ts); logins are
 *   still paced to `--concurrency` CONNECTs in flight so none hits aedes' 10 s connect timeout.
 *   `--scrypt-n` only sets the clinician password's scrypt cost.
 * - The password throttle (LOGIN_MAX_FAILURES_PER_IP) counts failed password logins only; a
 *   healthy run has none, and device tokens never pass through it.
 *
 *   npx tsx loadtest/connections.ts [--connections 10000] [--hold 60] [--scrypt-n 16384]
 */
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { PRODUCTION_SCRYPT_N, unitIds } from './bench-credentials.js'
import { startBenchEnv } from './bench-env.js'
import { readMetrics } from '../testkit/stored.js'
import { DISCONNECT, PINGREQ, rawConnect } from '../testkit/mqtt-raw.js'
import type { Socket } from 'node:net'

export interface ConnectionsOptions {
  connections: number
  holdS: number
  perAddress: number
  concurrency: number
  scryptN: number
  keepaliveS: number
  progress: (line: string) => void
}

export interface ConnectionsResult {
  benchmark: 'idle-connections'
  connections: number
  connected: number
  refused: number
  /** Connections closed by the gateway at any time (keepalive misses, …): should be 0. */
  disconnected: number
  /** Open when the memory was measured (the per-connection figures divide by this). */
  open_at_measurement: number
  source_addresses: number
  connect_seconds: number
  logins_per_s: number
  gateway_rss_mb_before: number
  gateway_rss_mb_after: number
  gateway_heap_mb_before: number
  gateway_heap_mb_after: number
  rss_kb_per_connection: number
  heap_kb_per_connection: number
  client_rss_mb: number
  scrypt_n: number
  keepalive_s: number
  hold_s: number
  load_average: number[]
  goal_rss_kb_per_connection_le_40: boolean
}

const sleep = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

async function settle (rss: () => Promise<number>): Promise<number> {
  // RSS moves for a few seconds after a burst (GC, freed buffers): take the last of a few.
  let last = 0
  for (let i = 0; i < 5; i++) {
    await sleep(1000)
    last = await rss()
  }
  return last
}

export async function runConnections (o: ConnectionsOptions): Promise<ConnectionsResult> {
  const units = unitIds('idle', o.connections)
  const env = await startBenchEnv({
    gateways: 1,
    units,
    scryptN: o.scryptN,
    influx: false,
    // Per-address cap kept at its default: the clients spread over addresses instead.
    gatewayEnv: { MAX_CONNECTIONS_PER_IP: String(Math.max(o.perAddress, 1000)), LOG_LEVEL: 'info' },
    log: o.progress
  })
  const gw = env.gateways[0]!
  const sockets: Socket[] = []
  let pinger: NodeJS.Timeout | undefined
  try {
    const heap = async (): Promise<number> => (await readMetrics(env.httpUrls[0]!)).get('ambulink_nodejs_heap_size_used_bytes') ?? 0
    const rssBefore = await settle(() => gw.rss())
    const heapBefore = await heap()
    o.progress(`connections: gateway idle RSS ${(rssBefore / 1e6).toFixed(1)} MB; opening ${o.connections}`)
    const port = gw.ports.mqtt!
    let next = 0
    let connected = 0
    let refused = 0
    let disconnected = 0
    // Keepalive from the first connection on: the gateway drops a client silent for 1.5 ×
    // keepalive [MQTT-3.1.2-24], and logging 10,000 units in takes minutes (scrypt).
    pinger = setInterval(() => { for (const s of sockets) if (!s.destroyed) s.write(PINGREQ) }, Math.min(20, o.keepaliveS * 2 / 3) * 1000)
    const openCount = (): number => sockets.reduce((a, x) => a + (x.destroyed ? 0 : 1), 0)
    const t0 = performance.now()
    let lastLog = t0
    const worker = async (): Promise<void> => {
      while (next < units.length) {
        const i = next++
        const unit = units[i]!
        const localAddress = `127.0.0.${2 + Math.floor(i / o.perAddress)}`
        const c = rawConnect('127.0.0.1', port, localAddress, {
          clientId: unit,
          username: unit,
          password: env.creds.token,
          keepaliveS: o.keepaliveS,
          will: { topic: `units/${unit}/status`, payload: 'offline' }
        }, 30_000)
        try {
          await c.ready
          connected++
          sockets.push(c.socket)
          c.socket.once('close', () => { disconnected++ })
        } catch (err) {
          refused++
          if (refused <= 5) o.progress(`connections: ${unit} from ${localAddress}: ${(err as Error).message}`)
        }
        const now = performance.now()
        if (now - lastLog > 2000) {
          lastLog = now
          o.progress(`connections: ${connected} connected (${openCount()} open), ${refused} refused, ${Math.round(connected * 1000 / (now - t0))} logins/s, gateway RSS ${((await gw.rss()) / 1e6).toFixed(0)} MB`)
        }
      }
    }
    await Promise.all(Array.from({ length: o.concurrency }, worker))
    const connectS = (performance.now() - t0) / 1000
    o.progress(`connections: ${connected} connected in ${connectS.toFixed(1)} s; holding ${o.holdS} s`)
    const holdUntil = Date.now() + o.holdS * 1000
    while (Date.now() < holdUntil) {
      await sleep(Math.min(10_000, holdUntil - Date.now()))
      o.progress(`connections: holding, ${openCount()} open, gateway RSS ${((await gw.rss()) / 1e6).toFixed(0)} MB`)
    }
    const rssAfter = await settle(() => gw.rss())
    const heapAfter = await heap()
    const open = openCount()
    const perConn = (x: number, y: number): number => Math.round((y - x) / Math.max(1, open) / 1024 * 10) / 10
    return {
      benchmark: 'idle-connections',
      connections: o.connections,
      connected,
      refused,
      disconnected,
      open_at_measurement: open,
      source_addresses: Math.ceil(o.connections / o.perAddress),
      connect_seconds: Math.round(connectS * 10) / 10,
      logins_per_s: Math.round(connected / connectS),
      gateway_rss_mb_before: Math.round(rssBefore / 1e5) / 10,
      gateway_rss_mb_after: Math.round(rssAfter / 1e5) / 10,
      gateway_heap_mb_before: Math.round(heapBefore / 1e5) / 10,
      gateway_heap_mb_after: Math.round(heapAfter / 1e5) / 10,
      rss_kb_per_connection: perConn(rssBefore, rssAfter),
      heap_kb_per_connection: perConn(heapBefore, heapAfter),
      client_rss_mb: Math.round(process.memoryUsage().rss / 1e5) / 10,
      scrypt_n: o.scryptN,
      keepalive_s: o.keepaliveS,
      hold_s: o.holdS,
      load_average: loadavg().map(x => Math.round(x * 100) / 100),
      goal_rss_kb_per_connection_le_40: perConn(rssBefore, rssAfter) <= 40
    }
  } finally {
    clearInterval(pinger)
    for (const s of sockets) s.end(DISCONNECT)
    await sleep(500)
    for (const s of sockets) s.destroy()
    await env.stop()
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '10000' },
      hold: { type: 'string', default: '60' },
      'per-address': { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '16' },
      'scrypt-n': { type: 'string', default: String(PRODUCTION_SCRYPT_N) },
      keepalive: { type: 'string', default: '30' }
    }
  })
  const num = (k: keyof typeof values): number => {
    const n = Number(values[k])
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${k} must be a positive integer`)
    return n
  }
  const t0 = Date.now()
  const result = await runConnections({
    connections: num('connections'),
    holdS: num('hold'),
    perAddress: num('per-address'),
    concurrency: num('concurrency'),
    scryptN: num('scrypt-n'),
    keepaliveS: num('keepalive'),
    progress: line => { process.stderr.write(`[connections ${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`) }
  })
  process.stdout.write(JSON.stringify(result, null, 2) + '\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.once('SIGINT', () => process.exit(130))
  main().catch(err => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = 1
  })
}
