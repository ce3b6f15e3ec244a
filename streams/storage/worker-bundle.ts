/**
 * A worker thread's TypeScript entry, bundled by esbuild into one JavaScript file, so the worker
 * starts without tsx. Run from the sources (bin/ambulink.js, vitest), a worker would otherwise
 * register tsx itself (on Node 20 a Worker does not inherit the loader hooks of its parent): a
 * loader-hook thread with its own V8 isolate for the worker's whole life, and every .ts file of
 * its module graph compiled in it at each start (issue 12, goal 4: the gateway's fixed memory).
 *
 * - Built once per process, on first use (esbuild's service process, which the dashboard bundle
 *   already starts); the JavaScript is written to a file and not kept in memory.
 * - Our sources are bundled; packages (node_modules) are not: each import becomes the absolute
 *   URL of the file Node would have loaded, so the worker loads the same package files as
 *   before, from wherever the bundle lies. `import.meta.url` keeps meaning the source file it is
 *   written in (decoders/schema.ts finds the .proto through it).
 * - The file is named by the SHA-256 of its content and checked against it before every worker
 *   start: a bundle of another version or checkout, a truncated or altered file, is never used
 *   (a file that does not match is built again). The folder is private to the user
 *   (0700, refused if another user owns it or may write to it).
 */
import { createHash } from 'node:crypto'
import { lstat, mkdir, readFile, readdir, unlink } from 'node:fs/promises'
import { isBuiltin } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build, type Plugin } from 'esbuild'
import { writeFileAtomic } from './durable.js'

export interface WorkerBundle {
  /** The bundle's path. */
  file: string
  /** SHA-256 of its content, hex (also in its name). */
  sha256: string
  bytes: number
  /** How long building it (and writing it, when it was not there yet) took, ms. */
  buildMs: number
  /** The file was written now (false: it was there already, with the same content). */
  written: boolean
}

/** Where bundles go: a folder of the user's own under the system's temporary folder. */
export function workerBundleDir (): string {
  return join(tmpdir(), `ambulink-workers-${process.getuid?.() ?? 'user'}`)
}

const built = new Map<string, Promise<WorkerBundle>>()

/**
 * The bundle of the worker entry `entry` (an absolute path to a .ts file), checked against its
 * content hash: built on the first call in this process, and built again when its file is gone
 * or differs from what was built (removed by a temp-folder cleaner, altered).
 */
export async function workerBundle (entry: string, name: string, dir = workerBundleDir()): Promise<WorkerBundle> {
  const key = `${dir}\0${entry}`
  let p = built.get(key)
  if (p !== undefined) {
    const b = await p.catch(() => null)
    if (b !== null && await holds(b)) return b
    if (built.get(key) === p) built.delete(key)
    p = built.get(key)
  }
  if (p === undefined) {
    p = bundleNow(entry, name, dir)
    built.set(key, p)
    p.catch(() => { if (built.get(key) === p) built.delete(key) })
  }
  return await p
}

/** The file still holds exactly the bundle that was built. */
async function holds (b: WorkerBundle): Promise<boolean> {
  const content = await readFile(b.file).catch(() => null)
  return content !== null && sha256(content) === b.sha256
}

async function bundleNow (entry: string, name: string, dir: string): Promise<WorkerBundle> {
  const t0 = performance.now()
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'node',
    // What tsx compiles for: the running Node.
    target: `node${process.versions.node}`,
    write: false,
    outfile: `${name}.mjs`,
    logLevel: 'silent',
    // Function and class names as in the sources (error names, stack traces), although bundling
    // renames clashing top-level names.
    keepNames: true,
    legalComments: 'none',
    plugins: [packagesByUrl, importMetaUrlPerFile]
  })
  const js = out.outputFiles.find(f => f.path.endsWith('.mjs'))
  if (js === undefined) throw new Error(`esbuild produced no bundle of ${name}`)
  const code = js.contents
  const hash = sha256(code)
  await privateDir(dir)
  const file = join(dir, `${name}-${hash.slice(0, 32)}.mjs`)
  const there = await readFile(file).catch(() => null)
  const written = there === null || sha256(there) !== hash
  if (written) {
    // Unique temp name, renamed over: a concurrent start of the same version never sees half a file.
    await writeFileAtomic(file, code, { mode: 0o600, noDirSync: true })
    await removeOtherBundles(dir, name, file)
  }
  return { file, sha256: hash, bytes: code.length, buildMs: performance.now() - t0, written }
}

/**
 * Bundles of `name` other than `keep` that are older than a day: left by earlier versions (a
 * checkout running now, of another version, keeps its file until it has run for a day; it
 * builds it again if it needs it after that).
 */
async function removeOtherBundles (dir: string, name: string, keep: string): Promise<void> {
  const dayAgo = Date.now() - 86_400_000
  for (const f of await readdir(dir).catch(() => [])) {
    const path = join(dir, f)
    if (path === keep || !f.startsWith(`${name}-`) || !f.endsWith('.mjs')) continue
    const st = await lstat(path).catch(() => null)
    if (st !== null && st.mtimeMs < dayAgo) await unlink(path).catch(() => {})
  }
}

/** Creates `dir` (0700) and refuses it unless it is a folder of this user's that nobody else may write to. */
async function privateDir (dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const st = await lstat(dir)
  const uid = process.getuid?.()
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} is not a private folder of this user: worker bundles are not written there`)
  }
}

function sha256 (data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/**
 * Packages stay outside the bundle, imported by the absolute URL of the file esbuild resolves
 * (with Node's conditions: `import`/`require`, `node`, `default`; `main` before `module`).
 */
const packagesByUrl: Plugin = {
  name: 'packages-by-url',
  setup (b) {
    b.onResolve({ filter: /^[^./]/ }, async args => {
      if (isBuiltin(args.path)) return { path: args.path, external: true }
      if ((args.pluginData as { inner?: boolean } | undefined)?.inner === true) return undefined
      const r = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { inner: true } })
      if (r.errors.length > 0) return { errors: r.errors }
      return { path: pathToFileURL(r.path).href, external: true }
    })
  }
}

/** `import.meta.url` (and `.dirname`, `.filename`) of each source file, not of the bundle. */
const importMetaUrlPerFile: Plugin = {
  name: 'import-meta-url-per-file',
  setup (b) {
    b.onLoad({ filter: /\.[cm]?ts$/ }, async args => {
      if (args.path.includes('/node_modules/')) return undefined
      const text = await readFile(args.path, 'utf8')
      if (!text.includes('import.meta.')) return undefined
      const url = pathToFileURL(args.path)
      const contents = text
        .replaceAll('import.meta.url', JSON.stringify(url.href))
        .replaceAll('import.meta.dirname', JSON.stringify(join(args.path, '..')))
        .replaceAll('import.meta.filename', JSON.stringify(args.path))
      return { contents, loader: 'ts' }
    })
  }
}
