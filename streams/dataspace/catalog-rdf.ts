/**
 * The HealthDCAT-AP catalogue as RDF, by maintained libraries rather than by hand: JSON-LD
 * compacted by `jsonld` (so what is served is what a JSON-LD processor reads back), Turtle
 * written by `n3` from the RDF that `jsonld` produces. The document's context is inline, so no
 * remote context is ever fetched.
 */
import type { JsonLdDocument } from 'jsonld'

/**
 * jsonld and n3 are loaded on the first catalogue request, not when the gateway starts: about
 * 5 MB of heap, more of RSS, that a gateway nobody asks for its catalogue never needs (issue 12,
 * goal 4: the fixed memory, docs/performance.md). Node keeps them loaded from then on.
 */
async function rdfLibraries (): Promise<{ jsonld: typeof import('jsonld'), n3: typeof import('n3') }> {
  const [jsonld, n3] = await Promise.all([import('jsonld'), import('n3')])
  return { jsonld: jsonld.default, n3 }
}

/** The catalogue as compacted JSON-LD under its own context. */
export async function catalogJsonLd (doc: Record<string, unknown>): Promise<Record<string, unknown>> {
  const { jsonld } = await rdfLibraries()
  const context = doc['@context'] as Record<string, string>
  return await jsonld.compact(doc as JsonLdDocument, context) as Record<string, unknown>
}

/** The catalogue as Turtle, with the context's prefixes. Needs absolute IRIs (DATASPACE_PUBLIC_URL). */
export async function catalogTurtle (doc: Record<string, unknown>): Promise<string> {
  const { jsonld, n3: { Parser, Writer } } = await rdfLibraries()
  const nquads = await jsonld.toRDF(doc as JsonLdDocument, { format: 'application/n-quads' }) as unknown as string
  const quads = new Parser({ format: 'N-Quads' }).parse(nquads)
  const writer = new Writer({ prefixes: doc['@context'] as Record<string, string> })
  writer.addQuads(quads)
  return await new Promise<string>((resolve, reject) => { writer.end((err: Error | null, out: string) => { if (err !== null) reject(err); else resolve(out) }) })
}
