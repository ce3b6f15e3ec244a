/**
 * The servers a benchmark runs against, all private to the run and on 127.0.0.1: a real
 * InfluxDB 1.x, one or more gateways as child processes (`node bin/ambulink.js serve`, so RSS
 * and CPU profiles are the gateway's alone), and with several gateways a real redis-server
 * they share (REDIS_URL). stop() removes everything unless `keep`.
 *
 * Credentials: one credentials.json in a shared folder, linked into each gateway's DATA_DIR
 * (the layout the README (Scale-out) recommends for a cluster).
 */
import { cp, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeBenchCredentials, type BenchCredentials } from './bench-credentials.js'
import { startGatewayProcess, type GatewayProcess } from '../testkit/gateway-process.js'
import { createDatabase, startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { makeTempDir, removeTempDir } from '../testkit/proc.js'
import { startRedis, type RedisServer } from '../testkit/redis.js'
import { ownNice, reniceAll } from './proc-sched.js'

export const BENCH_DB = 'ambulink'

export interface BenchEnvOptions {
  gateways: number
  /** Every unit id any phase will use (registered up front). */
  units: readonly string[]
  scryptN: number
  /** Write a V8 CPU profile of each gateway here (node --cpu-prof) when it stops. */
  cpuProfDir?: string
  /** More Node options for the gateways (e.g. `--trace-gc`: the lines go to its log file). */
  nodeArgs?: readonly string[]
  /** Extra gateway environment (limits for the connection test, …). */
  gatewayEnv?: Record<string, string>
  /** Start InfluxDB (default true). */
  influx?: boolean
  /**
   * Point the gateways at InfluxDB from the start (default true). false: they start embedded
   * (the spool is the store of record) and connectInflux() restarts them with INFLUX_URL, when
   * they drain what they spooled: the saturation runs measure the broker path alone, then the
   * sink alone.
   */
  influxAtStart?: boolean
  keep?: boolean
  /** InfluxDB's threads run this many nice levels below this process (capped at 19), from each start. */
  influxNice?: number
  log: (msg: string) => void
}

export interface BenchEnv {
  dir: string
  influx: InfluxServer | null
  redis: RedisServer | null
  gateways: GatewayProcess[]
  mqttUrls: string[]
  httpUrls: string[]
  creds: BenchCredentials
  /** Restarts gateway `i` (same DATA_DIR and ports) pointed at InfluxDB; resolves once it listens. */
  connectInflux: (i: number) => Promise<void>
  /** The gateway environment that points at this run's InfluxDB (v1 API). */
  influxEnv: () => Record<string, string>
  /**
   * Restarts gateway `i` with `storeEnv` (INFLUX_URL, INFLUX_API, …). While it is stopped, its
   * spool is first copied to `saveSpoolTo`, then replaced by a copy of `spoolFrom` (the same
   * backlog drained into a second store).
   */
  connectStore: (i: number, storeEnv: Record<string, string>, spool?: { saveSpoolTo?: string, spoolFrom?: string }) => Promise<void>
  /**
   * Stops gateway `i`, deletes its spool (a benchmark backlog nobody will count) and starts it
   * again pointed at InfluxDB.
   */
  discardSpool: (i: number) => Promise<void>
  /**
   * Replaces InfluxDB with a fresh, empty one (same configuration); the gateways point at it
   * from their next (re)start. After millions of points InfluxDB compacts for minutes, which
   * would weigh on whatever is measured next.
   */
  freshInflux: () => Promise<void>
  /** Applies `influxNice` to the current InfluxDB process (call after restarting it); the nice value applied, or null. */
  lowerInflux: () => number | null
  stop: () => Promise<void>
}

export async function startBenchEnv (o: BenchEnvOptions): Promise<BenchEnv> {
  // Registered for removal at exit (also on Ctrl-C: see runBenchCli) unless it is to be kept.
  const dir = o.keep === true ? await mkdtemp(join(tmpdir(), 'ambulink-bench-')) : await makeTempDir('ambulink-bench-')
  let redis: RedisServer | null = null
  const gateways: GatewayProcess[] = []
  const env: { influx: InfluxServer | null } = { influx: null }
  const lowerInflux = (): number | null => {
    if (env.influx === null || (o.influxNice ?? 0) === 0) return null
    const nice = Math.min(19, ownNice() + o.influxNice!)
    const r = reniceAll(env.influx.pid, nice)
    o.log(`bench: InfluxDB (pid ${env.influx.pid}) at nice ${nice}, ${r.threads} threads${r.error !== null ? ` (${r.error})` : ''}`)
    return nice
  }
  const stop = async (): Promise<void> => {
    // Gateways first (SIGTERM: they drain and, with --cpu-prof, write their profiles).
    await Promise.all(gateways.map(g => g.stop()))
    await redis?.stop()
    await env.influx?.stop()
    if (o.keep !== true) await removeTempDir(dir)
    else o.log(`bench: kept ${dir}`)
  }
  try {
    if (o.influx !== false) {
      o.log('bench: starting InfluxDB')
      env.influx = await startInfluxDB({ logLevel: 'warn' })
      lowerInflux()
      await createDatabase(env.influx.url, BENCH_DB)
    }
    if (o.gateways > 1) {
      redis = await startRedis()
      o.log(`bench: redis-server on ${redis.url}`)
    }
    const influxEnv = (): Record<string, string> => env.influx !== null ? { INFLUX_URL: env.influx.url, INFLUX_API: 'v1', INFLUX_DB: BENCH_DB } : {}
    o.log(`bench: writing credentials for ${o.units.length} units (scrypt N=${o.scryptN})`)
    const credsDir = join(dir, 'shared-credentials')
    const creds = await writeBenchCredentials(credsDir, o.units, o.scryptN)
    for (let i = 0; i < o.gateways; i++) {
      const dataDir = join(dir, `gateway-${i + 1}`)
      await mkdir(dataDir, { recursive: true, mode: 0o700 })
      await symlink(join(credsDir, 'credentials.json'), join(dataDir, 'credentials.json'))
      const env: Record<string, string> = {
        // info: the launcher reads the bound ports from the 'listening' line.
        LOG_LEVEL: 'info',
        ...(o.influxAtStart !== false ? influxEnv() : {}),
        ...(redis !== null ? { REDIS_URL: redis.url } : {}),
        ...o.gatewayEnv
      }
      const nodeArgs = [...(o.cpuProfDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : []), ...(o.nodeArgs ?? [])]
      // 60 s: a restart drains a large spool while it starts, on a machine the whole bench loads.
      const gw = await startGatewayProcess({ dataDir, env, nodeArgs, startTimeoutMs: 60_000 })
      gateways.push(gw)
      o.log(`bench: gateway ${i + 1} pid ${gw.pid} mqtt :${gw.ports.mqtt} http :${gw.ports.http}`)
    }
    return {
      dir,
      get influx () { return env.influx },
      redis,
      gateways,
      mqttUrls: gateways.map(g => `mqtt://127.0.0.1:${g.ports.mqtt}`),
      httpUrls: gateways.map(g => `http://127.0.0.1:${g.ports.http}`),
      creds,
      connectInflux: async i => {
        await gateways[i]!.restart(influxEnv())
        o.log(`bench: gateway ${i + 1} restarted with INFLUX_URL (pid ${gateways[i]!.pid})`)
      },
      influxEnv,
      connectStore: async (i, storeEnv, spool = {}) => {
        const g = gateways[i]!
        await g.stop()
        const at = join(g.dataDir, 'spool')
        if (spool.saveSpoolTo !== undefined) await cp(at, spool.saveSpoolTo, { recursive: true })
        if (spool.spoolFrom !== undefined) {
          await rm(at, { recursive: true, force: true })
          await cp(spool.spoolFrom, at, { recursive: true })
        }
        await g.restart(storeEnv)
        o.log(`bench: gateway ${i + 1} restarted with INFLUX_URL=${storeEnv.INFLUX_URL ?? '(none)'} (pid ${g.pid})`)
      },
      freshInflux: async () => {
        await env.influx?.stop()
        env.influx = await startInfluxDB({ logLevel: 'warn' })
        lowerInflux()
        await createDatabase(env.influx.url, BENCH_DB)
        o.log(`bench: fresh InfluxDB on ${env.influx.url}`)
      },
      lowerInflux,
      discardSpool: async i => {
        const g = gateways[i]!
        await g.stop()
        await rm(join(g.dataDir, 'spool'), { recursive: true, force: true })
        await g.restart(influxEnv())
        o.log(`bench: gateway ${i + 1} restarted with an empty spool (pid ${g.pid})`)
      },
      stop
    }
  } catch (err) {
    await stop()
    throw err
  }
}
