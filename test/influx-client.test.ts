// The one InfluxDB client (streams/storage/influx-client.ts) against a real InfluxDB: ping,
// writes, buffered and streamed queries, refusals with InfluxDB's own message. Hung servers are
// real sockets that never answer (a net server); a SIGSTOPped InfluxDB is the sink's fault tests'
// (test/faults-outage.test.ts), through this client. Answers InfluxDB cannot give on demand (a 503 with
// Retry-After, an auth header echo) come from a small node:http server.
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InfluxClient, InfluxHttpError, InfluxTimeoutError } from '../streams/storage/influx-client.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'

async function listen<T extends Server | NetServer> (server: T): Promise<{ server: T, url: string }> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

async function close (server: Server | NetServer, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy()
  await new Promise<void>(resolve => server.close(() => { resolve() }))
}

describe('InfluxClient against a real InfluxDB', () => {
  let influx: InfluxServer
  let client: InfluxClient
  beforeAll(async () => {
    influx = await startInfluxDB({ logLevel: 'warn' })
    client = new InfluxClient({ url: influx.url + '/', timeoutMs: 10_000 })
  })
  afterAll(async () => {
    client?.close()
    await influx?.stop()
  })

  it('pings, writes gzipped line protocol and reads it back, buffered and streamed', async () => {
    expect(await client.ping()).toBe(true)
    await client.request({ path: `/query?q=${encodeURIComponent('CREATE DATABASE "ic"')}` })
    const lines = Array.from({ length: 2000 }, (_, i) => `m,unit=u${i % 7} v=${i}i ${1_700_000_000_000_000 + i}`).join('\n')
    const res = await client.request({ path: '/write?db=ic&precision=u', body: gzipSync(lines), headers: { 'content-encoding': 'gzip' } })
    expect(res.status).toBe(204)
    expect(await influx.count('ic', 'm', 'v')).toBe(2000)

    const all = await client.request({ path: `/query?db=ic&q=${encodeURIComponent('SELECT COUNT(v) FROM m')}` })
    expect(JSON.parse(all.body.toString()).results[0].series[0].values[0][1]).toBe(2000)

    // Chunked: one JSON document per chunk of 100 rows, read as a stream.
    const stream = await client.stream({ path: `/query?db=ic&chunked=true&chunk_size=100&q=${encodeURIComponent('SELECT v FROM m')}` })
    let text = ''
    for await (const chunk of stream as AsyncIterable<Buffer>) text += chunk.toString()
    const rows = text.trim().split('\n').map(l => JSON.parse(l) as { results: Array<{ series?: Array<{ values: unknown[] }> }> })
      .flatMap(d => d.results.flatMap(r => (r.series ?? []).flatMap(s => s.values)))
    expect(rows).toHaveLength(2000)
  })

  it('reports a refusal as InfluxHttpError with InfluxDB\'s message, and the next request still works', async () => {
    const err = await client.request({ path: '/write?db=ic', body: 'm v=1i\nthis is not line protocol\n' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InfluxHttpError)
    expect((err as InfluxHttpError).statusCode).toBe(400)
    expect((err as InfluxHttpError).body).toMatch(/unable to parse/)
    const missing = await client.request({ path: '/write?db=nope', body: 'm v=1i\n' }).catch((e: unknown) => e)
    expect((missing as InfluxHttpError).statusCode).toBe(404)
    expect((missing as InfluxHttpError).body).toMatch(/database not found/)
    expect(await client.ping()).toBe(true)
  })

  it('ping is false when nothing listens', async () => {
    const closed = new InfluxClient({ url: 'http://127.0.0.1:1' })
    expect(await closed.ping(1000)).toBe(false)
    closed.close()
  })
})

describe('InfluxClient: timeouts, Retry-After, auth, abort', () => {
  const sockets = new Set<Socket>()
  let hung: { server: NetServer, url: string }
  let slowBody: { server: Server, url: string }
  let answers: { server: Server, url: string }
  let seen: IncomingHttpHeaders = {}
  beforeAll(async () => {
    // Accepts and never answers.
    hung = await listen(createNetServer(s => { sockets.add(s); s.on('error', () => {}); s.resume() }))
    // Answers the headers, then half a body, then nothing.
    slowBody = await listen(createHttpServer((req, res) => {
      sockets.add(req.socket)
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
      res.write('{"results":')
    }))
    answers = await listen(createHttpServer((req, res) => {
      seen = req.headers
      req.resume()
      req.on('end', () => {
        if (req.url === '/busy') { res.writeHead(503, { 'retry-after': '2' }); res.end('busy'); return }
        if (req.url === '/busy-date') { res.writeHead(429, { 'retry-after': new Date(Date.now() + 60_000).toUTCString() }); res.end('slow down'); return }
        res.writeHead(204); res.end()
      })
    }))
  })
  afterAll(async () => {
    await close(hung.server, sockets)
    await close(slowBody.server, sockets)
    await close(answers.server, sockets)
  })

  it('a request to a server that never answers fails with InfluxTimeoutError and closes its socket', async () => {
    const c = new InfluxClient({ url: hung.url, timeoutMs: 200 })
    const before = sockets.size
    const err = await c.request({ path: '/write?db=x', body: 'm v=1i\n' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InfluxTimeoutError)
    expect((err as InfluxTimeoutError).timeoutMs).toBe(200)
    expect(sockets.size).toBe(before + 1)
    const socket = [...sockets].at(-1)!
    await new Promise<void>(resolve => { if (socket.destroyed || socket.readyState === 'closed') resolve(); else socket.once('close', () => { resolve() }) })
    c.close()
  })

  it('ping is false within its timeout against a server that accepts and never answers (a hung InfluxDB)', async () => {
    const c = new InfluxClient({ url: hung.url })
    expect(await c.ping(300)).toBe(false)
    c.close()
  })

  it('a body that stalls half-way fails with InfluxTimeoutError, not a hang', async () => {
    const c = new InfluxClient({ url: slowBody.url, timeoutMs: 300 })
    const err = await c.request({ method: 'GET', path: '/query' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InfluxTimeoutError)
    c.close()
  })

  it('a streamed response is not cut by the timeout once it has started', async () => {
    const c = new InfluxClient({ url: slowBody.url, timeoutMs: 200 })
    const res = await c.stream({ method: 'GET', path: '/query' })
    const first = await new Promise<Buffer>(resolve => res.once('data', resolve))
    expect(first.toString()).toBe('{"results":')
    // Well past the timeout, the response is still open: the caller decides when it ends.
    await new Promise(resolve => setTimeout(resolve, 600))
    expect(res.destroyed).toBe(false)
    res.destroy()
    c.close()
  })

  it('reads Retry-After in seconds and as a date, and sends the token', async () => {
    const c = new InfluxClient({ url: answers.url, token: 'user:secret' })
    const busy = await c.request({ path: '/busy', body: 'x' }).catch((e: unknown) => e) as InfluxHttpError
    expect(busy.statusCode).toBe(503)
    expect(busy.retryAfterMs()).toBe(2000)
    expect(seen.authorization).toBe('Token user:secret')
    const slow = await c.request({ path: '/busy-date', body: 'x' }).catch((e: unknown) => e) as InfluxHttpError
    expect(slow.statusCode).toBe(429)
    expect(slow.retryAfterMs()).toBeGreaterThan(50_000)
    expect(slow.retryAfterMs()).toBeLessThanOrEqual(60_000)
    const anonymous = new InfluxClient({ url: answers.url, token: '' })
    await anonymous.request({ path: '/ok', body: 'x' })
    expect(seen.authorization).toBeUndefined()
    c.close()
    anonymous.close()
  })

  it('an abort signal ends a pending request', async () => {
    const c = new InfluxClient({ url: hung.url, timeoutMs: 30_000 })
    const ac = new AbortController()
    const pending = c.request({ path: '/write', body: 'm v=1i\n', signal: ac.signal }).catch((e: unknown) => e)
    ac.abort(new Error('caller went away'))
    expect(((await pending) as Error).message).toBe('caller went away')
    c.close()
  })
})
