/**
 * A small HTTP server that answers like InfluxDB for the answers a real InfluxDB cannot give on
 * demand (a 429 with Retry-After, a proxy's non-data 400, a 500 for one unit's lines, a partial
 * write for some lines only). Write requests (`/write`, `/api/v2/write`) get what `answer` says
 * (204 when it says nothing); `/ping` answers 204 and anything else (`/query`) an empty result.
 * Every write is recorded with its gunzipped body; the bodies answered 204 are in `accepted`.
 */
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'

export interface FakeAnswer { status: number, body?: string, headers?: Record<string, string> }

export interface FakeInflux {
  readonly url: string
  /** Bodies of the writes answered 204. */
  readonly accepted: string[]
  /** Every write: when it came, its body, the status answered. */
  readonly writes: Array<{ at: number, body: string, status: number }>
  close: () => Promise<void>
}

export async function startFakeInflux (answer: (req: IncomingMessage, body: string) => FakeAnswer | undefined): Promise<FakeInflux> {
  const accepted: string[] = []
  const writes: FakeInflux['writes'] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const path = req.url ?? ''
      if (!path.startsWith('/write') && !path.startsWith('/api/v2/write')) {
        if (path.startsWith('/ping')) res.writeHead(204).end()
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{"results":[{}]}')
        return
      }
      const raw = Buffer.concat(chunks)
      const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString()
      const a = answer(req, body) ?? { status: 204 }
      writes.push({ at: Date.now(), body, status: a.status })
      if (a.status === 204) accepted.push(body)
      res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers }).end(a.body)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted,
    writes,
    close: async () => { await new Promise(resolve => server.close(resolve)) }
  }
}
