// A cluster of real gateway processes (children, SIGKILL-able) sharing a real redis-server and
// one credentials file linked into each DATA_DIR, as docs/scale-out.md deploys them; devices on
// mqtt.js sending protobuf frames on device time; clinicians on HTTP (session cookie + CSRF)
// and on the dashboard's live WebSocket. For the cluster tests (test/cluster-*.test.ts).
import { mkdir, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import WebSocket from 'ws'
import { encodeFrame } from '../decoders/index.js'
import { addDevice, addUser } from '../gateway/credentials.js'
import type { ServerMessage } from '../streams/index.js'
import { startGatewayProcess, type GatewayProcess } from './gateway-process.js'
import { makeTempDir, removeTempDir, waitFor } from './proc.js'
import { startRedis, type RedisServer } from './redis.js'

export interface TestCluster {
  readonly dir: string
  readonly redis: RedisServer
  /** Started gateway processes by name. */
  readonly gateways: Map<string, GatewayProcess>
  /** Starts a gateway process `name` (its DATA_DIR under the cluster's dir). */
  start: (name: string, env?: Record<string, string>) => Promise<GatewayProcess>
  addDevice: (unit: string) => Promise<string>
  addUser: (name: string, role?: 'clinician' | 'admin') => Promise<string>
  /** Stops everything started (gateways, Redis) and removes the dir. Safe to call twice. */
  stop: () => Promise<void>
}

/**
 * How long one gateway process may take to listen, ms. Tests size their hook and test timeouts
 * from it (one start or restart each).
 */
export const CLUSTER_START_TIMEOUT_MS = 120_000

export async function startCluster (opts: { prefix: string, env?: Record<string, string> }): Promise<TestCluster> {
  const dir = await makeTempDir(opts.prefix)
  const redis = await startRedis()
  const shared = join(dir, 'shared')
  const gateways = new Map<string, GatewayProcess>()
  const env = { REDIS_URL: redis.url, MAX_CONNECTIONS_PER_IP: '0', LOGIN_MAX_FAILURES_PER_IP: '0', ...opts.env }
  let stopped = false
  return {
    dir,
    redis,
    gateways,
    start: async (name, extra = {}) => {
      const dataDir = join(dir, name)
      await mkdir(dataDir, { recursive: true, mode: 0o700 })
      await symlink(join(shared, 'credentials.json'), join(dataDir, 'credentials.json'))
      // Generous: the machine running the tests may be loaded (a third gateway once took more
      // than 60 s to listen there, compiling at start while two others and Redis ran).
      const gw = await startGatewayProcess({ dataDir, env: { ...env, ...extra }, startTimeoutMs: CLUSTER_START_TIMEOUT_MS })
      gateways.set(name, gw)
      return gw
    },
    addDevice: async unit => await addDevice(shared, unit),
    addUser: async (name, role = 'clinician') => await addUser(shared, name, role),
    stop: async () => {
      if (stopped) return
      stopped = true
      await Promise.all([...gateways.values()].map(async g => { await g.stop() }))
      await redis.stop()
      await removeTempDir(dir)
    }
  }
}

/** A monitor on mqtt.js: frames on device time, QoS 1 (resolves at the PUBACK). */
export class TestDevice {
  client: MqttClient | null = null
  private seq = 0

  constructor (readonly unit: string, private readonly token: string, readonly encounter = `enc-${unit}`) {}

  async connect (mqttPort: number): Promise<void> {
    await this.client?.endAsync(true)
    this.client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { username: this.unit, password: this.token, clientId: this.unit, reconnectPeriod: 0 })
  }

  /**
   * One frame at device time `t` with these numerics (VitalSign number → value) and, with
   * `ecgSamples`, that many ECG samples on leads I, II, III at 500 Hz.
   */
  async send (t: number, numerics: Record<number, number>, ecgSamples = 0): Promise<void> {
    const seq = ++this.seq
    await this.client!.publishAsync(`units/${this.unit}/telemetry`, Buffer.from(encodeFrame({
      unitId: this.unit,
      bootId: 'boot-1',
      seq,
      capturedAtMs: t,
      encounterId: this.encounter,
      numerics: Object.entries(numerics).map(([sign, value]) => ({ sign: Number(sign), value, offsetMs: 0 })),
      waveforms: ecgSamples === 0
        ? []
        : [1, 2, 3].map(lead => ({ lead, sampleRateHz: 500, microvoltsPerLsb: 1, offsetMs: 0, samples: Array.from({ length: ecgSamples }, (_, i) => ((i * 7 + lead * 13 + seq) % 400) - 200) }))
    })), { qos: 1 })
  }

  async close (): Promise<void> { await this.client?.endAsync(true); this.client = null }
}

export interface Login { cookie: string, csrf: string }

/** Logs a clinician in over HTTP (the dashboard's path). */
export async function login (httpPort: number, name: string, password: string): Promise<Login> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, password }) })
  if (res.status !== 200) throw new Error(`login of ${name} on :${httpPort}: HTTP ${res.status}`)
  const body = await res.json() as { csrfToken: string }
  return { cookie: (res.headers.get('set-cookie') ?? '').split(';')[0]!, csrf: body.csrfToken }
}

/** The dashboard's live socket: JSON messages kept in order, binary frames counted. */
export interface LiveFeed {
  ws: WebSocket
  messages: ServerMessage[]
  binary: Buffer[]
  closed: Promise<number>
  send: (m: unknown) => void
  /** Waits for a message (from index `from`) matching `pred`. */
  until: <T extends ServerMessage>(what: string, pred: (m: ServerMessage) => m is T, from?: number, timeoutMs?: number) => Promise<T>
}

export function liveFeed (httpPort: number, cookie: string, hello: unknown = { type: 'hello', watch: [], resume: {} }): Promise<LiveFeed> {
  const base = `http://127.0.0.1:${httpPort}`
  return new Promise((resolve, reject) => {
    const messages: ServerMessage[] = []
    const binary: Buffer[] = []
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/v1/live`, { headers: { origin: base, cookie } })
    const closed = new Promise<number>(resolve => { ws.once('close', code => { resolve(code) }) })
    ws.on('message', (data, isBinary) => {
      if (isBinary) binary.push(data as Buffer)
      else messages.push(JSON.parse(data.toString()) as ServerMessage)
    })
    const f: LiveFeed = {
      ws,
      messages,
      binary,
      closed,
      send: m => { ws.send(JSON.stringify(m)) },
      until: async (what, pred, from = 0, timeoutMs = 15_000) => await waitFor(async () => messages.slice(from).find(pred), { timeoutMs, intervalMs: 20, what })
    }
    ws.once('open', () => { ws.send(JSON.stringify(hello)); resolve(f) })
    ws.once('error', reject)
  })
}
