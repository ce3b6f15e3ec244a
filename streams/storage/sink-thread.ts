/**
 * Where the sink's jobs run (sink-job.ts): in a worker thread (the default), so alerts, the
 * broker and the live hub never wait behind line protocol, gzip or HTTP; or on the calling
 * thread (`thread: 'main'`, kept for same-run comparisons in loadtest/sink-thread.ts).
 *
 * A batch's records are transferred to the worker (no copy). A worker that crashes (`error`,
 * or an `exit` not asked for) is reported, counted and restarted after a backoff; the jobs it had
 * answer as retryable failures, and their next attempt sends the records again, read from the
 * spool (the caller's `bytes()`): nothing in flight is lost.
 *
 * Run from the TypeScript sources, the worker starts from a bundle of its entry
 * (worker-bundle.ts: one JavaScript file, no tsx in the worker). Should the bundle fail to build,
 * or a worker started from it die before it says it is ready, the worker is started as before,
 * registering tsx itself (`entry` says which).
 */
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { SinkJobs, type SinkJobTarget, type JobOutcome, type WriteJob } from './sink-job.js'
import type { SinkWorkerData, SinkWorkerReady, ToSinkWorker } from './sink-worker.js'
import type { ThreadPriority } from './thread-priority.js'
import { workerBundle } from './worker-bundle.js'

export type SinkThreadMode = 'worker' | 'main'

/**
 * What a worker was started from: `bundle` (worker-bundle.ts), `tsx` (the .ts entry, tsx
 * registered in the worker), `js` (compiled sources: the .js entry).
 */
export type SinkWorkerEntry = 'bundle' | 'tsx' | 'js'

/** How a worker came up. */
export interface SinkWorkerStart {
  entry: SinkWorkerEntry
  /** From the decision to start it (bundling included) to its `ready` message, ms. */
  startMs: number
  /** Why the bundle was not used, when it was not (null: it was, or the sources are compiled). */
  bundleError: string | null
}

export interface SinkThreadEvents {
  /** The worker crashed; it is restarted after `restartInMs`. */
  onCrash?: (err: Error, restartInMs: number) => void
  /** A worker is up, at this priority (thread-priority.ts); once per worker started. */
  onPriority?: (priority: ThreadPriority, start: SinkWorkerStart) => void
}

/** Restart backoff after a crash: doubling from the first, capped at the last, in ms. */
const RESTART_MIN_MS = 200
const RESTART_MAX_MS = 15_000

export class SinkThread {
  private worker: Worker | null = null
  private generation = 0
  private ready: Promise<void> = Promise.resolve()
  private markReady: () => void = () => {}
  /** `ready` is not resolved yet. */
  private readyPending = false
  private readonly pending = new Map<number, (out: JobOutcome) => void>()
  /** The worker generation each job's records were sent to. */
  private readonly sentTo = new Map<number, number>()
  private restartTimer: NodeJS.Timeout | null = null
  private crashesInARow = 0
  private closed = false
  /** Set by stop(): no waiting for a worker that is not up. */
  private stopped = false
  private closing: Promise<void> | null = null
  private readonly inline: SinkJobs | null
  /** Worker crashes since start. */
  crashes = 0
  /** The current worker's priority as it reported it when it came up (null: main thread, or not up yet). */
  priority: ThreadPriority | null = null
  /** How the last worker came up (null: main thread, or none up yet). */
  started: SinkWorkerStart | null = null
  /** Why the bundle is not used (sticky once a worker started from it died before it was ready). */
  private bundleError: string | null = null

  /**
   * `niceIncrement`: how many nice levels below the caller the worker thread runs (0: the same;
   * thread-priority.ts); ignored on the main thread.
   */
  constructor (
    private readonly target: SinkJobTarget,
    readonly mode: SinkThreadMode = 'worker',
    private readonly events: SinkThreadEvents = {},
    private readonly niceIncrement = 0
  ) {
    this.inline = mode === 'main' ? new SinkJobs(target) : null
    if (mode === 'worker') {
      this.notReady()
      this.spawn()
    }
  }

