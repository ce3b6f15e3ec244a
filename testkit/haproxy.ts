// A private HAProxy (Debian package `haproxy`) for scale-out tests and benchmarks: the
// configuration is written by the caller (docs/scale-out.md's, read by `haproxyConfigFromDocs`),
// addresses come in through environment variables that the configuration names ("${VAR}"), the
// listeners are free ports on 127.0.0.1, the process runs in the foreground (-db) from its own
// temp dir and is stopped after.
import { readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { freePorts, pidListensOn } from './ports.js'
import { makeTempDir, ProcessExitedError, removeTempDir, resolveBinary, spawnManaged, tailFile, waitFor } from './proc.js'

const ROOT = resolve(import.meta.dirname, '..')

export interface HaproxyServer {
  /** Listener ports by the environment variable that binds them (e.g. AMBULINK_LB_HTTP). */
  readonly ports: Record<string, number>
  readonly pid: number
  readonly logFile: string
  logTail: (lines?: number) => Promise<string>
  /** SIGTERM (SIGKILL after 5 s), remove the temp dir. Idempotent. */
  stop: () => Promise<void>
}

export interface HaproxyOptions {
  /** The configuration text (with "${VAR}" references). */
  config: string
  /** Variables naming listeners: each gets 127.0.0.1:<free port>. */
  listeners: string[]
  /** Other variables the configuration references (backend addresses and ports). */
  env: Record<string, string>
  startTimeoutMs?: number
}

/** The first ```haproxy block of docs/scale-out.md: the test runs what the documentation shows. */
export async function haproxyConfigFromDocs (): Promise<string> {
  const doc = await readFile(join(ROOT, 'docs', 'scale-out.md'), 'utf8')
  const m = /```haproxy\n([\s\S]*?)```/.exec(doc)
  if (m === null) throw new Error('docs/scale-out.md has no ```haproxy block')
  return m[1]!
}

/** Tries to start haproxy this many times when another process took a listener's port first. */
const START_ATTEMPTS = 3

export async function startHaproxy (o: HaproxyOptions): Promise<HaproxyServer> {
  const bin = resolveBinary('haproxy')
  for (let attempt = 1; ; attempt++) {
    const dir = await makeTempDir('haproxy-test-')
    const cfg = join(dir, 'haproxy.cfg')
    const logFile = join(dir, 'haproxy.log')
    await writeFile(cfg, o.config)
    const ports: Record<string, number> = {}
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', ...o.env }
    // freePorts holds every socket until all are known: no two listeners get the same port.
    const free = await freePorts(o.listeners.length)
    o.listeners.forEach((name, i) => {
      ports[name] = free[i]!
      env[name] = `127.0.0.1:${ports[name]}`
    })
    for (const name of new Set([...o.config.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map(m => m[1]!))) {
      if (env[name] === undefined) {
        await removeTempDir(dir)
        throw new Error(`haproxy configuration needs ${name}, which the test did not set`)
      }
    }
    // -db: foreground, no daemon; -W would add a master process, which the test need not stop.
    const proc = spawnManaged(bin, ['-db', '-f', cfg], { cwd: dir, env, logFile })
    try {
      for (const port of Object.values(ports)) {
        await waitFor(() => pidListensOn(proc.pid, port), { timeoutMs: o.startTimeoutMs ?? 10_000, what: `haproxy listener on 127.0.0.1:${port}`, proc })
      }
    } catch (err) {
      await proc.stop(1000)
      const log = await tailFile(logFile)
      await removeTempDir(dir)
      // A server of a test file running in parallel took one of the ports between freePorts()
      // and haproxy's bind ("cannot bind socket (Address already in use)"): choose again.
      if (err instanceof ProcessExitedError && /address already in use/i.test(log) && attempt < START_ATTEMPTS) continue
      throw new Error(`haproxy failed to start: ${(err as Error).message}\n--- log ---\n${log}`)
    }
    let stopped = false
    return {
      ports,
      pid: proc.pid,
      logFile,
      logTail: async lines => await tailFile(logFile, lines),
      async stop () {
        if (stopped) return
        stopped = true
        await proc.stop(5000)
        await removeTempDir(dir)
      }
    }
  }
}
