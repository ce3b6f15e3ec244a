// The real `ambulink` command line as a child process (node bin/ambulink.js, DATA_DIR in the
// environment): secrets printed alone on stdout and stored only as hashes, usage errors exit 2,
// and `serve` picks up credentials added by the CLI while it runs and stops cleanly on
// SIGTERM/SIGINT.
import { createHmac, scrypt } from 'node:crypto'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import mqtt, { type MqttClient } from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { encodeFrame } from '../decoders/index.js'
import { addDevice } from '../gateway/credentials.js'
import { makeTempDir, removeTempDir, runCommand, spawnManaged, waitFor, type CommandResult } from '../testkit/proc.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'bin', 'ambulink.js')

async function dataDir (): Promise<string> {
  const dir = await makeTempDir('ambulink-cli-')
  onTestFinished(() => removeTempDir(dir))
  return dir
}

function envFor (dir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // Only what the CLI needs: no INFLUX_*, METRICS_TOKEN… leaking in from the developer's shell.
  return { PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: dir, LOG_LEVEL: 'info', ...extra }
}

function cli (dir: string, ...args: string[]): Promise<CommandResult> {
  return runCommand(process.execPath, [BIN, ...args], { cwd: ROOT, env: envFor(dir), timeoutMs: 20_000 })
}

function scryptHash (secret: string, salt: Buffer, p: { N: number, r: number, p: number, keylen: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, p.keylen, { N: p.N, r: p.r, p: p.p, maxmem: 64 * 1024 * 1024 }, (err, key) => { if (err) reject(err); else resolve(key) })
  })
}

interface StoredFile {
  scrypt: { N: number, r: number, p: number, keylen: number }
  devices: Record<string, Record<string, string>>
  users: Record<string, Record<string, string>>
}

describe('ambulink device / user', () => {
  it('device add prints the token alone; only its HMAC under a 0600 server key is stored, in a 0600 file; list and revoke follow', async () => {
    const dir = await dataDir()
    const add = await cli(dir, 'device', 'add', 'amb-07')
    expect(add.code, add.stderr).toBe(0)
    expect(add.stdout).toMatch(/^amb_[A-Za-z0-9_-]{43}\n$/)
    const token = add.stdout.trimEnd()

    const path = join(dir, 'credentials.json')
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    const text = await readFile(path, 'utf8')
    expect(text).not.toContain(token)
    expect(text).not.toContain(token.slice(4)) // the random part, without its prefix
    expect(text).not.toContain(Buffer.from(token).toString('base64'))
    const file = JSON.parse(text) as StoredFile
    const rec = file.devices['amb-07']!
    expect(Object.keys(rec).sort()).toEqual(['alg', 'createdAt', 'hash'])
    // …and that hash is HMAC-SHA-256(key, unit \0 token) under the server key beside the file
    // (issue #10: device tokens are 256-bit random, so a fast keyed hash; scrypt for passwords).
    expect(rec.alg).toBe('hmac-sha256')
    const keyPath = join(dir, 'credentials.key')
    expect((await stat(keyPath)).mode & 0o777).toBe(0o600)
    const key = Buffer.from((await readFile(keyPath, 'utf8')).trim(), 'base64')
    expect(key.length).toBe(32)
    expect(createHmac('sha256', key).update('amb-07').update('\0').update(token).digest('base64')).toBe(rec.hash)
    // No lock or temp file left behind.
    expect((await readdir(dir)).sort()).toEqual(['credentials.json', 'credentials.key'])

    const list = await cli(dir, 'device', 'list')
    expect(list.code).toBe(0)
    expect(list.stdout).toMatch(/^amb-07\t\d{4}-\d\d-\d\dT[\d:.]+Z\n$/)
    expect(list.stdout).not.toContain(token)

    const revoke = await cli(dir, 'device', 'revoke', 'amb-07')
    expect(revoke.code).toBe(0)
    expect(revoke.stdout).toBe('')
    expect(revoke.stderr).toMatch(/revoked amb-07/)
    expect((JSON.parse(await readFile(path, 'utf8')) as StoredFile).devices).toEqual({})
  })

  it('bad unit names exit 2 with a message on stderr, and nothing is written', async () => {
    const dir = await dataDir()
    const results = await Promise.all([
      cli(dir, 'device', 'add', 'a b'),
      cli(dir, 'device', 'add', '../x'),
      cli(dir, 'device', 'revoke', 'units/+')
    ])
    for (const r of results) {
      expect(r.code, r.stderr).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr.trim().length).toBeGreaterThan(0)
      expect(r.stderr).not.toMatch(/\n\s+at /) // a message, not a stack trace
    }
    expect(results[0]!.stderr).toMatch(/unit id must match/)
    expect(await readdir(dir)).toEqual([])
  })

  it('user add prints the password alone; a bad or missing role, or an unknown option, exits 2', async () => {
    const dir = await dataDir()
    const add = await cli(dir, 'user', 'add', 'alice', '--role', 'clinician')
    expect(add.code, add.stderr).toBe(0)
    expect(add.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/)
    const password = add.stdout.trimEnd()
    expect(await readFile(join(dir, 'credentials.json'), 'utf8')).not.toContain(password)
    // Human passwords keep salted scrypt (an offline guess must stay costly).
    const stored = JSON.parse(await readFile(join(dir, 'credentials.json'), 'utf8')) as StoredFile
    const alice = stored.users.alice!
    expect((await scryptHash(password, Buffer.from(alice.salt!, 'base64'), stored.scrypt)).toString('base64')).toBe(alice.hash)

    const [list, badRole, typo, clash] = await Promise.all([
      cli(dir, 'user', 'list'),
      cli(dir, 'user', 'add', 'bob', '--role', 'superuser'),
      cli(dir, 'user', 'add', 'bob', '--rol', 'clinician'),
      // One namespace for units and users: a unit must not shadow a user.
      cli(dir, 'device', 'add', 'alice')
    ])
    expect(list.stdout).toMatch(/^alice\tclinician\t\S+\n$/)
    for (const r of [badRole, typo, clash]) {
      expect(r.code, r.stderr).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr).not.toMatch(/\n\s+at /)
    }
    expect(badRole.stderr).toMatch(/--role must be one of clinician, researcher, admin/)
    expect(typo.stderr).toMatch(/--rol/)
    expect(clash.stderr).toMatch(/alice is already a user/)
    const file = JSON.parse(await readFile(join(dir, 'credentials.json'), 'utf8')) as StoredFile
    expect(Object.keys(file.users)).toEqual(['alice'])
    expect(Object.keys(file.devices)).toEqual([])
  })
})

