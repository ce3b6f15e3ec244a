import { csvSerializer } from './csv.js'
import { fhirSerializer } from './fhir.js'
import { ndjsonSerializer } from './ndjson.js'
import type { FormatName, Serializer, SerializerContext } from './serializer.js'

export { FORMAT_NAMES, type FormatName, type Serializer, type SerializerContext } from './serializer.js'

export function createSerializer (format: FormatName, ctx: SerializerContext): Serializer {
  switch (format) {
    case 'ndjson': return ndjsonSerializer(ctx)
    case 'csv': return csvSerializer(ctx)
    case 'fhir': return fhirSerializer(ctx)
  }
}
