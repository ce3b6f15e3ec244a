/**
 * Writing to InfluxDB over HTTP, for the sink (its worker thread posts, its main thread creates
 * the v1 database at start): one POST of gzipped line protocol, the v1 database created when
 * missing, and what an error means for the sink (bad input to isolate, or a retry after how long).
 */
import { HttpError, InfluxDB, type Transport } from '@influxdata/influxdb-client'
import { StreamError } from './errors.js'

export interface InfluxWriteTarget {
  url: string
  api: 'v2' | 'v1'
  token?: string
  org?: string
  bucket?: string
  db?: string
  timeoutMs: number
}

export class InfluxWriteClient {
  private readonly transport: Transport
  private readonly writePath: string
  private dbCreated = false

  constructor (private readonly target: InfluxWriteTarget) {
    const o = target
    this.transport = new InfluxDB({ url: o.url, token: o.token, timeout: o.timeoutMs }).transport
    if (o.api === 'v1') {
      if (o.db === undefined || o.db === '') throw new Error('INFLUX_DB is required with INFLUX_API=v1')
      this.writePath = `/write?db=${encodeURIComponent(o.db)}&precision=u`
    } else {
      if (o.bucket === undefined || o.bucket === '') throw new Error('INFLUX_BUCKET is required with INFLUX_API=v2')
      this.writePath = `/api/v2/write?org=${encodeURIComponent(o.org ?? '')}&bucket=${encodeURIComponent(o.bucket)}&precision=us`
    }
  }

  /** Posts a gzipped body; v1 creates its database on a 404 and posts again. */
  async write (body: Buffer): Promise<void> {
    try {
      await this.send(body)
    } catch (err) {
      if (this.target.api === 'v1' && !this.dbCreated && err instanceof HttpError && err.statusCode === 404) {
        await this.createDatabase()
        await this.send(body)
        return
      }
      throw err
    }
  }

  /**
   * One POST of an already gzipped body. Transport.send (unlike request) passes a Buffer body
   * through untouched; request() would JSON.stringify it.
   */
  private send (body: Buffer): Promise<void> {
    const timeoutMs = this.target.timeoutMs
    const signal = AbortSignal.timeout(timeoutMs)
    return new Promise((resolve, reject) => {
      this.transport.send(this.writePath, body as unknown as string, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8', 'content-encoding': 'gzip' },
        // The transport's own `timeout` only reports an error and leaves the request (and its
        // socket) open against a hung server; aborting closes it.
        signal
      }, {
        error: (err: Error) => { reject(signal.aborted ? new StreamError('AMB_ERR_INFLUX_UNAVAILABLE', `InfluxDB write timed out after ${timeoutMs} ms (INFLUX_TIMEOUT_MS)`, { cause: err }) : err) },
        complete: () => { resolve() }
      })
    })
  }

  /** v1: CREATE DATABASE is idempotent in InfluxDB 1.x. */
  async createDatabase (): Promise<void> {
    if (this.target.api !== 'v1') return
    const q = `CREATE DATABASE "${this.target.db!.replace(/["\\]/g, '')}"`
    await this.transport.request(`/query?q=${encodeURIComponent(q)}`, '', { method: 'POST' })
    this.dbCreated = true
  }
}

/**
 * True when InfluxDB refused the *content* of the lines, so isolating them can help. A 400 that
 * is not about the data (a proxy's gzip or auth complaint, a missing bucket) would otherwise
 * send every line to dead letters: those are retried like outages instead.
 */
export function isBadInput (err: unknown): boolean {
  if (!(err instanceof HttpError)) return false
  if (err.statusCode === 413 || err.statusCode === 422) return true
  if (err.statusCode !== 400) return false
  return DATA_ERRORS.test(err.body ?? err.message)
}

/** Messages InfluxDB 1.x/2.x/3.x and VictoriaMetrics give for lines they cannot store. */
const DATA_ERRORS = /partial write|field type conflict|unable to parse|cannot parse|invalid (field|tag|number|boolean|timestamp|measurement)|beyond retention|max-values-per-tag|bad timestamp|conflict/i

/** InfluxDB's answer, for the dead letters. */
export function influxErrorMessage (err: unknown): string {
  if (err instanceof HttpError) return `${err.statusCode} ${err.body ?? err.message}`.slice(0, 2000)
  return (err as Error).message
}

/** How long the server asked us to wait (Retry-After, sent with 429 and 503), in ms; 0 if not. */
export function influxRetryAfterMs (err: unknown): number {
  return err instanceof HttpError ? err.retryAfter() * 1000 : 0
}
