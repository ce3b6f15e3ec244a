/**
 * The HealthDCAT-AP catalogue as RDF, by maintained libraries rather than by hand: JSON-LD
 * compacted by `jsonld` (so what is served is what a JSON-LD processor reads back), Turtle
 * written by `n3` from the RDF that `jsonld` produces. The document's context is inline, so no
 * remote context is ever fetched.
 */
import jsonld from 'jsonld'
import { Parser, Writer } from 'n3'

/** The catalogue as compacted JSON-LD under its own context. */
export async function catalogJsonLd (doc: Record<string, unknown>): Promise<Record<string, unknown>> {
  const context = doc['@context'] as Record<string, string>
  return await jsonld.compact(doc as jsonld.JsonLdDocument, context) as Record<string, unknown>
}

/** The catalogue as Turtle, with the context's prefixes. Needs absolute IRIs (DATASPACE_PUBLIC_URL). */
export async function catalogTurtle (doc: Record<string, unknown>): Promise<string> {
  const nquads = await jsonld.toRDF(doc as jsonld.JsonLdDocument, { format: 'application/n-quads' }) as unknown as string
  const quads = new Parser({ format: 'N-Quads' }).parse(nquads)
  const writer = new Writer({ prefixes: doc['@context'] as Record<string, string> })
  writer.addQuads(quads)
  return await new Promise<string>((resolve, reject) => { writer.end((err: Error | null, out: string) => { if (err !== null) reject(err); else resolve(out) }) })
}
