// The sink stops visibly, never silently, when what must happen before the cursor moves cannot:
// lines InfluxDB refused that the dead letters cannot keep, or a commit whose disk fails. Both
// found by an adversarial review of the worker-thread sink. InfluxDB cannot refuse a line on
// demand with a 400 for only some lines of a batch together with a full dead-letter store, and a
// disk cannot fail one unlink on demand: a small HTTP server answers like InfluxDB does to a
// field type conflict, and the spool's commit is made to throw once.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startFakeInflux, type FakeInflux } from '../testkit/fake-influx.js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DeadLetterStore, InfluxSink, Spool } from '../streams/index.js'
import { waitFor } from '../testkit/proc.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })
let fake: FakeInflux
let url: string
let accepted: string[]
beforeAll(async () => {
  fake = await startFakeInflux((_req, body) => body.includes('bad=1') ? { status: 400, body: '{"code":"invalid","message":"partial write: field type conflict"}' } : undefined)
  ;({ url, accepted } = fake)
})
afterAll(async () => { await fake?.close() })

async function store (deadLetterMaxBytes = 512 * 1024 * 1024): Promise<{ spool: Spool, deadLetters: DeadLetterStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'sink-halt-'))
  cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
  const spool = await Spool.open({ dir: join(dir, 'spool') })
  cleanups.push(async () => { await spool.close() })
  const deadLetters = await DeadLetterStore.open({ dir: join(dir, 'dead'), maxBytes: deadLetterMaxBytes })
  cleanups.push(async () => { await deadLetters.close() })
  return { spool, deadLetters }
}

describe('the sink stops visibly rather than pass the cursor over what nothing keeps', () => {
  it('lines InfluxDB refuses while the dead letters are full: the sink stops, the batch stays spooled', async () => {
    const { spool, deadLetters } = await store(10) // full from the start
    const errors: Error[] = []
    const rejected: string[] = []
    const s = new InfluxSink({ url, api: 'v2', bucket: 'b', lingerMs: 1 }, spool, deadLetters, { onError: e => errors.push(e), onRejected: (_n, m) => rejected.push(m) })
    cleanups.push(async () => { await s.close(0) })
    await spool.append('m,unit=a bad=1 1\nm,unit=a ok=1 2\n', 2)
    s.start()
    await waitFor(async () => !s.healthy && errors.length > 0 ? true : undefined, { timeoutMs: 20_000, what: 'the sink stopped' })
    // The good half was written; the refused line is in neither InfluxDB nor the dead letters,
    // so the cursor did not move: the batch is still in the spool for the next start.
    expect(accepted.join('')).toContain('ok=1')
    expect(spool.pendingBytes).toBeGreaterThan(0)
    expect(rejected).toEqual([])
    expect(errors[0]!.message).toMatch(/dead letters could not keep/)
  })

  it('a commit that throws stops the sink with /readyz unhealthy, and nothing is lost', async () => {
    const { spool, deadLetters } = await store()
    const errors: Error[] = []
    const s = new InfluxSink({ url, api: 'v2', bucket: 'b', lingerMs: 1 }, spool, deadLetters, { onError: e => errors.push(e) })
    cleanups.push(async () => { await s.close(0) })
    const commit = spool.commit.bind(spool)
    let calls = 0
    spool.commit = async (p) => {
      if (calls++ === 0) throw Object.assign(new Error('EIO: i/o error, unlink'), { code: 'EIO' })
      await commit(p)
    }
    await spool.append('m,unit=a x=1 1\n', 1)
    s.start()
    await waitFor(async () => !s.healthy ? true : undefined, { timeoutMs: 20_000, what: 'the sink reported unhealthy' })
    expect(errors.map(e => e.message)).toContain('EIO: i/o error, unlink')
    // Not committed: still in the spool (written again, idempotently, by the next start).
    expect(spool.pendingBytes).toBeGreaterThan(0)
  })
})
