// The sink's `gzip: false` (same-run comparisons, loadtest/sink-thread.ts --gzip both; no operator
// option: docs/performance.md, fifth round): the line protocol goes out plain and a real InfluxDB
// 1.x stores every point exactly, a field type conflict's lines isolated as with gzip; by default
// the bodies are gzipped. What went over the wire is seen by a recording HTTP proxy between the
// sink and InfluxDB: it forwards every request unchanged and keeps, for each write, its
// content-encoding and whether its body starts as gzip does (1f 8b) or as line protocol.
import http from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DeadLetterStore, frameRecord, InfluxSink, Spool, SPOOL_RECORD_FRAME } from '../streams/index.js'
import { testFrame, T0 } from '../testkit/frames.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { waitFor } from '../testkit/proc.js'

/** Points of a default testFrame: 125 ECG instants, one vitals and one position point. */
const FRAME_POINTS = 127

interface SeenWrite { encoding: string | undefined, gzipMagic: boolean, text: boolean }

/** An HTTP proxy to `target` that records every write it forwards. */
async function recordingProxy (target: string): Promise<{ url: string, writes: SeenWrite[], close: () => Promise<void> }> {
  const to = new URL(target)
  const writes: SeenWrite[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => { chunks.push(c) })
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      if (req.url?.startsWith('/write') === true) {
        const enc = req.headers['content-encoding']
        writes.push({ encoding: Array.isArray(enc) ? enc[0] : enc, gzipMagic: body[0] === 0x1f && body[1] === 0x8b, text: /^[a-z_]+[, ]/.test(body.subarray(0, 64).toString('latin1')) })
      }
      const fwd = http.request({ hostname: to.hostname, port: to.port, path: req.url, method: req.method, headers: req.headers }, up => {
        res.writeHead(up.statusCode ?? 502, up.headers)
        up.pipe(res)
      })
      fwd.on('error', err => { res.destroy(err) })
      fwd.end(body)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    writes,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => { resolve() }))
    }
  }
}

describe('the sink with gzip off, against a real InfluxDB', () => {
  let influx: InfluxServer
  const cleanups: Array<() => Promise<void>> = []
  beforeAll(async () => { influx = await startInfluxDB() })
  afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })
  afterAll(async () => { await influx?.stop() })

  /** Spools `frames` frames of each unit and drains them through a sink behind the proxy. */
  const drain = async (db: string, gzip: boolean | undefined, units: Record<string, number>): Promise<{ writes: SeenWrite[], deadLetters: DeadLetterStore }> => {
    const dir = await mkdtemp(join(tmpdir(), 'ambulink-sink-plain-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const spool = await Spool.open({ dir: join(dir, 'spool') })
    cleanups.push(() => spool.close())
    const deadLetters = await DeadLetterStore.open({ dir: join(dir, 'dead') })
    cleanups.push(() => deadLetters.close())
    for (const [unit, n] of Object.entries(units)) {
      await Promise.all(Array.from({ length: n }, (_, i) => spool.appendRecord(frameRecord(unit, testFrame({ unit, seq: i + 1 })), FRAME_POINTS, SPOOL_RECORD_FRAME)))
    }
    const proxy = await recordingProxy(influx.url)
    cleanups.push(proxy.close)
    // Small batches: several writes, each of them checked.
    const sink = new InfluxSink({ url: proxy.url, api: 'v1', db, lingerMs: 5, maxBatchPoints: 1000, ...(gzip !== undefined ? { gzip } : {}) }, spool, deadLetters)
    cleanups.push(() => sink.close(0))
    sink.start()
    // Generous: the worker thread compiles its TypeScript when it starts.
    await waitFor(async () => spool.pendingBytes === 0, { timeoutMs: 60_000, intervalMs: 50, what: 'the spool to drain into InfluxDB' })
    return { writes: proxy.writes, deadLetters }
  }

  it('plain line protocol on the wire, and every point stored exactly', async () => {
    const { writes } = await drain('plain_exact', false, { 'plain-1': 60, 'plain-2': 25 })
    for (const [unit, frames] of [['plain-1', 60], ['plain-2', 25]] as const) {
      expect(await influx.count('plain_exact', 'ecg', 'v6', `"unit" = '${unit}'`), unit).toBe(frames * 125)
      expect(await influx.count('plain_exact', 'vitals', 'heart_rate', `"unit" = '${unit}'`), unit).toBe(frames)
      expect(await influx.count('plain_exact', 'position', 'latitude', `"unit" = '${unit}'`), unit).toBe(frames)
    }
    // The samples themselves, not only their number.
    const r = await influx.query(`SELECT "ii" FROM ecg WHERE "unit" = 'plain-1' ORDER BY time ASC LIMIT 1`, 'plain_exact', { epoch: 'u' })
    expect(r.results[0].series[0].values[0]).toEqual([(T0 + 250) * 1000, ((0 * 7 + 1 * 13 + 1) % 400) - 200])
    expect(writes.length).toBeGreaterThan(1)
    expect(writes.filter(w => w.encoding !== undefined || w.gzipMagic || !w.text)).toEqual([])
  }, 150_000)

  it('lines InfluxDB refuses (field type conflict) are isolated as with gzip; the rest is stored', async () => {
    // vitals.heart_rate made an integer field first, so the sink's float lines conflict.
    await influx.createDatabase('plain_conflict')
    await influx.write('plain_conflict', `vitals,unit=conf-p heart_rate=1i ${(T0 - 10_000) * 1000}`, 'u')
    const { writes, deadLetters } = await drain('plain_conflict', false, { 'conf-p': 8 })
    expect(await influx.count('plain_conflict', 'ecg', 'i')).toBe(8 * 125)
    expect(await influx.count('plain_conflict', 'position', 'latitude')).toBe(8)
    await waitFor(async () => (await deadLetters.readAll()).filter(d => d.source === 'influx').length >= 8 ? true : undefined, { timeoutMs: 60_000, what: 'dead letters from InfluxDB' })
    const dls = (await deadLetters.readAll()).filter(d => d.source === 'influx')
    expect(dls).toHaveLength(8)
    for (const d of dls) expect(d.reason).toMatch(/field type conflict/)
    expect(writes.filter(w => w.encoding !== undefined || w.gzipMagic)).toEqual([])
  }, 150_000)

  it('by default the bodies are gzipped', async () => {
    const { writes } = await drain('gz_default', undefined, { 'gz-1': 20 })
    expect(await influx.count('gz_default', 'ecg', 'v6')).toBe(20 * 125)
    expect(writes.length).toBeGreaterThan(0)
    expect(writes.filter(w => w.encoding !== 'gzip' || !w.gzipMagic)).toEqual([])
  }, 150_000)
})
