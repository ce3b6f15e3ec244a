// A Dataspace Protocol 2025-1 consumer written from the specification (the HTTPS bindings of the
// catalogue, contract negotiation and transfer process), for tests. It shares no code with the
// gateway: it validates every message it sends and receives against the official JSON schemas
// vendored under test/fixtures/dsp (loaded here with ajv's draft 2019-09 class), and expands
// them as JSON-LD with the official context (jsonld, with a document loader that serves the
// vendored context files, so nothing is fetched).
import { randomUUID } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Ajv2019 } from 'ajv/dist/2019.js'
import jsonld from 'jsonld'

const FIXTURES = new URL('../test/fixtures/dsp/', import.meta.url)
export const DSP_CONTEXT = 'https://w3id.org/dspace/2025/1/context.jsonld'
const SCHEMA_BASE = 'https://w3id.org/dspace/2025/1/'

/** Message type → schema file (the DSP 2025-1 artefacts' names). */
const SCHEMAS: Record<string, string> = {
  VersionResponse: 'common/protocol-version-schema.json',
  CatalogRequestMessage: 'catalog/catalog-request-message-schema.json',
  DatasetRequestMessage: 'catalog/dataset-request-message-schema.json',
  Catalog: 'catalog/catalog-schema.json',
  Dataset: 'catalog/dataset-schema.json',
  CatalogError: 'catalog/catalog-error-schema.json',
  ContractRequestMessage: 'negotiation/contract-request-message-schema.json',
  ContractAgreementMessage: 'negotiation/contract-agreement-message-schema.json',
  ContractAgreementVerificationMessage: 'negotiation/contract-agreement-verification-message-schema.json',
  ContractNegotiationEventMessage: 'negotiation/contract-negotiation-event-message-schema.json',
  ContractNegotiationTerminationMessage: 'negotiation/contract-negotiation-termination-message-schema.json',
  ContractNegotiation: 'negotiation/contract-negotiation-schema.json',
  ContractNegotiationError: 'negotiation/contract-negotiation-error-schema.json',
  TransferRequestMessage: 'transfer/transfer-request-message-schema.json',
  TransferStartMessage: 'transfer/transfer-start-message-schema.json',
  TransferSuspensionMessage: 'transfer/transfer-suspension-message-schema.json',
  TransferCompletionMessage: 'transfer/transfer-completion-message-schema.json',
  TransferTerminationMessage: 'transfer/transfer-termination-message-schema.json',
  TransferProcess: 'transfer/transfer-process-schema.json',
  TransferError: 'transfer/transfer-error-schema.json'
}

/** ajv over the vendored schemas. Three transfer schemas write `#definitions/…` for `#/definitions/…` (an upstream slip); read as meant. */
export function dspSchemas (): Ajv2019 {
  const ajv = new Ajv2019({ allErrors: true, strict: false })
  for (const dir of ['catalog', 'common', 'negotiation', 'transfer']) {
    for (const f of readdirSync(new URL(`${dir}/`, FIXTURES))) {
      const text = readFileSync(new URL(`${dir}/${f}`, FIXTURES), 'utf8').replaceAll('.json#definitions/', '.json#/definitions/')
      ajv.addSchema(JSON.parse(text) as object)
    }
  }
  return ajv
}

const ajv = dspSchemas()

/** Throws when `msg` is not a valid `type` under the official schema. */
export function assertDsp (type: string, msg: unknown): void {
  const v = ajv.getSchema(SCHEMA_BASE + SCHEMAS[type]!)
  if (v === undefined) throw new Error(`no schema for ${type}`)
  if (!v(msg)) throw new Error(`${type} does not validate: ${JSON.stringify(v.errors)} in ${JSON.stringify(msg).slice(0, 800)}`)
}

const CONTEXTS: Record<string, string> = {
  [DSP_CONTEXT]: 'context/dspace.jsonld',
  'https://w3id.org/dspace/2025/1/odrl-profile.jsonld': 'context/odrl.jsonld'
}

