// Issue 12, goal 4 (the gateway's fixed memory): packages that only some gateways need are loaded
// when first needed, not at start. Without REDIS_URL, the cluster's ioredis, mqemitter-redis and
// aedes-persistence-redis never load; jsonld and n3 load on the first catalogue request. Checked
// in a fresh Node process (tsx, as `npx ambulink` runs): what loading the CLI and the gateway's
// modules pulls in (packages are CommonJS: Node's module cache lists them), then what a
// catalogue in JSON-LD and Turtle adds.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

const SCRIPT = `
import { createRequire } from 'node:module'
const cache = createRequire(process.cwd() + '/').cache
const loaded = () => ['ioredis', 'mqemitter-redis', 'aedes-persistence-redis', 'jsonld', 'n3', 'fastify', 'pino']
  .filter(p => Object.keys(cache).some(k => k.includes('/node_modules/' + p + '/')))
await import('./cli/index.ts')
await import('./gateway/server.ts')
const atStart = loaded()
const { catalogJsonLd, catalogTurtle } = await import('./streams/index.ts')
const doc = { '@context': { dcat: 'http://www.w3.org/ns/dcat#', dct: 'http://purl.org/dc/terms/' }, '@id': 'https://example.org/catalog', '@type': 'dcat:Catalog', 'dct:title': 'x' }
const json = await catalogJsonLd(doc)
const ttl = await catalogTurtle(doc)
console.log(JSON.stringify({ atStart, afterCatalogue: loaded(), json, ttl }))
`

describe('packages loaded at start', () => {
  it('without REDIS_URL no Redis client, and no RDF library until the first catalogue', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      timeout: 120_000
    })
    const out = JSON.parse(stdout.trim().split('\n').pop()!) as { atStart: string[], afterCatalogue: string[], json: Record<string, unknown>, ttl: string }
    // The gateway's own packages are there (the check sees CommonJS packages at all)...
    expect(out.atStart).toEqual(expect.arrayContaining(['fastify', 'pino']))
    // ...the cluster's and the catalogue's (all CommonJS too) are not.
    expect(out.atStart).not.toContain('ioredis')
    expect(out.atStart).not.toContain('mqemitter-redis')
    expect(out.atStart).not.toContain('aedes-persistence-redis')
    expect(out.atStart).not.toContain('jsonld')
    expect(out.atStart).not.toContain('n3')
    // The first catalogue loads jsonld and n3, and is what it was.
    expect(out.afterCatalogue).toEqual(expect.arrayContaining(['jsonld', 'n3']))
    expect(out.json).toMatchObject({ '@id': 'https://example.org/catalog', '@type': 'dcat:Catalog', 'dct:title': 'x' })
    expect(out.ttl).toMatch(/<https:\/\/example\.org\/catalog> dct:title "x";\s*a dcat:Catalog\./)
  }, 120_000)
})
