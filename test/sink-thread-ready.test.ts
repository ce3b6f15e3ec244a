// A restarted sink worker that dies before it says it is ready must not strand the jobs (and
// close()) already waiting for a worker: found by an adversarial review. The real worker cannot
// be made to die during its start-up on demand, so node:worker_threads' Worker is replaced by a
// small fake that answers jobs and dies when told. A worker from the bundle that dies before it
// is ready leaves the next one starting through tsx.
import { EventEmitter } from 'node:events'
import { describe, expect, it, vi } from 'vitest'
import { waitFor } from '../testkit/proc.js'

const workers: FakeWorker[] = []
class FakeWorker extends EventEmitter {
  constructor () { super(); workers.push(this) }
  postMessage (m: { type: string, job?: { id: number } }): void {
    if (m.type === 'write') setImmediate(() => this.emit('message', { id: m.job!.id, ok: true, points: 1, bytes: 1, latencyMs: 0, refused: [], rejected: [] }))
  }
  async terminate (): Promise<number> { setImmediate(() => this.emit('exit', 1)); return 1 }
}
vi.mock('node:worker_threads', async (orig) => ({ ...(await orig<typeof import('node:worker_threads')>()), Worker: FakeWorker }))

const { SinkThread } = await import('../streams/storage/sink-thread.js')

describe('SinkThread restarts', () => {
  it('a job waiting through two crashes (the second before ready) runs once a worker is up, and close() ends', async () => {
    const t = new SinkThread({ url: 'http://127.0.0.1:1', api: 'v2', bucket: 'b', timeoutMs: 100 }, 'worker', {})
    // The worker is started once its bundle is there (worker-bundle.ts): asynchronously.
    await waitFor(async () => workers.length === 1 ? true : undefined, { timeoutMs: 60_000, what: 'generation 1 started' })
    workers[0]!.emit('message', { type: 'ready' })
    await t.whenReady()
    workers[0]!.emit('exit', 70) // generation 1 crashes: a job sent now waits for the restart
    const job = t.run({ id: 1, segment: 1, offset: 0 }, async () => Buffer.alloc(4))
    await waitFor(async () => workers.length === 2 ? true : undefined, { timeoutMs: 10_000, what: 'generation 2 started' })
    workers[1]!.emit('error', new Error('init failed')) // dies before it says ready
    await waitFor(async () => workers.length === 3 ? true : undefined, { timeoutMs: 10_000, what: 'generation 3 started' })
    workers[2]!.emit('message', { type: 'ready' })
    const hung = Symbol('hung')
    // Bounds on a deadlock, not on speed: each resolves in milliseconds when it works.
    const out = await Promise.race([job, new Promise(resolve => setTimeout(() => resolve(hung), 10_000))])
    expect(out).not.toBe(hung)
    // Generation 2 came from the bundle and died before it was ready: generation 3 came through tsx.
    expect(t.started).toMatchObject({ entry: 'tsx', bundleError: expect.stringMatching(/died before it was ready: init failed/) as unknown })
    const closed = await Promise.race([t.close().then(() => 'closed'), new Promise(resolve => setTimeout(() => resolve(hung), 10_000))])
    expect(closed).toBe('closed')
  })
})