  /**
   * One attempt at a job. `bytes()` gives the batch's records: called once per worker the job
   * is sent to (the first call may hand over memory that is then transferred).
   */
  async run (job: Omit<WriteJob, 'bytes'>, bytes: () => Promise<Buffer>): Promise<JobOutcome> {
    const id = job.id
    if (this.inline !== null) {
      const first = !this.sentTo.has(id)
      if (first) this.sentTo.set(id, 0)
      const out = await this.inline.run(first ? { ...job, bytes: await bytes() } : job)
      if (out.ok || out.kind !== 'retry') this.sentTo.delete(id)
      return out
    }
    for (;;) {
      if (this.closed || (this.stopped && this.worker === null)) return closingOutcome(id)
      await this.ready
      const w = this.worker
      if (w === null) {
        if (this.closed || this.stopped) return closingOutcome(id)
        continue
      }
      const gen = this.generation
      const msg: WriteJob = { ...job }
      const transfer: ArrayBuffer[] = []
      if (this.sentTo.get(id) !== gen) {
        const b = await bytes()
        if (gen !== this.generation || this.closed) continue
        msg.bytes = b
        transfer.push(b.buffer as ArrayBuffer)
        this.sentTo.set(id, gen)
      }
      const out = await new Promise<JobOutcome>(resolve => {
        this.pending.set(id, resolve)
        w.postMessage({ type: 'write', job: msg } satisfies ToSinkWorker, transfer)
      })
      if (!out.ok && out.kind === 'lost') {
        this.sentTo.delete(id)
        continue
      }
      if (out.ok) this.crashesInARow = 0
      if (out.ok || out.kind !== 'retry') this.sentTo.delete(id)
      return out
    }
  }

  /** Resolves once a worker is up (at once on the main thread): benchmarks leave its start-up out. */
  async whenReady (): Promise<void> {
    await this.ready
  }

  /** Drops a job given up on (the sink stops; its records stay spooled). */
  forget (id: number): void {
    this.sentTo.delete(id)
    this.inline?.forget(id)
    this.worker?.postMessage({ type: 'forget', id } satisfies ToSinkWorker)
  }

  /** Jobs wait from here until a worker is up. */
  private notReady (): void {
    // Already waiting for a worker (one died before it said ready): keep that promise, so the
    // jobs and close() waiting on it are woken by whichever worker comes up next.
    if (this.readyPending) return
    this.readyPending = true
    this.ready = new Promise(resolve => {
      this.markReady = () => {
        this.readyPending = false
        resolve()
      }
    })
  }

  private spawn (): void {
    const gen = ++this.generation
    const t0 = performance.now()
    // The worker's environment as it is now (a Worker copies it when it is created, which may be
    // after the bundle is built). Only the first worker gets a crash point (crash-point.ts), so a
    // test's crash happens once.
    const env = gen === 1 ? { ...process.env } : { ...process.env, AMBULINK_CRASH_AT: '' }
    void this.entry().then(({ url, entry }) => {
      if (this.closed || gen !== this.generation) return
      this.startWorker(url, entry, env, t0)
    }).catch((err: unknown) => {
      // No entry at all (tsx not resolvable) or `new Worker` threw: as a crash, retried.
      if (!this.closed && gen === this.generation && this.worker === null) this.restartLater(err as Error)
    })
  }

  /** Where the next worker starts from. */
  private async entry (): Promise<{ url: URL, entry: SinkWorkerEntry }> {
    const self = import.meta.url
    if (!self.endsWith('.ts')) return { url: new URL('./sink-worker.js', self), entry: 'js' }
    if (this.bundleError === null) {
      try {
        const b = await workerBundle(fileURLToPath(new URL('./sink-worker.ts', self)), 'sink-worker')
        return { url: pathToFileURL(b.file), entry: 'bundle' }
      } catch (err) {
        this.bundleError = (err as Error).message
      }
    }
    return { url: tsxEntry(self), entry: 'tsx' }
  }

