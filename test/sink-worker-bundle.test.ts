// The sink worker's bundle (streams/storage/worker-bundle.ts, issue 12 goal 4): one JavaScript
// file named by the SHA-256 of its content in a folder private to the user, checked before every
// use, so a stale, altered or missing file is never started; packages imported by the URL of the
// file Node would load; the gateway's worker starts from it and logs so; a bundle that cannot
// be written leaves the worker starting through tsx as before, with a warning saying why. The drain through the bundle, with exact counts against a real
// InfluxDB, is in test/sink-worker.test.ts.
import { createHash } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { workerBundle } from '../streams/storage/worker-bundle.js'
import { startFakeInflux } from '../testkit/fake-influx.js'
import { startTestGateway } from '../testkit/gateway.js'

const ENTRY = fileURLToPath(new URL('../streams/storage/sink-worker.ts', import.meta.url))

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ambulink-bundle-test-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('the sink worker bundle', () => {
  it('is one file named by its content hash, in a private folder, importing packages by file URL and no tsx', async () => {
    const dir = join(await tempDir(), 'bundles')
    const b = await workerBundle(ENTRY, 'sink-worker', dir)
    const code = await readFile(b.file)
    expect(sha256(code)).toBe(b.sha256)
    expect(b.file).toBe(join(dir, `sink-worker-${b.sha256.slice(0, 32)}.mjs`))
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    expect((await stat(b.file)).mode & 0o777).toBe(0o600)
    const text = code.toString('utf8')
    // Our sources are inside; packages are not, but imported from where Node would load them.
    expect(text).toContain('FrameRecordExpander')
    expect(text).toContain(`from "${pathToFileURL(join(fileURLToPath(new URL('..', import.meta.url)), 'node_modules', 'protobufjs')).href}`)
    expect(text).not.toMatch(/from "(?!file:|node:)[^"]+"/)
    expect(text).not.toContain('tsx')
    // import.meta.url stays the source file's own (decoders/schema.ts finds the .proto with it).
    expect(text).toContain(JSON.stringify(new URL('../decoders/schema.ts', import.meta.url).href))
  }, 60_000)

  it('is checked before each use: an altered or missing file is built again, a bundle of another version is left alone', async () => {
    const dir = join(await tempDir(), 'bundles')
    const b = await workerBundle(ENTRY, 'sink-worker', dir)
    const good = await readFile(b.file)
    // Another version's bundle in the same folder: a different name, never picked.
    const other = join(dir, `sink-worker-${'0'.repeat(32)}.mjs`)
    await writeFile(other, 'throw new Error("another version")\n', { mode: 0o600 })
    // This version's file altered after it was built (same name, other content).
    await writeFile(b.file, 'throw new Error("altered")\n')
    const again = await workerBundle(ENTRY, 'sink-worker', dir)
    expect(again.file).toBe(b.file)
    expect(again.written).toBe(true)
    expect(sha256(await readFile(again.file))).toBe(b.sha256)
    expect(await readFile(again.file)).toEqual(good)
    // Gone (a temp-folder cleaner): built again.
    await rm(b.file)
    const third = await workerBundle(ENTRY, 'sink-worker', dir)
    expect(third.written).toBe(true)
    expect(sha256(await readFile(third.file))).toBe(b.sha256)
    // Unchanged: used as it is, not written again.
    const fourth = await workerBundle(ENTRY, 'sink-worker', dir)
    expect(fourth).toBe(third)
    // The other version's file is younger than a day: left for that version.
    expect((await readdir(dir)).sort()).toEqual([`sink-worker-${b.sha256.slice(0, 32)}.mjs`, `sink-worker-${'0'.repeat(32)}.mjs`].sort())
  }, 60_000)

  it('is not written into a folder other users may write to', async () => {
    const dir = join(await tempDir(), 'bundles')
    await mkdir(dir)
    await chmod(dir, 0o777)
    await expect(workerBundle(ENTRY, 'sink-worker', dir)).rejects.toThrow(/is not a private folder of this user/)
    expect(await readdir(dir)).toEqual([])
  }, 60_000)
})

describe('the gateway\'s sink worker thread', () => {
  it('starts from the bundle and logs it; a bundle that cannot be written: through tsx as before, with a warning saying why', async () => {
    const influx = await startFakeInflux(() => undefined)
    cleanups.push(() => influx.close())
    const a = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: 'bundle' })
    cleanups.push(() => a.close())
    await a.gw.sink!.whenReady()
    expect(a.gw.sink!.workerStart).toMatchObject({ entry: 'bundle', bundleError: null })
    expect(a.gw.sink!.workerStart!.startMs).toBeGreaterThan(0)
    expect(a.logs()).toMatch(/"entry":"bundle","startMs":\d+.*InfluxDB sink worker thread started/)
    expect(a.logs()).not.toMatch(/started through tsx/)

    // The bundles' folder under TMPDIR is open to other users: refused, the worker starts through tsx.
    const tmp = await tempDir()
    const bundles = join(tmp, `ambulink-workers-${process.getuid!()}`)
    await mkdir(bundles)
    await chmod(bundles, 0o777)
    const saved = process.env.TMPDIR
    process.env.TMPDIR = tmp
    cleanups.push(async () => {
      if (saved === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = saved
    })
    const b = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: 'tsx' })
    cleanups.push(() => b.close())
    await b.gw.sink!.whenReady()
    expect(b.gw.sink!.workerStart).toMatchObject({ entry: 'tsx', bundleError: expect.stringMatching(/is not a private folder of this user/) as unknown })
    expect(b.logs()).toMatch(/"entry":"tsx".*InfluxDB sink worker thread started/)
    expect(b.logs()).toMatch(/is not a private folder of this user.*InfluxDB sink worker thread started through tsx: its bundle could not be used/)
    expect(await readdir(bundles)).toEqual([])
  }, 180_000)
})
