// The real gateway as a child process (`node bin/ambulink.js serve`), for tests that must kill
// it with SIGKILL or measure its RSS. Ports are read back from the pino line
// 'ambulink gateway listening'; restart() starts it again on the same DATA_DIR and ports, as an
// operator's supervisor would. Output goes to a log file (kept across restarts) so tests can
// scan it for secrets.
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { spawnManaged, tailFile, waitFor, type ExitInfo, type ManagedProcess } from './proc.js'
import { restartOnSamePorts, type SamePortOptions } from './same-port.js'

const ROOT = resolve(import.meta.dirname, '..')
const BIN = join(ROOT, 'bin', 'ambulink.js')

export interface GatewayPorts { mqtt: number | null, mqtts: number | null, http: number | null }

export interface GatewayProcess {
  readonly dataDir: string
  readonly logFile: string
  readonly pid: number
  readonly ports: GatewayPorts
  readonly exited: Promise<ExitInfo>
  /** Everything the gateway printed so far, all runs. */
  logs: () => Promise<string>
  signal: (sig: NodeJS.Signals) => void
  /** SIGKILL and wait for the exit. */
  kill: () => Promise<ExitInfo>
  /**
   * Starts again on the same DATA_DIR and ports (after kill() or a crash point; stops it first
   * if it still runs), once the old process has exited and the ports can be bound. Resolves true
   * once listening; with `mayExitBeforeListening`, false if the process died during start-up
   * (a crash point reached early) instead of throwing.
   */
  restart: (extraEnv?: Record<string, string>, opts?: { mayExitBeforeListening?: boolean, onPortBusy?: SamePortOptions['onPortBusy'] }) => Promise<boolean>
  /** VmRSS of the current process, bytes. */
  rss: () => Promise<number>
  /** The /metrics text (loopback: no token needed). */
  metrics: () => Promise<string>
  stop: () => Promise<void>
}

export interface GatewayProcessOptions {
  dataDir: string
  /**
   * Extra environment (INFLUX_URL, MAX_SPOOL_BYTES, …); ports default to 0 (any free port).
   * LOG_LEVEL must let 'info' through: the ports are read from the info line.
   */
  env?: Record<string, string>
  startTimeoutMs?: number
  /** Node options before the script, e.g. ['--cpu-prof', '--cpu-prof-dir=…'] (benchmarks). */
  nodeArgs?: string[]
  /**
   * Another checkout of Ambulink to run instead of this one (benchmarks comparing two builds in
   * one run, e.g. loadtest/alert-priority.ts). Default: this repository.
   */
  root?: string
}

interface ListeningLine { msg?: string, ports?: GatewayPorts }

function baseEnv (): NodeJS.ProcessEnv {
  // The test runner's own variables (VITEST_*, NODE_OPTIONS with its loaders) must not leak
  // into the gateway: it runs exactly as `npx ambulink serve` would.
  const env: NodeJS.ProcessEnv = {}
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k] !== undefined) env[k] = process.env[k]
  return env
}