  private startWorker (url: URL, entry: SinkWorkerEntry, env: NodeJS.ProcessEnv, t0: number): void {
    const workerData: SinkWorkerData = { target: this.target, niceIncrement: this.niceIncrement }
    const w = new Worker(url, { workerData, env, name: 'ambulink-sink' })
    this.worker = w
    let ready = false
    w.on('message', (m: JobOutcome | SinkWorkerReady) => {
      if ('type' in m) {
        ready = true
        this.priority = m.priority ?? null
        this.started = { entry, startMs: Math.round(performance.now() - t0), bundleError: entry === 'tsx' ? this.bundleError : null }
        if (m.priority !== undefined) this.events.onPriority?.(m.priority, this.started)
        this.markReady()
        return
      }
      const resolve = this.pending.get(m.id)
      this.pending.delete(m.id)
      resolve?.(m)
    })
    const died = (err: Error): void => {
      // A worker from the bundle that dies before it is ready: the next one starts as before.
      if (!ready && entry === 'bundle' && !this.closed) this.bundleError = `a worker started from the bundle died before it was ready: ${err.message}`
      this.lost(w, err)
    }
    w.on('error', err => { died(err) })
    w.on('exit', code => { died(new Error(`the sink worker exited with code ${code}`)) })
  }

  private lost (w: Worker, err: Error): void {
    if (this.worker !== w) return
    this.worker = null
    const pending = [...this.pending]
    this.pending.clear()
    for (const [id, resolve] of pending) {
      resolve(this.closed ? closingOutcome(id) : { id, ok: false, kind: 'retry', error: { message: `the sink worker crashed: ${err.message}`, retryAfterMs: 0 } })
    }
    if (this.closed) return
    this.restartLater(err)
  }

  /** Counts a crash (or a worker that could not be started) and starts another after the backoff. */
  private restartLater (err: Error): void {
    this.notReady()
    this.crashes++
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** Math.min(this.crashesInARow++, 16))
    this.events.onCrash?.(err, delay)
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null
      if (!this.closed) this.spawn()
    }, delay)
  }

  /**
   * The sink is stopping: jobs answer at once as failed instead of waiting for a worker being
   * restarted; jobs the worker holds still finish.
   */
  stop (): void {
    this.stopped = true
    this.markReady()
  }

  /** Stops the worker; jobs still waiting answer as failed. Safe to call twice. */
  close (): Promise<void> {
    this.closing ??= this.closeOnce()
    return this.closing
  }

  private async closeOnce (): Promise<void> {
    this.closed = true
    if (this.restartTimer !== null) clearTimeout(this.restartTimer)
    this.restartTimer = null
    this.markReady()
    this.inline?.close()
    const w = this.worker
    if (w !== null) {
      await w.terminate()
      this.lost(w, new Error('closed'))
    }
  }
}

function closingOutcome (id: number): JobOutcome {
  return { id, ok: false, kind: 'retry', error: { message: 'the sink is closing', retryAfterMs: 0 } }
}

/**
 * The worker's .ts entry behind tsx, which the worker registers itself before importing it (on
 * Node 20 a Worker's `execArgv: ['--import', 'tsx']` does not apply to the entry file).
 */
function tsxEntry (self: string): URL {
  // tsx's ESM build of its API (resolving `tsx/esm/api` from here would give the CommonJS one).
  const require = createRequire(self)
  const pkg = require.resolve('tsx/package.json')
  const api = (require(pkg) as { exports: Record<string, { import: { default: string } }> }).exports['./esm/api']!.import.default
  const tsx = new URL(api, pathToFileURL(pkg)).href
  const entry = new URL('./sink-worker.ts', self).href
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)})`
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`)
}
