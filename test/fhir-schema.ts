// The official FHIR R4 JSON schema (test/fixtures/fhir/, see NOTICE.md) compiled with ajv, for
// the tests that check every FHIR resource the dataspace emits.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

const require = createRequire(import.meta.url)

let compiled: ValidateFunction | null = null

/** The compiled schema (about 10 s the first time on a busy machine: call it in beforeAll). */
export function fhirValidator (): ValidateFunction {
  if (compiled !== null) return compiled
  const schema = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'fhir', 'fhir.schema.json'), 'utf8')) as Record<string, unknown>
  // The file declares draft-06 but names itself with draft-04's `id`; ajv 8 reads draft-06 only
  // with `$id`. Renaming the root id changes no constraint. `strict: false`: the file uses the
  // OpenAPI `discriminator` keyword (informative, not a JSON Schema keyword).
  schema.$id = schema.id
  delete schema.id
  const ajv = new Ajv({ strict: false, allErrors: true })
  ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json') as object)
  compiled = ajv.compile(schema)
  return compiled
}

/** Schema errors of one resource, empty when it validates. */
export function fhirErrors (resource: unknown): ErrorObject[] {
  const v = fhirValidator()
  return v(resource) ? [] : [...(v.errors ?? [])]
}
