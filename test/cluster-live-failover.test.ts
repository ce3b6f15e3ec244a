// The cluster-wide live view across process deaths (issue #15, docs/scale-out.md "HTTP and the
// dashboard"): three real gateway processes (children) sharing a real redis-server, a page on
// the dashboard's live WebSocket (the protocol the page speaks, ECG as binary chunks).
// - Resume on another process: AMB-ECG streams to C; a page on A watches it (C serves the ECG
//   through Redis). A is SIGKILLed while C goes on receiving; the page reconnects to B with its
//   cursors: B has C resume it exactly where it was (same ring, no sample missed or repeated),
//   the trend from its last row.
// - A third process takes over an ECG watch: A is restarted, C is SIGKILLed and the unit moves to
//   A; the page on B gets the unit's ECG from A (its new ring) without asking.
// - The session re-check: the page's session disappears from Redis without the announcement
//   (as if B had missed it); B closes the page's socket within a minute.
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SESSION_COOKIE, sessionId } from '../gateway/sessions.js'
import { decodeEcgChunk, type EcgChunk } from '../streams/live/protocol.js'
import type { ServerMessage } from '../streams/index.js'
import { CLUSTER_START_TIMEOUT_MS, liveFeed, login, startCluster, TestDevice, type LiveFeed, type TestCluster } from '../testkit/cluster.js'
import type { GatewayProcess } from '../testkit/gateway-process.js'
import { waitFor } from '../testkit/proc.js'

const UNIT = 'AMB-ECG'
/** Samples per lead per frame: 250 ms at 500 Hz. */
const N = 125
const NUMERICS = { 1: 72, 3: 97, 7: 16 }
type TrendMsg = Extract<ServerMessage, { type: 'trend' }>

const chunksOf = (f: LiveFeed, from = 0): EcgChunk[] => f.binary.slice(from).map(b => decodeEcgChunk(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer)!).filter(c => c.unit === UNIT)
/** The page's ECG cursor: the end of the newest chunk (its epoch). */
const ecgEnd = (cs: EcgChunk[]): { epoch: string, next: number } | null => cs.length === 0 ? null : cs.reduce((m, c) => c.startIndex + c.n > m.next ? { epoch: c.epoch, next: c.startIndex + c.n } : m, { epoch: '', next: -1 })

describe('cluster: the live view across the death of the serving process and of the owner', () => {
  let cluster: TestCluster
  let rc: Redis
  let a: GatewayProcess
  let b: GatewayProcess
  let c: GatewayProcess
  let device: TestDevice
  let password: string
  const feeds: LiveFeed[] = []
  let t = 0

  beforeAll(async () => {
    cluster = await startCluster({ prefix: 'ambulink-cluster-live-' })
    rc = new Redis(cluster.redis.url)
    password = await cluster.addUser('dr-lee')
    device = new TestDevice(UNIT, await cluster.addDevice(UNIT))
    a = await cluster.start('a')
    b = await cluster.start('b')
    c = await cluster.start('c')
    t = Math.floor(Date.now() / 1000) * 1000 - 60_000
  }, 3 * CLUSTER_START_TIMEOUT_MS + 60_000)

  afterAll(async () => {
    for (const f of feeds) f.ws.terminate()
    await device?.close()
    rc?.disconnect()
    await cluster?.stop()
  })

  const frames = async (n: number): Promise<void> => { for (let i = 0; i < n; i++, t += 250) await device.send(t, NUMERICS, N) }

  it('resume on another process after the serving one dies; a third process takes the ECG watch over; the session re-check ends a missed session', async () => {
    await device.connect(c.ports.mqtt!)
    await frames(4)
    const s = await login(a.ports.http!, 'dr-lee', password)
    const page = await liveFeed(a.ports.http!, s.cookie, { type: 'hello', watch: [UNIT], resume: {} })
    feeds.push(page)
    await waitFor(async () => (ecgEnd(chunksOf(page))?.next ?? 0) >= 4 * N, { timeoutMs: 20_000, what: 'the backfill from C on A\'s page' })
    await frames(4)
    await waitFor(async () => (ecgEnd(chunksOf(page))?.next ?? 0) >= 8 * N, { timeoutMs: 20_000, what: 'live ECG from C on A\'s page' })
    const ecg = ecgEnd(chunksOf(page))!
    const trends = page.messages.filter((m): m is TrendMsg => m.type === 'trend' && m.unit === UNIT)
    const trendEpoch = trends.at(-1)!.epoch
    const trendNext = Math.max(...trends.filter(m => m.epoch === trendEpoch).map(m => m.from + m.t.length))

    // The serving process dies; the unit goes on streaming to C meanwhile.
    await a.kill()
    await frames(4)
    const resumed = await liveFeed(b.ports.http!, s.cookie, { type: 'hello', watch: [UNIT], resume: { [UNIT]: { ecgEpoch: ecg.epoch, ecgNext: ecg.next, trendEpoch, trendNext } } })
    feeds.push(resumed)
    await waitFor(async () => (ecgEnd(chunksOf(resumed))?.next ?? 0) >= 12 * N, { timeoutMs: 20_000, what: 'the resumed ECG on B' })
    const got = chunksOf(resumed).filter(x => x.epoch === ecg.epoch).sort((p, q) => p.startIndex - q.startIndex)
    // Exactly from the cursor, contiguous, nothing repeated.
    expect(got[0]!.startIndex).toBe(ecg.next)
    for (let i = 1; i < got.length; i++) expect(got[i]!.startIndex, 'contiguous').toBe(got[i - 1]!.startIndex + got[i - 1]!.n)
    expect(chunksOf(resumed).every(x => x.epoch === ecg.epoch)).toBe(true)
    const trend = await resumed.until('the trend on B', (m): m is TrendMsg => m.type === 'trend' && m.unit === UNIT)
    expect(trend).toMatchObject({ epoch: trendEpoch, from: trendNext - 1 })

    // A third process takes the unit over: A (restarted) receives it after C dies.
    await a.restart()
    await c.kill()
    const mark = resumed.binary.length
    await device.connect(a.ports.mqtt!)
    const movedAt = Date.now()
    await frames(4)
    await waitFor(async () => chunksOf(resumed, mark).some(x => x.epoch !== ecg.epoch), { timeoutMs: 20_000, what: 'ECG from A on B\'s page' })
    const fromA = chunksOf(resumed, mark).filter(x => x.epoch !== ecg.epoch)
    const ecgFromNewOwnerMs = Date.now() - movedAt
    expect(fromA[0]!.startIndex).toBe(0)

    // The page's session vanishes from Redis without the announcement: B finds out at its re-check.
    const token = decodeURIComponent(s.cookie.slice(`${SESSION_COOKIE}=`.length))
    expect(await rc.del(`ambulink:session:${sessionId(token)}`)).toBe(1)
    const deletedAt = Date.now()
    const code = await Promise.race([resumed.closed, new Promise<number>(resolve => setTimeout(() => { resolve(-1) }, 75_000).unref())])
    const recheckMs = Date.now() - deletedAt
    expect(code, 'B closed the socket of the ended session').toBe(4001)
    console.log(JSON.stringify({ live: { ecgFromNewOwnerMsAfterReconnect: ecgFromNewOwnerMs, sessionEndFoundMs: recheckMs } }))
  }, CLUSTER_START_TIMEOUT_MS + 240_000)
})
