/**
 * The InfluxDB HTTP client (issue 11: one client for reads and writes): the gateway's own
 * `InfluxClient` (streams/storage/influx-client.ts, node:http with a keep-alive agent) against two
 * references, the runtime's fetch and @influxdata/influxdb-client's transport (what the sink used
 * before; a dev dependency kept for this comparison only), posting the same gzipped batches of
 * line protocol to one private InfluxDB, in rotating rounds (A B C, B C A, …) so a noisy
 * neighbour weighs on all alike. Each round posts
 * every batch, `concurrency` in flight, into a database of its own (no overwrites). Reports the
 * medians over the rounds of this process' CPU per point (the gateway's share of a write) and of
 * the points/s, as JSON on stdout.
 *
 *   node --import tsx loadtest/bench-transport.ts [--points 200000] [--rounds 6] [--concurrency 3]
 */
import { parseArgs } from 'node:util'
import { InfluxDB } from '@influxdata/influxdb-client'
import { InfluxClient, influxBase } from '../streams/storage/influx-client.js'
import { createDatabase, startInfluxDB } from '../testkit/influxdb.js'
import { prepareBatches, type Batch } from './references.js'

type Post = (path: string, body: Buffer) => Promise<void>

async function round (post: Post, db: string, batches: readonly Batch[], concurrency: number): Promise<{ cpuUsPerPoint: number, pointsPerS: number }> {
  const path = `/write?db=${db}&precision=u`
  let next = 0
  let points = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const b = batches[next++]!
      await post(path, b.body)
      points += b.points
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const s = (performance.now() - t0) / 1000
  const c = process.cpuUsage(cpu0)
  return { cpuUsPerPoint: (c.user + c.system) / points, pointsPerS: points / s }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]! }

export async function runTransportBench (o: { points: number, rounds: number, concurrency: number }): Promise<Record<string, unknown>> {
  const influx = await startInfluxDB({ logLevel: 'warn' })
  try {
    const batches = await prepareBatches({ units: 32, prefix: 'tr', points: o.points, batchLines: 5000 })
    const headers = { 'content-type': 'text/plain; charset=utf-8', 'content-encoding': 'gzip' }
    // What a fetch-based sink would do per batch: POST, read the answer, a timeout signal.
    const fetchPost: Post = async (path, body) => {
      const res = await fetch(`${influxBase(influx.url)}${path}`, { method: 'POST', body: new Uint8Array(body.buffer as ArrayBuffer, body.byteOffset, body.byteLength), headers, signal: AbortSignal.timeout(30_000) })
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`)
      await res.arrayBuffer()
    }
    const transport = new InfluxDB({ url: influx.url, timeout: 30_000 }).transport
    const libPost: Post = async (path, body) => {
      await new Promise<void>((resolve, reject) => {
        transport.send(path, body as unknown as string, { method: 'POST', headers, signal: AbortSignal.timeout(30_000) }, { error: reject, complete: () => { resolve() } })
      })
    }
    const client = new InfluxClient({ url: influx.url, timeoutMs: 30_000 })
    const ownPost: Post = async (path, body) => { await client.request({ path, body, headers }) }
    type Name = 'ambulink' | 'fetch' | 'influxdb_client'
    const contestants: Array<[Name, Post]> = [['ambulink', ownPost], ['fetch', fetchPost], ['influxdb_client', libPost]]
    const results: Record<Name, Array<{ cpuUsPerPoint: number, pointsPerS: number }>> = { ambulink: [], fetch: [], influxdb_client: [] }
    for (let r = 0; r < o.rounds; r++) {
      for (let k = 0; k < contestants.length; k++) {
        const [name, post] = contestants[(r + k) % contestants.length]!
        const db = `${name}_${r}`
        await createDatabase(influx.url, db)
        results[name].push(await round(post, db, batches, o.concurrency))
      }
    }
    client.close()
    const summary = (xs: Array<{ cpuUsPerPoint: number, pointsPerS: number }>): Record<string, number> => ({ cpu_us_per_point_median: Math.round(median(xs.map(x => x.cpuUsPerPoint)) * 1000) / 1000, points_per_s_median: Math.round(median(xs.map(x => x.pointsPerS))) })
    const a = summary(results.ambulink)
    const f = summary(results.fetch)
    const l = summary(results.influxdb_client)
    const ratio = (x: number, y: number): number => Math.round(x / y * 1000) / 1000
    return {
      benchmark: 'influx-client',
      points_per_round: batches.reduce((a, b) => a + b.points, 0),
      batches: batches.length,
      rounds_each: o.rounds,
      concurrency: o.concurrency,
      ambulink: a,
      fetch: f,
      influxdb_client: l,
      cpu_ratio_ambulink_vs_client: ratio(a.cpu_us_per_point_median!, l.cpu_us_per_point_median!),
      cpu_ratio_ambulink_vs_fetch: ratio(a.cpu_us_per_point_median!, f.cpu_us_per_point_median!),
      rate_ratio_ambulink_vs_client: ratio(a.points_per_s_median!, l.points_per_s_median!),
      rate_ratio_ambulink_vs_fetch: ratio(a.points_per_s_median!, f.points_per_s_median!),
      rounds: results
    }
  } finally {
    await influx.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { points: { type: 'string' }, rounds: { type: 'string' }, concurrency: { type: 'string' } } })
  const r = await runTransportBench({ points: Number(values.points ?? 200_000), rounds: Number(values.rounds ?? 6), concurrency: Number(values.concurrency ?? 3) })
  process.stdout.write(JSON.stringify(r, null, 2) + '\n')
}
