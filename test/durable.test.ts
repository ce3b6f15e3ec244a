// The durable-file layer (streams/storage/durable.ts): atomic replacement, and a lock file that a
// crashed process cannot leave behind for good. The stale lock is left by a real process killed
// with SIGKILL while holding it, then the real CLI must still add a device.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { withFileLock, writeFileAtomic } from '../streams/storage/durable.js'
import { makeTempDir, removeTempDir, runCommand } from '../testkit/proc.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

async function tempDir (): Promise<string> {
  const dir = await makeTempDir('ambulink-durable-')
  onTestFinished(() => removeTempDir(dir))
  return dir
}

describe('durable files', () => {
  it('writeFileAtomic replaces the file whole, with its mode, and leaves no temp file', async () => {
    const dir = await tempDir()
    const path = join(dir, 'x.json')
    await writeFileAtomic(path, 'one')
    await writeFileAtomic(path, 'two', { mode: 0o600 })
    expect(await readFile(path, 'utf8')).toBe('two')
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect(await readdir(dir)).toEqual(['x.json'])
  })

  it('the lock serialises writers in one process', async () => {
    const dir = await tempDir()
    const lock = join(dir, 'f.lock')
    const log: string[] = []
    await Promise.all([1, 2, 3].map(i => withFileLock(lock, async () => {
      log.push(`in ${i}`)
      await new Promise(resolve => setImmediate(resolve))
      log.push(`out ${i}`)
    }, { retryMs: 1 })))
    // No two holders overlap: every "in" is followed by its own "out".
    for (let k = 0; k < log.length; k += 2) expect(log[k + 1]).toBe(log[k]!.replace('in', 'out'))
  })

  it('a lock held by a live process times out with a coded error naming the pid', async () => {
    const dir = await tempDir()
    const lock = join(dir, 'f.lock')
    await writeFile(lock, `${process.ppid}\n`)
    await expect(withFileLock(lock, async () => {}, { timeoutMs: 100, retryMs: 10 })).rejects.toMatchObject({ code: 'AMB_ERR_LOCK_TIMEOUT', owner: process.ppid })
  })

  it('a stale lock left by a killed process no longer blocks `ambulink device add`', async () => {
    const dir = await tempDir()
    const lock = join(dir, 'credentials.json.lock')
    // A real process takes the credentials lock through the same code, says so, and is killed.
    const holder = spawn(process.execPath, ['--import', 'tsx', '-e', `
      const { withFileLock } = await import(${JSON.stringify(join(ROOT, 'streams/storage/durable.ts'))})
      await withFileLock(${JSON.stringify(lock)}, () => { console.log('locked'); return new Promise(() => {}) })
    `], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    onTestFinished(() => { holder.kill('SIGKILL') })
    const [first] = await once(holder.stdout, 'data') as [Buffer]
    expect(first.toString()).toContain('locked')
    holder.kill('SIGKILL')
    await once(holder, 'exit')
    expect(Number(await readFile(lock, 'utf8'))).toBe(holder.pid)

    const r = await runCommand(process.execPath, [join(ROOT, 'bin/ambulink.js'), 'device', 'add', 'amb-stale'], {
      cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: dir }, timeoutMs: 30_000
    })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).not.toBe('')
    const file = JSON.parse(await readFile(join(dir, 'credentials.json'), 'utf8')) as { devices: Record<string, unknown> }
    expect(Object.keys(file.devices)).toEqual(['amb-stale'])
    expect((await readdir(dir)).filter(f => f.endsWith('.lock'))).toEqual([])
  }, 60_000)
})