describe('ambulink serve', () => {
  interface Served { ports: { mqtt: number, http: number }, stdout: () => string, proc: ReturnType<typeof spawnManaged> }

  async function serve (dir: string): Promise<Served> {
    const proc = spawnManaged(process.execPath, [BIN, 'serve'], {
      cwd: ROOT,
      env: envFor(dir, { HOST: '127.0.0.1', MQTT_PORT: '0', HTTP_PORT: '0' })
    })
    onTestFinished(async () => { await proc.stop(2_000) })
    let out = ''
    proc.child.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString() })
    const ports = await waitFor(async () => {
      for (const line of out.split('\n')) {
        if (!line.includes('ambulink gateway listening')) continue
        const entry = JSON.parse(line) as { ports?: { mqtt?: unknown, http?: unknown } }
        if (typeof entry.ports?.mqtt === 'number' && typeof entry.ports.http === 'number') return { mqtt: entry.ports.mqtt, http: entry.ports.http }
      }
      return undefined
    }, { timeoutMs: 15_000, intervalMs: 20, what: 'the "ambulink gateway listening" log line', proc })
    return { ports, stdout: () => out, proc }
  }

  async function connectDevice (url: string, clientId: string, token: string): Promise<MqttClient> {
    const unit = clientId.split(':')[0]
    const client = await mqtt.connectAsync(url, { clientId, username: unit, password: token, reconnectPeriod: 0, protocolVersion: 4 })
    onTestFinished(async () => { await client.endAsync(true) })
    return client
  }

  // SIGTERM: the device is added by `ambulink device add`; SIGINT: by the same library call
  // (in-process, to spare a process start), i.e. the same file change.
  it.each(['SIGTERM', 'SIGINT'] as const)('accepts a device added after start, and exits 0 on %s with clients connected', async signal => {
    const dir = await dataDir()
    const gw = await serve(dir)
    expect(gw.proc.exitInfo).toBeUndefined()

    let token: string
    if (signal === 'SIGTERM') {
      const add = await cli(dir, 'device', 'add', 'amb-08')
      expect(add.code, add.stderr).toBe(0)
      token = add.stdout.trimEnd()
    } else {
      token = await addDevice(dir, 'amb-08')
    }
    // Accepted without a restart (how soon depends on the credentials poll; not a test's concern).
    const tcp = await waitFor(async () => await connectDevice(`mqtt://127.0.0.1:${gw.ports.mqtt}`, 'amb-08', token), { timeoutMs: 10_000, intervalMs: 100, what: 'amb-08 to be accepted' })
    const frame = Buffer.from(encodeFrame({ unitId: 'amb-08', bootId: 'b1', seq: 1, capturedAtMs: Date.now(), numerics: [{ sign: 1, value: 80, offsetMs: 0 }] }))
    await tcp.publishAsync('units/amb-08/telemetry', frame, { qos: 1 })
    const ws = await connectDevice(`ws://127.0.0.1:${gw.ports.http}/mqtt`, 'amb-08:ws', token)
    expect(ws.connected).toBe(true)
    const metrics = await (await fetch(`http://127.0.0.1:${gw.ports.http}/metrics`)).text()
    expect(metrics).toMatch(/^ambulink_frames_accepted_total\{transport="mqtt"\} 1$/m)

    expect(gw.proc.signal(signal)).toBe(true)
    // A bounded wait for the exit (generous: a loaded machine is slow, a hung close never ends).
    const exit = await Promise.race([gw.proc.exited, new Promise<null>(resolve => { setTimeout(() => { resolve(null) }, 20_000).unref() })])
    expect(exit, `still running 20 s after ${signal}:\n${gw.proc.output()}`).toEqual({ code: 0, signal: null })
    expect(gw.stdout()).toMatch(/"msg":"stopped"/)
    expect(gw.proc.output()).not.toContain(token)
  })
})
