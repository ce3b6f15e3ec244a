/**
 * The one InfluxDB HTTP client: the sink's writes, the dataspace reader's InfluxQL queries, the
 * audit anchors and every health check go through it (issue 11: one client, one ping).
 *
 * It is `node:http`/`node:https` with a keep-alive agent and nothing else. Two clients were
 * measured for the sink's writes (`loadtest/bench-transport.ts`): the runtime's fetch cost
 * 1.02 µs of gateway CPU per stored point against 0.56 µs for @influxdata/influxdb-client's
 * transport, which is itself a thin layer over `node:http`; this client is that layer without
 * the library (see docs/performance.md for the figures of all three in one run).
 *
 * - Auth: `Authorization: Token …` (a v2/3.x token, or `user:password` for 1.x with auth).
 * - Timeouts: `timeoutMs` bounds the whole exchange of a buffered request; for a streamed
 *   response (`stream()`) it bounds the wait for the response to start only, so a slow,
 *   client-paced body (a researcher's download) is not cut. A timed-out request is destroyed:
 *   a hung (SIGSTOPped) server costs one socket per attempt, only until its timeout.
 * - Errors: a non-2xx answer is an {@link InfluxHttpError} with the status, InfluxDB's message
 *   and its Retry-After; anything else (refused, reset, timed out) is the socket's error.
 * - `/ping` is served by InfluxDB 1.x, 2.x, 3.x and VictoriaMetrics, without auth.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'
import https from 'node:https'

export interface InfluxClientOptions {
  url: string
  /** v2/3.x token, or `user:password` for 1.x with auth; none when empty. */
  token?: string
  /** Default timeout of a request, in ms. */
  timeoutMs?: number
  /** Most sockets kept open to the server (requests beyond wait for one). */
  maxSockets?: number
}

export interface InfluxRequest {
  method?: 'GET' | 'POST'
  /** Path and query, e.g. `/write?db=x`. */
  path: string
  body?: Buffer | string
  headers?: OutgoingHttpHeaders
  timeoutMs?: number
  signal?: AbortSignal
}

export interface InfluxResponse {
  status: number
  headers: IncomingMessage['headers']
  body: Buffer
}

/** InfluxDB answered, with a status that is not 2xx. */
export class InfluxHttpError extends Error {
  constructor (readonly statusCode: number, readonly body: string, private readonly retryAfterHeader: string | undefined) {
    super(`InfluxDB answered ${statusCode}: ${body.slice(0, 300)}`)
    this.name = 'InfluxHttpError'
  }

  /** Retry-After in ms (429 and 503 send it, in seconds or as a date); 0 when absent. */
  retryAfterMs (now = Date.now()): number {
    const h = this.retryAfterHeader
    if (h === undefined || h === '') return 0
    const s = Number(h)
    if (Number.isFinite(s)) return Math.max(0, s * 1000)
    const at = Date.parse(h)
    return Number.isFinite(at) ? Math.max(0, at - now) : 0
  }
}

/** A request that did not finish within its timeout. */
export class InfluxTimeoutError extends Error {
  constructor (readonly timeoutMs: number) {
    super(`InfluxDB did not answer within ${timeoutMs} ms`)
    this.name = 'InfluxTimeoutError'
  }
}

/** The server's base URL without a trailing slash, so paths join as `${base}/query`. */
export function influxBase (url: string): string {
  return url.replace(/\/$/, '')
}

/** Answers at most this many bytes of an error body are kept (InfluxDB's message is short). */
const MAX_ERROR_BODY = 64 * 1024

export class InfluxClient {
  readonly url: string
  private readonly base: URL
  private readonly agent: http.Agent
  private readonly lib: typeof http | typeof https
  private readonly auth: string | undefined
  private readonly timeoutMs: number

