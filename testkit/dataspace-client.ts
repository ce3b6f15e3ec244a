// HTTP and WebSocket clients for the dataspace tests: extracts read with node:http so the
// HTTP trailers (rows released/withheld) can be checked, and live streams with ws.
import { request } from 'node:http'
import WebSocket from 'ws'

export interface HttpResult {
  status: number
  headers: Record<string, string | string[] | undefined>
  trailers: Record<string, string | undefined>
  body: string
}

/** GET with an optional bearer token; resolves once the body and trailers are in. */
export function get (url: string, token?: string): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks).toString('utf8') })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

export interface LiveClient {
  ws: WebSocket
  messages: string[]
  /** Resolves with the close code once the connection ends. */
  closed: Promise<number>
  /** Polls the messages received until `pred` holds; rejects after `timeoutMs` (default 30 s: a bound for a loaded machine, not a timing claim). */
  waitFor: (pred: (messages: string[]) => boolean, timeoutMs?: number) => Promise<void>
}

/** Opens a live stream; rejects with the HTTP status when the upgrade is refused. */
export function openLive (url: string, token?: string): Promise<LiveClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
    const messages: string[] = []
    const closed = new Promise<number>(r => { ws.once('close', code => { r(code) }) })
    ws.on('message', (data: Buffer) => { messages.push(data.toString('utf8')) })
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('end', () => { reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') })) })
    })
    ws.once('error', reject)
    ws.once('open', () => {
      ws.off('error', reject)
      ws.on('error', () => {})
      resolve({
        ws,
        messages,
        closed,
        waitFor: async (pred, timeoutMs = 30_000) => {
          const deadline = Date.now() + timeoutMs
          while (!pred(messages)) {
            if (Date.now() > deadline) throw new Error(`timed out waiting for live messages (have ${messages.length})`)
            await new Promise(r => setTimeout(r, 20))
          }
        }
      })
    })
  })
}
