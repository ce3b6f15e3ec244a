/**
 * Reads from InfluxDB with InfluxQL over the v1 `/query` endpoint, which InfluxDB 1.x, 2.x
 * (compatibility API), 3.x and Cloud all serve.
 *
 * `stream()` asks for a chunked response (`chunked=true&chunk_size=N`): InfluxDB then writes one
 * JSON document per chunk of at most N rows, newline-terminated. We parse one chunk at a time and
 * hand its series to the caller, reading the next only when the caller asks for it (pull mode):
 * when the researcher's connection is slow, we stop reading, TCP's window closes, and InfluxDB
 * waits. At most one chunk (plus a partial line) is held in memory.
 */
import { DataspaceError } from './errors.js'
import { InfluxClient, InfluxHttpError, type InfluxRequest } from '../storage/influx-client.js'

export interface InfluxReaderOptions {
  url: string
  /** v1 database, or the v2 bucket (mapped by DBRP, or by name on 3.x). */
  db: string
  /** v2/3.x token, or `user:password` for 1.x with auth (sent as `Authorization: Token …`). */
  token?: string
  /** Rows per chunk. */
  chunkRows: number
  /** Until the response starts, in ms. */
  timeoutMs: number
}

export interface Series {
  name: string
  tags: Record<string, string>
  columns: string[]
  values: unknown[][]
}

interface QueryResult { statement_id?: number, series?: Series[], error?: string }
interface QueryBody { results?: QueryResult[], error?: string }

/** Longest chunk line accepted; a chunk of chunkRows rows is far smaller. */
const MAX_LINE_CHARS = 64 * 1024 * 1024
const RETRY_MS = 5000

/** InfluxQL identifier quoting. */
export function ident (name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

/** InfluxQL string literal quoting. */
export function literal (value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

export class InfluxReader {
  private readonly client: InfluxClient

  constructor (readonly options: Readonly<InfluxReaderOptions>) {
    this.client = new InfluxClient({ url: options.url, token: options.token, timeoutMs: options.timeoutMs })
  }

  /** The client the reader queries through (the audit anchors write through it too). */
  get influx (): InfluxClient { return this.client }

  private query (influxql: string, chunked: boolean): InfluxRequest {
    const o = this.options
    const qs = new URLSearchParams({ db: o.db, epoch: 'u' })
    if (chunked) {
      qs.set('chunked', 'true')
      qs.set('chunk_size', String(o.chunkRows))
    }
    return {
      path: `/query?${qs.toString()}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ q: influxql }).toString()
    }
  }

  /** Maps the client's failures to the dataspace's codes: unavailable (retry) or refused. */
  private failure (err: unknown): DataspaceError {
    if (err instanceof DataspaceError) return err
    if (err instanceof InfluxHttpError) {
      const text = err.body.slice(0, 300)
      if (err.statusCode >= 500 || err.statusCode === 429) {
        return new DataspaceError('AMB_ERR_DATASPACE_STORE_UNAVAILABLE', `InfluxDB answered ${err.statusCode}: ${text}`, { retryAfterMs: RETRY_MS })
      }
      return new DataspaceError('AMB_ERR_DATASPACE_QUERY_FAILED', `InfluxDB refused the query (${err.statusCode}): ${text}`)
    }
    return new DataspaceError('AMB_ERR_DATASPACE_STORE_UNAVAILABLE', `InfluxDB did not answer: ${(err as Error).message}`, { cause: err, retryAfterMs: RETRY_MS })
  }

  /** Series of one statement, one chunk at a time. Stops reading when the caller stops pulling. */
  async * stream (influxql: string, signal?: AbortSignal): AsyncGenerator<Series> {
    let res
    try {
      // The timeout covers the wait for the response to start, not a long, client-paced body.
      res = await this.client.stream({ ...this.query(influxql, true), signal })
    } catch (err) {
      throw this.failure(err)
    }
    const onAbort = (): void => { res.destroy() }
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      const decoder = new TextDecoder()
      let pending = ''
      try {
        // Async iteration pulls: while the caller does not ask for the next series, no chunk is
        // read, the socket's buffer fills and TCP makes InfluxDB wait.
        for await (const value of res as AsyncIterable<Buffer>) {
          pending += decoder.decode(value, { stream: true })
          let nl: number
          while ((nl = pending.indexOf('\n')) !== -1) {
            const line = pending.slice(0, nl)
            pending = pending.slice(nl + 1)
            if (line.trim() !== '') yield * seriesOf(line)
          }
          if (pending.length > MAX_LINE_CHARS) throw new DataspaceError('AMB_ERR_DATASPACE_QUERY_FAILED', 'InfluxDB sent a chunk larger than 64 MiB; lower DATASPACE_CHUNK_ROWS')
        }
      } catch (err) {
        if (err instanceof DataspaceError) throw err
        throw new DataspaceError('AMB_ERR_DATASPACE_QUERY_FAILED', `InfluxDB broke off the response: ${(err as Error).message}`, { cause: err })
      }
      pending += decoder.decode()
      if (pending.trim() !== '') yield * seriesOf(pending)
    } finally {
      signal?.removeEventListener('abort', onAbort)
      // Leaving early (the client went away, or an error): stop InfluxDB's response too.
      if (!res.complete) res.destroy()
    }
  }

  /** Every series of a small (aggregate) query, unchunked. */
  async all (influxql: string, signal?: AbortSignal): Promise<Series[]> {
    let text: string
    try {
      text = (await this.client.request({ ...this.query(influxql, false), signal })).body.toString('utf8')
    } catch (err) {
      throw this.failure(err)
    }
    return [...seriesOf(text)]
  }

  /** Checks that InfluxDB answers (the one `/ping` of the one client). */
  async ping (timeoutMs = 2000): Promise<boolean> {
    return await this.client.ping(timeoutMs)
  }

  /** Closes the idle sockets. */
  close (): void {
    this.client.close()
  }
}

function * seriesOf (line: string): Generator<Series> {
  let body: QueryBody
  try {
    body = JSON.parse(line) as QueryBody
  } catch (err) {
    throw new DataspaceError('AMB_ERR_DATASPACE_QUERY_FAILED', 'InfluxDB sent a chunk that is not JSON', { cause: err })
  }
  if (typeof body.error === 'string') throw new DataspaceError('AMB_ERR_DATASPACE_QUERY_FAILED', `InfluxDB: ${body.error}`)
  for (const r of body.results ?? []) {
    if (typeof r.error === 'string') {
      // Nothing written yet: an empty extract, not a failure.
      if (/database not found/i.test(r.error)) continue
      throw new DataspaceError('AMB_ERR_DATASPACE_QUERY_FAILED', `InfluxDB: ${r.error}`)
    }
    for (const s of r.series ?? []) yield { name: s.name, tags: s.tags ?? {}, columns: s.columns, values: s.values ?? [] }
  }
}