  constructor (options: InfluxClientOptions) {
    this.url = influxBase(options.url)
    this.base = new URL(this.url)
    const https_ = this.base.protocol === 'https:'
    this.lib = https_ ? https : http
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 16, maxFreeSockets: options.maxSockets ?? 16, scheduling: 'lifo' as const }
    this.agent = https_ ? new https.Agent(agentOptions) : new http.Agent(agentOptions)
    this.auth = options.token !== undefined && options.token !== '' ? `Token ${options.token}` : undefined
    this.timeoutMs = options.timeoutMs ?? 30_000
  }

  /** Sends a request and reads the whole answer; non-2xx answers reject with InfluxHttpError. */
  async request (r: InfluxRequest): Promise<InfluxResponse> {
    const timing = { timedOut: false }
    const res = await this.open(r, true, timing)
    let body: Buffer
    try {
      body = await readAll(res, res.statusCode !== undefined && res.statusCode >= 300 ? MAX_ERROR_BODY : Infinity)
    } catch (err) {
      // The timeout destroyed the socket while the body was coming: say so, not "aborted".
      throw timing.timedOut ? new InfluxTimeoutError(r.timeoutMs ?? this.timeoutMs) : err
    }
    const status = res.statusCode ?? 0
    if (status < 200 || status >= 300) throw new InfluxHttpError(status, body.toString('utf8'), header(res, 'retry-after'))
    return { status, headers: res.headers, body }
  }

  /**
   * Sends a request and resolves with the response as a stream once it starts (2xx only): the
   * caller reads it at its own pace (reading stops when it stops pulling, and TCP's window makes
   * the server wait). `timeoutMs` covers the wait for the response to start.
   */
  async stream (r: InfluxRequest): Promise<IncomingMessage> {
    const res = await this.open(r, false, { timedOut: false })
    const status = res.statusCode ?? 0
    if (status < 200 || status >= 300) {
      const body = await readAll(res, MAX_ERROR_BODY).catch(() => Buffer.alloc(0))
      throw new InfluxHttpError(status, body.toString('utf8'), header(res, 'retry-after'))
    }
    return res
  }

  /** True when the server answers `/ping` with 2xx within `timeoutMs`. */
  async ping (timeoutMs = 2000): Promise<boolean> {
    try {
      await this.request({ method: 'GET', path: '/ping', timeoutMs })
      return true
    } catch {
      return false
    }
  }

  /** Closes the idle sockets; requests in flight finish. */
  close (): void {
    this.agent.destroy()
  }

  /**
   * Opens the request. With `wholeExchange`, the timeout stays armed until the caller has read
   * the body (it is cleared when the response ends); otherwise once the response starts.
   */
  private open (r: InfluxRequest, wholeExchange: boolean, timing: { timedOut: boolean }): Promise<IncomingMessage> {
    const timeoutMs = r.timeoutMs ?? this.timeoutMs
    const headers: OutgoingHttpHeaders = { ...r.headers }
    if (this.auth !== undefined) headers.authorization = this.auth
    const body = r.body === undefined ? undefined : typeof r.body === 'string' ? Buffer.from(r.body, 'utf8') : r.body
    if (body !== undefined) headers['content-length'] = body.byteLength
    return new Promise((resolve, reject) => {
      if (r.signal?.aborted === true) { reject(r.signal.reason); return }
      const req = this.lib.request({
        protocol: this.base.protocol,
        hostname: this.base.hostname,
        port: this.base.port,
        path: this.base.pathname.replace(/\/$/, '') + r.path,
        method: r.method ?? 'POST',
        headers,
        agent: this.agent
      })
      let timer: NodeJS.Timeout | undefined = setTimeout(() => {
        timing.timedOut = true
        req.destroy(new InfluxTimeoutError(timeoutMs))
      }, timeoutMs)
      const disarm = (): void => {
        if (timer !== undefined) clearTimeout(timer)
        timer = undefined
        r.signal?.removeEventListener('abort', onAbort)
      }
      const onAbort = (): void => { req.destroy(r.signal?.reason instanceof Error ? r.signal.reason : new Error('aborted')) }
      r.signal?.addEventListener('abort', onAbort, { once: true })
      req.once('error', err => { disarm(); reject(err) })
      req.once('response', res => {
        if (wholeExchange) {
          res.once('end', disarm)
          res.once('close', disarm)
        } else {
          disarm()
        }
        resolve(res)
      })
      req.end(body)
    })
  }
}

function header (res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** Reads a response to its end, keeping at most `limit` bytes (the rest is read and dropped). */
function readAll (res: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    res.on('data', (c: Buffer) => {
      if (size >= limit) return
      chunks.push(c)
      size += c.length
    })
    res.once('end', () => { resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)) })
    res.once('error', reject)
    // A socket destroyed by the timeout closes the response without 'end'.
    res.once('close', () => { if (!res.complete) reject(res.errored ?? new Error('InfluxDB broke off the response')) })
  })
}
