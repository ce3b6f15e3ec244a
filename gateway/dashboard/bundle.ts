/**
 * The page's TypeScript, bundled by esbuild into memory when the gateway starts: no build step
 * for anyone to forget, no stale `dist/` to serve, and the sources in `dashboard/src/` stay the
 * only copy. esbuild takes ~50 ms for this bundle; one build is shared by every gateway in the
 * process (tests start many), and a failed build is logged and answered with 500, not a crash.
 */
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

export const DASHBOARD_DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url))
const ENTRY = fileURLToPath(new URL('../../dashboard/src/main.ts', import.meta.url))

export interface Bundle {
  js: Buffer
  map: Buffer
  /** Strong ETag of the JS (content hash). */
  etag: string
}

let cached: Promise<Bundle> | null = null

async function bundleNow (): Promise<Bundle> {
  const out = await build({
    entryPoints: [ENTRY],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    minify: true,
    sourcemap: 'external',
    outfile: 'app.js',
    write: false,
    logLevel: 'silent',
    legalComments: 'none'
  })
  const js = out.outputFiles.find(f => f.path.endsWith('.js'))
  const map = out.outputFiles.find(f => f.path.endsWith('.js.map'))
  if (js === undefined || map === undefined) throw new Error('esbuild produced no app.js')
  const code = Buffer.from(js.contents)
  return { js: code, map: Buffer.from(map.contents), etag: `"${createHash('sha256').update(code).digest('base64url').slice(0, 22)}"` }
}

/** The bundle (built once per process; a failed build is retried on the next call). */
export function dashboardBundle (): Promise<Bundle> {
  if (cached === null) {
    cached = bundleNow()
    cached.catch(() => { cached = null })
  }
  return cached
}
