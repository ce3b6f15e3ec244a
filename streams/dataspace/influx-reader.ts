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
import { influxAuthHeaders, influxBase, pingInflux } from '../storage/influx-client.js'

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
  constructor (readonly options: Readonly<InfluxReaderOptions>) {}

  private async request (influxql: string, chunked: boolean, signal?: AbortSignal): Promise<Response> {
    const o = this.options
    const qs = new URLSearchParams({ db: o.db, epoch: 'u' })
    if (chunked) {
      qs.set('chunked', 'true')
      qs.set('chunk_size', String(o.chunkRows))
    }
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...influxAuthHeaders(o.token) }
    const timeout = AbortSignal.timeout(o.timeoutMs)
    const started = new AbortController()
    const onAbort = (): void => { started.abort(signal?.reason ?? timeout.reason) }
    timeout.addEventListener('abort', onAbort)
    signal?.addEventListener('abort', onAbort)
    let res: Response
    try {
      res = await fetch(`${influxBase(o.url)}/query?${qs.toString()}`, {
        method: 'POST',
        headers,
        body: new URLSearchParams({ q: influxql }).toString(),
        signal: started.signal
      })
    } catch (err) {
      throw new DataspaceError('AMB_ERR_DATASPACE_STORE_UNAVAILABLE', `InfluxDB did not answer: ${(err as Error).message}`, { cause: err, retryAfterMs: RETRY_MS })
    } finally {
      // The timeout covers the wait for the response to start, not a long, client-paced body.
      timeout.removeEventListener('abort', onAbort)
    }
    if (!res.ok) {
      const text = (await res.text().catch(() => '')).slice(0, 300)
      if (res.status >= 500 || res.status === 429) {
        throw new DataspaceError('AMB_ERR_DATASPACE_STORE_UNAVAILABLE', `InfluxDB answered ${res.status}: ${text}`, { retryAfterMs: RETRY_MS })
      }
      throw new DataspaceError('AMB_ERR_DATASPACE_QUERY_FAILED', `InfluxDB refused the query (${res.status}): ${text}`)
    }
    return res
  }

  /** Series of one statement, one chunk at a time. Stops reading when the caller stops pulling. */
  async * stream (influxql: string, signal?: AbortSignal): AsyncGenerator<Series> {
    const ac = new AbortController()
    const onAbort = (): void => { ac.abort(signal?.reason) }
    signal?.addEventListener('abort', onAbort)
    try {
      const res = await this.request(influxql, true, ac.signal)
      if (res.body === null) return
      const decoder = new TextDecoder()
      const body = res.body.getReader()
      let pending = ''
      try {
        for (;;) {
          const { done, value } = await body.read()
          if (done) break
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
      } finally {
        // Left early (the consumer stopped, or an error): release the connection.
        body.cancel().catch(() => {})
      }
      pending += decoder.decode()
      if (pending.trim() !== '') yield * seriesOf(pending)
    } finally {
      signal?.removeEventListener('abort', onAbort)
      // Leaving early (the client went away, or an error): stop InfluxDB's response too.
      ac.abort()
    }
  }

  /** Every series of a small (aggregate) query, unchunked. */
  async all (influxql: string, signal?: AbortSignal): Promise<Series[]> {
    const res = await this.request(influxql, false, signal)
    return [...seriesOf(await res.text())]
  }

  /** Checks that InfluxDB answers (the one `/ping`, shared with the sink). */
  async ping (timeoutMs = 2000): Promise<boolean> {
    return await pingInflux(this.options.url, timeoutMs)
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