export async function startGatewayProcess (opts: GatewayProcessOptions): Promise<GatewayProcess> {
  const logFile = join(opts.dataDir, '..', `${opts.dataDir.split('/').pop() ?? 'gw'}.gateway.log`)
  // Generous: tsx compiles the gateway at start, which on a loaded 2-core machine took > 20 s.
  const timeoutMs = opts.startTimeoutMs ?? 60_000
  let ports: GatewayPorts = { mqtt: null, mqtts: null, http: null }
  let proc: ManagedProcess
  let runs = 0

  /** Resolves true once listening; false if the process died first and `mayExit` allows it. */
  const launch = async (portEnv: Record<string, string>, extraEnv: Record<string, string>, mayExit = false): Promise<boolean> => {
    runs++
    const before = (await readFile(logFile, 'utf8').catch(() => '')).length
    const root = opts.root ?? ROOT
    proc = spawnManaged(process.execPath, [...(opts.nodeArgs ?? []), opts.root === undefined ? BIN : join(root, 'bin', 'ambulink.js'), 'serve'], {
      cwd: root,
      logFile,
      env: {
        ...baseEnv(),
        HOST: '127.0.0.1',
        MQTTS_PORT: 'off',
        LOG_LEVEL: 'info',
        DATA_DIR: opts.dataDir,
        CREDENTIALS_POLL_MS: '200',
        ...opts.env,
        ...portEnv,
        ...extraEnv
      }
    })
    const p = proc
    const line = await waitFor(async () => {
      const text = (await readFile(logFile, 'utf8')).slice(before)
      for (const l of text.split('\n')) {
        if (!l.includes('ambulink gateway listening')) continue
        return JSON.parse(l) as ListeningLine
      }
      return undefined
    }, { timeoutMs, intervalMs: 50, what: `gateway run ${runs} to listen`, proc: p }).catch(async (err: Error) => {
      // A port of the previous run taken meanwhile is not a crash point: restart() retries it.
      const addressInUse = p.exitInfo !== undefined && /EADDRINUSE|address already in use/i.test((await readFile(logFile, 'utf8').catch(() => '')).slice(before))
      // MQTT listens before the 'listening' line (HTTP comes last): devices that know the port
      // reconnect at once, so a crash point can fire during start-up.
      if (mayExit && p.exitInfo !== undefined && !addressInUse) return null
      await p.stop(1000)
      throw Object.assign(new Error(`${err.message}\n--- gateway log ---\n${await tailFile(logFile, 30)}`), { addressInUse })
    })
    if (line === null) return false
    ports = line.ports ?? ports
    return true
  }

  await launch({
    MQTT_PORT: opts.env?.MQTT_PORT ?? '0',
    HTTP_PORT: opts.env?.HTTP_PORT ?? '0'
  }, {})

  const samePorts = (): Record<string, string> => {
    const env: Record<string, string> = {}
    if (ports.mqtt !== null) env.MQTT_PORT = String(ports.mqtt)
    if (ports.http !== null) env.HTTP_PORT = String(ports.http)
    if (ports.mqtts !== null) env.MQTTS_PORT = String(ports.mqtts)
    return env
  }

  const gp: GatewayProcess = {
    dataDir: opts.dataDir,
    logFile,
    get pid () { return proc.pid },
    get ports () { return ports },
    get exited () { return proc.exited },
    logs: async () => await readFile(logFile, 'utf8').catch(() => ''),
    signal: sig => { proc.signal(sig) },
    kill: async () => {
      proc.signal('SIGKILL')
      return await proc.exited
    },
    restart: async (extraEnv = {}, restartOpts = {}) => {
      if (proc.exitInfo === undefined) await proc.stop(5000)
      const env = samePorts()
      // Once the old process has exited and its ports can be bound; a start that lost one to
      // someone else (another test's server, a client's ephemeral port) is retried (same-port.ts).
      return await restartOnSamePorts(Object.values(env).map(Number), async () => await launch(env, extraEnv, restartOpts.mayExitBeforeListening === true), {
        what: `gateway (${opts.dataDir})`,
        timeoutMs: 2 * timeoutMs,
        isAddressInUse: err => (err as { addressInUse?: boolean }).addressInUse === true,
        onPortBusy: restartOpts.onPortBusy
      })
    },
    rss: async () => {
      const status = await readFile(`/proc/${proc.pid}/status`, 'utf8')
      const kb = /VmRSS:\s+(\d+) kB/.exec(status)
      return kb === null ? 0 : Number(kb[1]) * 1024
    },
    metrics: async () => {
      const res = await fetch(`http://127.0.0.1:${ports.http}/metrics`, { signal: AbortSignal.timeout(5000) })
      return await res.text()
    },
    stop: async () => { await proc.stop(5000) }
  }
  return gp
}
