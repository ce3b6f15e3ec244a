/**
 * Validation of Dataspace Protocol messages against the official DSP 2025-1 JSON schemas
 * (eclipse-dataspace-protocol-base/DataspaceProtocol, tag 2025-1, `artifacts/src/main/resources`,
 * Apache-2.0: see schemas/LICENSE), vendored unchanged under schemas/. The schemas declare JSON
 * Schema draft 2019-09, so they are compiled with ajv's Ajv2019.
 *
 * One correction is applied when loading, never to the files: three transfer schemas refer to
 * `transfer-schema.json#definitions/AbstractTransferCodeMessage`, a fragment without the leading
 * `/` that a JSON Pointer needs (RFC 6901 §3, JSON Schema 2019-09 §8.2.4.1 [$ref resolution]); it
 * is read as `#/definitions/...`, which is what the authors meant. Everything else is as published.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { Ajv2019, type ValidateFunction } from 'ajv/dist/2019.js'

export const DSP_SCHEMA_BASE = 'https://w3id.org/dspace/2025/1/'
/** The DSP 2025-1 JSON-LD context every message names in `@context`. */
export const DSP_CONTEXT = 'https://w3id.org/dspace/2025/1/context.jsonld'

/** Message types and the schema (relative to DSP_SCHEMA_BASE) that defines each. */
export const DSP_MESSAGE_SCHEMAS = {
  VersionResponse: 'common/protocol-version-schema.json',
  CatalogRequestMessage: 'catalog/catalog-request-message-schema.json',
  DatasetRequestMessage: 'catalog/dataset-request-message-schema.json',
  Catalog: 'catalog/catalog-schema.json',
  Dataset: 'catalog/dataset-schema.json',
  CatalogError: 'catalog/catalog-error-schema.json',
  ContractRequestMessage: 'negotiation/contract-request-message-schema.json',
  ContractOfferMessage: 'negotiation/contract-offer-message-schema.json',
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
} as const

export type DspMessageType = keyof typeof DSP_MESSAGE_SCHEMAS

/** Rewrites `#definitions/...` (no leading slash) to the JSON Pointer `#/definitions/...`, in place. */
function fixRefs (node: unknown): void {
  if (Array.isArray(node)) { for (const x of node) fixRefs(x); return }
  if (node === null || typeof node !== 'object') return
  const o = node as Record<string, unknown>
  if (typeof o.$ref === 'string') o.$ref = o.$ref.replace(/#definitions\//, '#/definitions/')
  for (const v of Object.values(o)) fixRefs(v)
}

/** Compiles every `*.json` schema in `dir` (the vendored DSP 2025-1 files). */
export function loadDspSchemas (dir: URL | string): Ajv2019 {
  const ajv = new Ajv2019({ allErrors: true, strict: false })
  for (const f of readdirSync(dir).filter(n => n.endsWith('.json')).sort()) {
    const schema = JSON.parse(readFileSync(new URL(f, typeof dir === 'string' ? `file://${dir.endsWith('/') ? dir : dir + '/'}` : dir), 'utf8')) as Record<string, unknown>
    fixRefs(schema)
    ajv.addSchema(schema)
  }
  return ajv
}

export interface DspValidator {
  /** The schema errors of `msg` as `type`, or null when it validates. */
  errors: (type: DspMessageType, msg: unknown) => string[] | null
}

export function dspValidator (ajv: Ajv2019): DspValidator {
  const compiled = new Map<DspMessageType, ValidateFunction>()
  const get = (type: DspMessageType): ValidateFunction => {
    let v = compiled.get(type)
    if (v === undefined) {
      v = ajv.getSchema(DSP_SCHEMA_BASE + DSP_MESSAGE_SCHEMAS[type])
      if (v === undefined) throw new Error(`no DSP schema for ${type}`)
      compiled.set(type, v)
    }
    return v
  }
  return {
    errors: (type, msg) => {
      const v = get(type)
      if (v(msg)) return null
      return (v.errors ?? []).slice(0, 10).map(e => `${e.instancePath === '' ? '(message)' : e.instancePath} ${e.message ?? 'is invalid'}`)
    }
  }
}

let shared: DspValidator | null = null

/** The validator over the schemas vendored beside this file (compiled once per process). */
export function productDspValidator (): DspValidator {
  shared ??= dspValidator(loadDspSchemas(new URL('./schemas/', import.meta.url)))
  return shared
}
