/**
 * HTTP load scenarios (autocannon) against a private gateway (child process) with a private
 * InfluxDB, all on 127.0.0.1. One JSON object on stdout: per scenario, requests/s and latency
 * percentiles; progress on stderr. Each scenario is bounded by `--duration` seconds.
 *
 * Scenarios:
 * - telemetry: POST /api/v1/units/{unit}/telemetry, the HTTP fallback of the device contract
 *   (protobuf body, device token as Bearer), a new frame per request over `--units` units
 *   (decoded, spooled and fsync'd before the 200, like a PUBACK);
 * - healthz, readyz (pings InfluxDB), metrics (Prometheus text, loopback);
 * - dashboard: the page itself, and GET /api/v1/session with a clinician's session cookie;
 * - dataspace: GET /dataspace/catalog (public DCAT-AP catalogue).
 *
 *   npx tsx loadtest/http-scenarios.ts [--duration 10] [--connections 10] [--only telemetry,healthz]
 */
import autocannon from 'autocannon'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { StampedFrames } from './bench-frames.js'
import { PRODUCTION_SCRYPT_N, unitIds } from './bench-credentials.js'
import { startBenchEnv, type BenchEnv } from './bench-env.js'

export interface ScenarioResult {
  name: string
  method: string
  path: string
  connections: number
  duration_s: number
  requests: number
  requests_per_s: number
  latency_ms: { avg: number, p50: number, p90: number, p99: number, p99_9: number, max: number }
  non2xx: number
  errors: number
  status_codes: Record<string, number>
}

interface Scenario {
  name: string
  method: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  /** Per-request rewrite (a new telemetry frame each time). */
  setup?: (req: autocannon.Request) => autocannon.Request
}

function run (url: string, s: Scenario, connections: number, durationS: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({
      url,
      title: s.name,
      connections,
      duration: durationS,
      timeout: 10,
      requests: [{ method: s.method, path: s.path, headers: s.headers, ...(s.setup !== undefined ? { setupRequest: s.setup } : {}) }]
    }, (err, result) => { if (err !== null) reject(err); else resolve(result) })
  })
}

async function sessionCookie (httpUrl: string, name: string, password: string): Promise<string> {
  const res = await fetch(`${httpUrl}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, password }) })
  if (!res.ok) throw new Error(`dashboard login failed: HTTP ${res.status} ${await res.text()}`)
  // Cookie pairs only (attributes dropped), as a browser would send them back.
  return res.headers.getSetCookie().map(c => c.split(';')[0]!).join('; ')
}

function scenarios (env: BenchEnv, units: string[], cookie: string): Scenario[] {
  const frames = units.map((u, i) => new StampedFrames(u, i, 2 * 3_600_000))
  let n = 0
  const telemetry: Scenario = {
    name: 'telemetry',
    method: 'POST',
    path: `/api/v1/units/${units[0]!}/telemetry`,
    setup: req => {
      const src = frames[n++ % frames.length]!
      return {
        ...req,
        path: `/api/v1/units/${src.unitId}/telemetry`,
        headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${env.creds.token}` },
        body: src.next().bytes
      }
    }
  }
  return [
    telemetry,
    { name: 'healthz', method: 'GET', path: '/healthz' },
    { name: 'readyz', method: 'GET', path: '/readyz' },
    { name: 'metrics', method: 'GET', path: '/metrics' },
    { name: 'dashboard-page', method: 'GET', path: '/' },
    { name: 'dashboard-session', method: 'GET', path: '/api/v1/session', headers: { cookie } },
    { name: 'dataspace-catalog', method: 'GET', path: '/dataspace/catalog' }
  ]
}

export async function runHttpScenarios (o: { durationS: number, connections: number, units: number, only: string[] | null, progress: (line: string) => void }): Promise<{ benchmark: 'http', load_average: { start: number[], end: number[] }, scenarios: ScenarioResult[] }> {
  const start = loadavg().map(x => Math.round(x * 100) / 100)
  const units = unitIds('http', o.units)
  const env = await startBenchEnv({ gateways: 1, units, scryptN: PRODUCTION_SCRYPT_N, log: o.progress })
  try {
    const httpUrl = env.httpUrls[0]!
    const cookie = await sessionCookie(httpUrl, env.creds.clinician.name, env.creds.clinician.password)
    // One request per unit first: its first login runs scrypt (~30 ms), later ones hit the cache.
    o.progress(`http: warming up ${units.length} units (first login)`)
    const warm = scenarios(env, units, cookie)[0]!
    for (let i = 0; i < units.length; i++) {
      const req = warm.setup!({})
      const res = await fetch(`${httpUrl}${req.path!}`, { method: 'POST', headers: req.headers, body: new Uint8Array(req.body as Buffer) })
      if (res.status !== 200) throw new Error(`warm-up telemetry POST: HTTP ${res.status} ${await res.text()}`)
    }
    const out: ScenarioResult[] = []
    for (const s of scenarios(env, units, cookie)) {
      if (o.only !== null && !o.only.includes(s.name)) continue
      o.progress(`http: ${s.name} (${s.method} ${s.path}), ${o.connections} connections, ${o.durationS} s`)
      const r = await run(httpUrl, s, o.connections, o.durationS)
      const codes: Record<string, number> = {}
      for (const [code, v] of Object.entries(r.statusCodeStats)) codes[code] = Number(v.count)
      const res: ScenarioResult = {
        name: s.name,
        method: s.method,
        path: s.name === 'telemetry' ? '/api/v1/units/{unit}/telemetry' : s.path,
        connections: o.connections,
        duration_s: r.duration,
        requests: r.requests.total,
        requests_per_s: Math.round(r.requests.average),
        latency_ms: { avg: r.latency.average, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, p99_9: r.latency.p99_9, max: r.latency.max },
        non2xx: r.non2xx,
        errors: r.errors,
        status_codes: codes
      }
      o.progress(`http: ${s.name}: ${res.requests_per_s} req/s, p50 ${res.latency_ms.p50} ms, p99 ${res.latency_ms.p99} ms, non-2xx ${res.non2xx}`)
      out.push(res)
    }
    return { benchmark: 'http', load_average: { start, end: loadavg().map(x => Math.round(x * 100) / 100) }, scenarios: out }
  } finally {
    await env.stop()
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '10' },
      units: { type: 'string', default: '32' },
      only: { type: 'string' }
    }
  })
  const t0 = Date.now()
  const result = await runHttpScenarios({
    durationS: Number(values.duration),
    connections: Number(values.connections),
    units: Number(values.units),
    only: values.only === undefined ? null : values.only.split(','),
    progress: line => { process.stderr.write(`[http ${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`) }
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
