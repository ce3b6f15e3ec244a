// Every component's close() is async and safe to call twice; a second call made while the first
// is still running must not return before the first has finished (as undici's close does).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { AlertEngine } from '../streams/alerts/engine.js'
import { LiveHub } from '../streams/live/hub.js'
import type { LiveSink } from '../streams/live/subscriber.js'

/** Runs close twice at once and records the order the two calls finish in. */
async function closeTwice (close: () => Promise<void>): Promise<string[]> {
  const order: string[] = []
  const first = close().then(() => { order.push('first') })
  await close()
  order.push('second')
  await first
  return order
}

describe('close() twice', () => {
  it('live hub: async, the second call waits for the first, subscribers told once', async () => {
    const h = new LiveHub({ hospital: { name: 'H', latitude: 49.63, longitude: 6.17 } })
    onTestFinished(() => h.close())
    const closes: string[] = []
    const sink: LiveSink = { send: (_d, cb) => { cb() }, close: (code, reason) => { closes.push(`${code} ${reason}`) }, terminate: () => {} }
    h.subscribe(sink, { name: 'c', role: 'clinician' })
    expect(await closeTwice(() => h.close())).toEqual(['first', 'second'])
    expect(closes).toEqual(['1001 gateway shutting down'])
  })

  it('alert engine: the second call waits for the journal flush of the first', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ambulink-close-'))
    onTestFinished(() => rm(dir, { recursive: true, force: true }))
    const engine = await AlertEngine.open({ dir, tickIntervalMs: 0 })
    onTestFinished(() => engine.close())
    expect(await closeTwice(() => engine.close())).toEqual(['first', 'second'])
  })
})
