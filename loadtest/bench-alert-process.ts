/**
 * The alert probes in a child process (bench-alert-child.ts), with the interface of AlertProbes
 * (bench-alerts.ts): `ambulink bench` measures publish → alert with them away from the fleet's
 * event loop (issue 12, goal 2: in the same process the clinician's receipt waited behind the
 * hundreds of units the bench generates, about half the measured median). Events are stamped in
 * the child (sent and received on its clock, performance.timeOrigin + now(), the wall clock the
 * parent's windows use too).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { resolve as resolvePath } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BenchUnitReport } from '../testkit/stored.js'
import type { FromProbeChild, ProbeChildOptions, ToProbeChild } from './bench-alert-child.js'
import { latencyStats, type AlertLatency } from './bench-alerts.js'

const CHILD = fileURLToPath(new URL('./bench-alert-child.ts', import.meta.url))
const ROOT = resolvePath(import.meta.dirname, '..')
/** Longest wait for the child to start and connect (tsx compiles it first on a loaded box). */
const CONNECT_TIMEOUT_MS = 120_000

export interface AlertProbeProcessOptions extends ProbeChildOptions {
  log: (msg: string) => void
}

type Stopped = Extract<FromProbeChild, { op: 'stopped' }>

export class AlertProbeProcess {
  private child: ChildProcess | null = null
  private readonly latencies: number[] = []
  private readonly latencyAt: number[] = []
  private stopped: Stopped | null = null
  private readonly waiters = new Map<FromProbeChild['op'], (m: FromProbeChild) => void>()
  private failure: Error | null = null

  constructor (private readonly o: AlertProbeProcessOptions) {}

  /** Alert events for probe units that matched no trigger (should stay 0); known after stop(). */
  get unmatched (): number { return this.stopped?.unmatched ?? 0 }

  /** Starts the child; it connects the clinician (subscribed first) and the probes. */
  async connect (): Promise<void> {
    const { log, ...options } = this.o
    // A plain environment: a test runner's NODE_OPTIONS (its loaders) must not reach the child.
    const env: NodeJS.ProcessEnv = {}
    for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k] !== undefined) env[k] = process.env[k]
    const child = fork(CHILD, [], { cwd: ROOT, env, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    this.child = child
    child.stderr?.on('data', (b: Buffer) => { log(`probe process: ${b.toString().trimEnd()}`) })
    child.on('message', (m: FromProbeChild) => { this.onMessage(m) })
    child.once('exit', (code, signal) => {
      if (this.stopped === null) this.fail(new Error(`alert probe process exited (${code ?? signal}) before it stopped`))
    })
    // Neither the child nor its channel keeps this process alive (a run that fails before stop()
    // still exits, and the child with it: it exits when its channel closes).
    child.unref()
    child.channel?.unref()
    ;(child.stderr as unknown as { unref?: () => void } | null)?.unref?.()
    const connected = this.next('connected', CONNECT_TIMEOUT_MS)
    this.send({ op: 'connect', options })
    try {
      await connected
    } catch (err) {
      child.kill('SIGKILL')
      this.child = null
      throw err
    }
  }

  /** Starts streaming in real time from device time `startMs` (the fleet's start). */
  start (startMs: number): void { this.send({ op: 'start', startMs }) }

  /** Stops sending; waits (bounded) for PUBACKs and late alerts; ends the child. */
  async stop (drainMs = 10_000): Promise<void> {
    const child = this.child
    if (child === null || this.stopped !== null) return
    try {
      const stopped = this.next('stopped', drainMs + 30_000)
      this.send({ op: 'stop', drainMs })
      this.stopped = await stopped as Stopped
    } catch (err) {
      this.o.log(`probe process: ${(err as Error).message}`)
    } finally {
      if (child.connected) child.disconnect()
      const exited = child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 5000)
      await exited
      clearTimeout(timer)
      this.child = null
    }
  }

  /** Per probe: connections made, frames generated and acked (known after stop()). */
  linkStats (): Stopped['linkStats'] { return this.stopped?.linkStats ?? [] }

  /** Latencies in ms, of events received from `sinceMs` up to `untilMs` (wall clock). */
  summary (sinceMs = 0, untilMs = Infinity): AlertLatency {
    return latencyStats(this.latencies.filter((_x, i) => this.latencyAt[i]! >= sinceMs && this.latencyAt[i]! <= untilMs))
  }

  /** The probes' acknowledged frames, for the lost count (known after stop()). */
  reports (): BenchUnitReport[] { return this.stopped?.reports ?? [] }

  private onMessage (m: FromProbeChild): void {
    if (m.op === 'event') {
      this.latencies.push(m.receivedAt - m.sentAt)
      this.latencyAt.push(m.receivedAt)
      return
    }
    if (m.op === 'log') { this.o.log(m.msg); return }
    if (m.op === 'error') { this.fail(new Error(m.message)); return }
    const w = this.waiters.get(m.op)
    this.waiters.delete(m.op)
    w?.(m)
  }

  private fail (err: Error): void {
    this.failure = err
    this.o.log(`probe process: ${err.message}`)
    // Whoever waits learns of it at once.
    for (const w of this.waiters.values()) w({ op: 'error', message: err.message })
    this.waiters.clear()
  }

  private next (op: FromProbeChild['op'], timeoutMs: number): Promise<FromProbeChild> {
    if (this.failure !== null) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(op)
        reject(new Error(`alert probe process: no '${op}' within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiters.set(op, m => {
        clearTimeout(timer)
        if (m.op === 'error') reject(new Error(`alert probe process: ${m.message}`))
        else resolve(m)
      })
    })
  }

  private send (m: ToProbeChild): void {
    if (this.child?.connected === true) this.child.send(m)
  }
}