/** Expands a DSP message as JSON-LD with the official (vendored) context; anything else is refused. */
export async function expandDsp (msg: object): Promise<jsonld.JsonLdDocument[]> {
  const documentLoader = async (url: string): Promise<{ contextUrl: null, documentUrl: string, document: unknown }> => {
    const file = CONTEXTS[url]
    if (file === undefined) throw new Error(`the test loads no remote context (${url})`)
    return { contextUrl: null, documentUrl: url, document: JSON.parse(readFileSync(new URL(file, FIXTURES), 'utf8')) }
  }
  return await jsonld.expand(msg as jsonld.JsonLdDocument, { documentLoader: documentLoader as never }) as jsonld.JsonLdDocument[]
}

export interface Received { path: string, type: string, body: Record<string, unknown> }

export interface DspResponse { status: number, body: Record<string, unknown> | null, headers: Headers }

/** The consumer: a callback server, and the messages it sends with the permit as bearer. */
export class DspConsumer {
  readonly received: Received[] = []
  private waiters: Array<{ pred: (r: Received) => boolean, resolve: (r: Received) => void }> = []
  private constructor (private readonly server: Server, readonly callbackAddress: string, public base: string, public permit: string) {}

  static async start (base: string, permit: string): Promise<DspConsumer> {
    let self: DspConsumer | null = null
    const server = createServer((req, res) => { self!.onCallback(req, res) })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    self = new DspConsumer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback/`, base, permit)
    return self
  }

  private onCallback (req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => { chunks.push(c) })
    req.on('end', () => {
      let body: Record<string, unknown>
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>
        assertDsp(String(body['@type']), body)
      } catch (err) {
        // A message that fails the schema is not acknowledged (and the test sees why).
        this.received.push({ path: req.url ?? '', type: 'INVALID', body: { error: (err as Error).message } })
        res.statusCode = 400
        res.end()
        return
      }
      const r: Received = { path: req.url ?? '', type: String(body['@type']), body }
      this.received.push(r)
      res.statusCode = 200
      res.end()
      for (const w of [...this.waiters]) if (w.pred(r)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(r) }
    })
  }

  /** Resolves with the first callback (received before or after) that `pred` accepts. */
  waitFor (pred: (r: Received) => boolean, timeoutMs = 15_000): Promise<Received> {
    const seen = this.received.find(pred)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (r: Received) => { clearTimeout(timer); resolve(r) } }
      const timer = setTimeout(() => { this.waiters.splice(this.waiters.indexOf(w), 1); reject(new Error(`no callback matched in ${timeoutMs} ms; got ${this.received.map(r => r.type).join(', ')}`)) }, timeoutMs)
      this.waiters.push(w)
    })
  }

  /** Sends a message (validated first, unless `raw`) and returns the answer as JSON. */
  async call (method: 'GET' | 'POST', path: string, msg?: Record<string, unknown>, o: { raw?: string, token?: string | null, type?: string } = {}): Promise<DspResponse> {
    if (msg !== undefined) assertDsp(String(msg['@type']), msg)
    const headers: Record<string, string> = {}
    const token = o.token === undefined ? this.permit : o.token
    if (token !== null) headers.authorization = `Bearer ${token}`
    if (msg !== undefined || o.raw !== undefined) headers['content-type'] = o.type ?? 'application/json'
    const res = await fetch(this.base + path, { method, headers, ...(msg !== undefined ? { body: JSON.stringify(msg) } : o.raw !== undefined ? { body: o.raw } : {}) })
    const text = await res.text()
    let body: Record<string, unknown> | null = null
    try { body = text === '' ? null : JSON.parse(text) as Record<string, unknown> } catch { body = { unparsable: text } }
    return { status: res.status, body, headers: res.headers }
  }

  newPid (): string { return `urn:uuid:${randomUUID()}` }

  async close (): Promise<void> {
    await new Promise<void>(resolve => { this.server.close(() => { resolve() }); this.server.closeAllConnections() })
  }
}
