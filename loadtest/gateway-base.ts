/**
 * The gateway's fixed memory and start-up time, with no units (issue 12, goal 4: RSS ÷ units
 * spreads this base over the units). Starts `ambulink serve` as a child process, embedded
 * storage and with an InfluxDB sink (a small fake InfluxDB that answers 204: the sink's worker
 * thread is up, nothing is written), in alternating order over the rounds; with `--base <dir>`
 * also another checkout (before/after in one run). Per start: ms from spawn to the
 * 'listening' line and to the sink worker's 'started' line (pino's `time`), then after
 * `--settle-s`: RSS (anonymous and file-backed, /proc/<pid>/status), threads, and the main
 * isolate's V8 figures from /metrics (heap used and total per space, external). JSON on stdout;
 * medians per variant.
 *
 *   node --import tsx loadtest/gateway-base.ts [--rounds 3] [--settle-s 20] [--base <dir>]
 *   extra gateway node flags: BASE_NODE_ARGS='--max-semi-space-size=4'
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { metricValue, scrape, sleep } from '../testkit/fault-harness.js'
import { startFakeInflux } from '../testkit/fake-influx.js'
import { startGatewayProcess } from '../testkit/gateway-process.js'

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, 'settle-s': { type: 'string', default: '20' }, base: { type: 'string' } } })
const rounds = Number(args.rounds)
const settleS = Number(args['settle-s'])
const log = (msg: string): void => { console.error(`gateway-base: ${msg}`) }
const extra = (process.env.BASE_NODE_ARGS ?? '').split(' ').filter(a => a !== '')

interface Run {
  variant: string
  listenMs: number
  sinkWorkerMs: number | null
  sinkWorkerEntry: string | null
  /** The worker's own start (bundling included), from its log line (null: not logged there). */
  sinkWorkerStartMs: number | null
  rssMb: number
  rssAnonMb: number
  rssFileMb: number
  threads: number
  heapUsedMb: number
  heapTotalMb: number
  externalMb: number
  spacesUsedMb: Record<string, number>
}

const mb = (b: number): number => Math.round(b / 1e4) / 100

async function status (pid: number): Promise<{ rss: number, anon: number, file: number, threads: number }> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) * 1024
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem'), threads: (await readdir(`/proc/${pid}/task`)).length }
}

const fake = await startFakeInflux(() => undefined)
const work = await mkdtemp(join(tmpdir(), 'ambulink-base-'))
const variants: Array<{ name: string, root: string | undefined, sink: boolean }> = []
for (const [tag, root] of [['this', undefined], ...(args.base !== undefined ? [['base', args.base]] : [])] as Array<[string, string | undefined]>) {
  variants.push({ name: `${tag}/embedded`, root, sink: false }, { name: `${tag}/sink`, root, sink: true })
}
const runs: Run[] = []
let failure: string | null = null
try {
  for (let r = 0; r < rounds; r++) {
    // Alternating order: a drift of the machine's load falls on every variant alike.
    for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
      const dataDir = join(work, `${r}-${v.name.replace('/', '-')}`)
      const t0 = Date.now()
      const gw = await startGatewayProcess({
        dataDir,
        env: v.sink ? { INFLUX_URL: fake.url, INFLUX_API: 'v1', INFLUX_DB: 'base' } : {},
        startTimeoutMs: 180_000,
        nodeArgs: extra,
        ...(v.root !== undefined ? { root: v.root } : {})
      })
      try {
        const listenMs = Date.now() - t0
        let sinkWorkerMs: number | null = null
        let sinkWorkerEntry: string | null = null
        let sinkWorkerStartMs: number | null = null
        if (v.sink) {
          const line = await waitForLine(gw.logs, /sink worker thread (started|priority)/, 180_000)
          const l = JSON.parse(line) as { time: number, entry?: string, startMs?: number }
          sinkWorkerMs = l.time - t0
          sinkWorkerEntry = l.entry ?? 'tsx'
          sinkWorkerStartMs = l.startMs ?? null
        }
        await sleep(settleS * 1000)
        const st = await status(gw.pid)
        const m = await scrape(`http://127.0.0.1:${gw.ports.http}`)
        const spacesUsedMb: Record<string, number> = {}
        for (const line of m.split('\n')) {
          const hit = /^ambulink_nodejs_heap_space_size_used_bytes\{space="([a-z_]+)"\} ([0-9.e+]+)/.exec(line)
          if (hit !== null) spacesUsedMb[hit[1]!] = mb(Number(hit[2]))
        }
        const run: Run = {
          variant: v.name,
          listenMs,
          sinkWorkerMs,
          sinkWorkerEntry,
          sinkWorkerStartMs,
          rssMb: mb(st.rss),
          rssAnonMb: mb(st.anon),
          rssFileMb: mb(st.file),
          threads: st.threads,
          heapUsedMb: mb(metricValue(m, 'ambulink_nodejs_heap_size_used_bytes') ?? NaN),
          heapTotalMb: mb(metricValue(m, 'ambulink_nodejs_heap_size_total_bytes') ?? NaN),
          externalMb: mb(metricValue(m, 'ambulink_nodejs_external_memory_bytes') ?? NaN),
          spacesUsedMb
        }
        runs.push(run)
        log(`round ${r} ${v.name}: listening after ${listenMs} ms, sink worker ${String(sinkWorkerMs)} ms (${String(sinkWorkerEntry)}), rss ${run.rssMb} MB (anon ${run.rssAnonMb}), ${run.threads} threads, heap used ${run.heapUsedMb} MB`)
      } finally {
        await gw.stop()
      }
    }
  }
} catch (err) {
  failure = (err as Error).message
}
await fake.close()
await rm(work, { recursive: true, force: true })

async function waitForLine (logs: () => Promise<string>, re: RegExp, timeoutMs: number): Promise<string> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const hit = (await logs()).split('\n').find(l => re.test(l))
    if (hit !== undefined) return hit
    if (Date.now() > end) throw new Error(`no log line ${String(re)} within ${timeoutMs} ms`)
    await sleep(100)
  }
}

function median (xs: number[]): number | null {
  const s = xs.filter(x => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return null
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

const summary = Object.fromEntries(variants.map(v => {
  const rs = runs.filter(r => r.variant === v.name)
  const med = (f: (r: Run) => number | null): number | null => median(rs.map(f).filter((x): x is number => x !== null))
  return [v.name, {
    starts: rs.length,
    listen_ms: med(r => r.listenMs),
    sink_worker_ms: med(r => r.sinkWorkerMs),
    sink_worker_entry: rs[0]?.sinkWorkerEntry ?? null,
    sink_worker_own_start_ms: med(r => r.sinkWorkerStartMs),
    rss_mb: med(r => r.rssMb),
    rss_anon_mb: med(r => r.rssAnonMb),
    rss_file_mb: med(r => r.rssFileMb),
    threads: med(r => r.threads),
    heap_used_mb: med(r => r.heapUsedMb),
    heap_total_mb: med(r => r.heapTotalMb),
    external_mb: med(r => r.externalMb)
  }]
}))
console.log(JSON.stringify({ benchmark: 'gateway-base', rounds, settle_s: settleS, gateway_node_args: extra.join(' '), failure, summary, runs }, null, 2))
process.exitCode = failure === null ? 0 : 1
