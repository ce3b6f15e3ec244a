/**
 * Writing to InfluxDB, for the sink, through the one InfluxDB client (influx-client.ts): its
 * worker thread posts, its main thread pings and creates the v1 database at start. One POST of
 * line protocol (gzipped, but for same-run comparisons), the v1 database created
 * when missing, and what an error means for the sink (bad input to isolate, or a retry after how
 * long).
 */
import { InfluxClient, InfluxHttpError, InfluxTimeoutError } from './influx-client.js'
import { StreamError } from './errors.js'

export interface InfluxWriteTarget {
  url: string
  api: 'v2' | 'v1'
  /** v2 token, or `user:password` for v1 with auth enabled. */
  token?: string
  org?: string
  bucket?: string
  db?: string
  /** Request timeout, in ms (INFLUX_TIMEOUT_MS). */
  timeoutMs: number
  /**
   * Whether write bodies are gzipped (default true). false posts the line protocol as it is, for
   * same-run comparisons (loadtest/sink-thread.ts --gzip both): measured, plain bodies did not
   * lower the gateway's and InfluxDB's CPU per point together, so it is no operator option
   * (docs/performance.md, fifth round).
   */
  gzip?: boolean
}

const GZIP_HEADERS = Object.freeze({ 'content-type': 'text/plain; charset=utf-8', 'content-encoding': 'gzip' })
const PLAIN_HEADERS = Object.freeze({ 'content-type': 'text/plain; charset=utf-8' })

export class InfluxWriteClient {
  private readonly client: InfluxClient
  private readonly writePath: string
  private dbCreated = false

  constructor (private readonly target: InfluxWriteTarget) {
    const o = target
    this.client = new InfluxClient({ url: o.url, token: o.token, timeoutMs: o.timeoutMs })
    if (o.api === 'v1') {
      if (o.db === undefined || o.db === '') throw new Error('INFLUX_DB is required with INFLUX_API=v1')
      this.writePath = `/write?db=${encodeURIComponent(o.db)}&precision=u`
    } else {
      if (o.bucket === undefined || o.bucket === '') throw new Error('INFLUX_BUCKET is required with INFLUX_API=v2')
      this.writePath = `/api/v2/write?org=${encodeURIComponent(o.org ?? '')}&bucket=${encodeURIComponent(o.bucket)}&precision=us`
    }
  }

  /** Posts a body (`gzipped` or plain line protocol); v1 creates its database on a 404 and posts again. */
  async write (body: Buffer, gzipped = true): Promise<void> {
    try {
      await this.send(body, gzipped)
    } catch (err) {
      if (this.target.api === 'v1' && !this.dbCreated && err instanceof InfluxHttpError && err.statusCode === 404) {
        await this.createDatabase()
        await this.send(body, gzipped)
        return
      }
      throw err
    }
  }

  /** One POST of a body as it is; a timeout is named as such (INFLUX_TIMEOUT_MS). */
  private async send (body: Buffer, gzipped: boolean): Promise<void> {
    try {
      await this.client.request({
        path: this.writePath,
        body,
        headers: gzipped ? GZIP_HEADERS : PLAIN_HEADERS
      })
    } catch (err) {
      if (err instanceof InfluxTimeoutError) throw new StreamError('AMB_ERR_INFLUX_UNAVAILABLE', `InfluxDB write timed out after ${err.timeoutMs} ms (INFLUX_TIMEOUT_MS)`, { cause: err })
      throw err
    }
  }

  /** v1: CREATE DATABASE is idempotent in InfluxDB 1.x. */
  async createDatabase (): Promise<void> {
    if (this.target.api !== 'v1') return
    const q = `CREATE DATABASE "${this.target.db!.replace(/["\\]/g, '')}"`
    await this.client.request({ path: `/query?q=${encodeURIComponent(q)}` })
    this.dbCreated = true
  }

  /** True when InfluxDB answers `/ping` within `timeoutMs`. */
  async ping (timeoutMs: number): Promise<boolean> {
    return await this.client.ping(timeoutMs)
  }

  /** Closes the idle sockets; requests in flight finish. */
  close (): void {
    this.client.close()
  }
}

/**
 * True when InfluxDB refused the *content* of the lines, so isolating them can help. A 400 that
 * is not about the data (a proxy's gzip or auth complaint, a missing bucket) would otherwise
 * send every line to dead letters: those are retried like outages instead.
 */
export function isBadInput (err: unknown): boolean {
  if (!(err instanceof InfluxHttpError)) return false
  if (err.statusCode === 413 || err.statusCode === 422) return true
  if (err.statusCode !== 400) return false
  return DATA_ERRORS.test(err.body)
}

/** Messages InfluxDB 1.x/2.x/3.x and VictoriaMetrics give for lines they cannot store. */
const DATA_ERRORS = /partial write|field type conflict|unable to parse|cannot parse|invalid (field|tag|number|boolean|timestamp|measurement)|beyond retention|max-values-per-tag|bad timestamp|conflict/i

/** InfluxDB's answer, for the dead letters. */
export function influxErrorMessage (err: unknown): string {
  if (err instanceof InfluxHttpError) return `${err.statusCode} ${err.body}`.slice(0, 2000)
  return (err as Error).message
}

/** How long the server asked us to wait (Retry-After, sent with 429 and 503), in ms; 0 if not. */
export function influxRetryAfterMs (err: unknown): number {
  return err instanceof InfluxHttpError ? err.retryAfterMs() : 0
}
