/**
 * Device and user credentials under DATA_DIR/credentials.json. Only salted scrypt hashes are
 * stored; secrets are shown once, by the CLI, and never logged. The CLI writes the file
 * (atomically, under a lock file); a running gateway re-reads it when it changes, so adding or
 * revoking a credential takes effect without a restart.
 */
import { createHmac, randomBytes, randomUUID, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { constants as fsc } from 'node:fs'
import { mkdir, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LIMITS } from '../decoders/index.js'
import { AuthError } from './errors.js'

export type Role = 'clinician' | 'researcher' | 'admin'
export const ROLES: readonly Role[] = ['clinician', 'researcher', 'admin']

interface HashRecord { salt: string, hash: string, createdAt: string }
export type DeviceRecord = HashRecord
/**
 * `accountId`: random, assigned when a name is first added and kept across password resets and
 * role changes, never reused: a user removed and added again under the same name is a new
 * account, and what was bound to the old one (data permits) does not come back.
 */
export interface UserRecord extends HashRecord { role: Role, accountId?: string }

interface CredentialsFile {
  version: 1
  scrypt: { N: number, r: number, p: number, keylen: number }
  devices: Record<string, DeviceRecord>
  users: Record<string, UserRecord>
}

/** N=2^14, r=8: ~30 ms per check on a 2-core server; tokens are 256-bit random anyway. */
const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 }

function scrypt (secret: string, salt: Buffer, params: { N: number, r: number, p: number, keylen: number }): Promise<Buffer> {
  const opts: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 64 * 1024 * 1024 }
  return new Promise((resolve, reject) => {
    scryptCb(secret, salt, params.keylen, opts, (err, key) => { if (err) reject(err); else resolve(key) })
  })
}

function emptyFile (): CredentialsFile {
  return { version: 1, scrypt: SCRYPT, devices: {}, users: {} }
}

export function credentialsPath (dataDir: string): string { return join(dataDir, 'credentials.json') }

async function readCredentials (path: string): Promise<CredentialsFile> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as CredentialsFile
    if (parsed.version !== 1) throw new Error(`unsupported credentials file version ${String(parsed.version)}`)
    return parsed
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyFile()
    throw err
  }
}

async function hashSecret (secret: string): Promise<HashRecord> {
  const salt = randomBytes(16)
  const hash = await scrypt(secret, salt, SCRYPT)
  return { salt: salt.toString('base64'), hash: hash.toString('base64'), createdAt: new Date().toISOString() }
}

/** Runs `fn` on the file under an exclusive lock file, then writes it back atomically. */
async function mutate<T> (dataDir: string, fn: (f: CredentialsFile) => Promise<T> | T): Promise<T> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const path = credentialsPath(dataDir)
  const lock = path + '.lock'
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      const fh = await open(lock, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600)
      await fh.close()
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || Date.now() > deadline) throw err
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
  try {
    const file = await readCredentials(path)
    const result = await fn(file)
    const tmp = path + '.tmp'
    await writeFile(tmp, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 })
    await rename(tmp, path)
    return result
  } finally {
    await unlink(lock).catch(() => {})
  }
}

function newSecret (prefix: string): string {
  return prefix + randomBytes(32).toString('base64url')
}

/** CLI: creates (or replaces) a unit's token and returns it. Only its hash is stored. */
export async function addDevice (dataDir: string, unit: string): Promise<string> {
  if (!LIMITS.idPattern.test(unit)) throw new AuthError('AMB_ERR_BAD_NAME', `unit id must match ${LIMITS.idPattern.source}`)
  const token = newSecret('amb_')
  const rec = await hashSecret(token)
  await mutate(dataDir, f => {
    // One namespace: a unit named like a user would shadow the user (verify looks at units first).
    if (Object.hasOwn(f.users, unit)) throw new AuthError('AMB_ERR_BAD_NAME', `${unit} is already a user name`)
    f.devices[unit] = rec
  })
  return token
}

export async function revokeDevice (dataDir: string, unit: string): Promise<boolean> {
  if (!LIMITS.idPattern.test(unit)) throw new AuthError('AMB_ERR_BAD_NAME', `unit id must match ${LIMITS.idPattern.source}`)
  return await mutate(dataDir, f => {
    const had = Object.hasOwn(f.devices, unit)
    delete f.devices[unit]
    return had
  })
}

export async function listDevices (dataDir: string): Promise<Array<{ unit: string, createdAt: string }>> {
  const f = await readCredentials(credentialsPath(dataDir))
  return Object.entries(f.devices).map(([unit, d]) => ({ unit, createdAt: d.createdAt }))
}

/** CLI: creates (or resets) a user and returns the generated password. */
export async function addUser (dataDir: string, name: string, role: Role): Promise<string> {
  if (!LIMITS.idPattern.test(name)) throw new AuthError('AMB_ERR_BAD_NAME', `user name must match ${LIMITS.idPattern.source}`)
  if (!ROLES.includes(role)) throw new AuthError('AMB_ERR_BAD_NAME', `role must be one of ${ROLES.join(', ')}`)
  const password = newSecret('')
  const rec = await hashSecret(password)
  await mutate(dataDir, f => {
    if (Object.hasOwn(f.devices, name)) throw new AuthError('AMB_ERR_BAD_NAME', `${name} is already a unit id`)
    f.users[name] = { ...rec, role, accountId: f.users[name]?.accountId ?? randomUUID() }
  })
  return password
}

export async function revokeUser (dataDir: string, name: string): Promise<boolean> {
  if (!LIMITS.idPattern.test(name)) throw new AuthError('AMB_ERR_BAD_NAME', `user name must match ${LIMITS.idPattern.source}`)
  return await mutate(dataDir, f => {
    const had = Object.hasOwn(f.users, name)
    delete f.users[name]
    return had
  })
}

export async function listUsers (dataDir: string): Promise<Array<{ name: string, role: Role, createdAt: string, accountId: string | null }>> {
  const f = await readCredentials(credentialsPath(dataDir))
  return Object.entries(f.users).map(([name, u]) => ({ name, role: u.role, createdAt: u.createdAt, accountId: u.accountId ?? null }))
}

export type Principal =
  | { kind: 'device', unit: string }
  | { kind: 'user', name: string, role: Role }

/**
 * The gateway's view: verifies secrets against the file and follows its changes. Emits
 * `revoked` (principal name) when a device or user disappears, so live sessions can be cut.
 */
export class CredentialStore extends EventEmitter {
  private file: CredentialsFile = emptyFile()
  private version = ''
  private timer: NodeJS.Timeout | null = null
  /** Secrets already verified, as keyed digests (not the secrets), to skip scrypt on reconnects. */
  private readonly verified = new Map<string, { digest: Buffer, hash: string }>()
  private readonly cacheKey = randomBytes(32)
  private readonly path: string

  private constructor (dataDir: string) {
    super()
    this.path = credentialsPath(dataDir)
  }

  static async open (dataDir: string, pollMs: number): Promise<CredentialStore> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    const s = new CredentialStore(dataDir)
    await s.reload()
    if (pollMs > 0) {
      s.timer = setInterval(() => { s.reload().catch(err => { s.emit('error', err) }) }, pollMs)
      s.timer.unref()
    }
    return s
  }

  /** Re-reads the file when it changed. */
  async reload (): Promise<void> {
    let v: string
    try {
      const st = await stat(this.path)
      v = `${st.mtimeMs}:${st.size}:${st.ino}`
    } catch {
      v = 'none'
    }
    if (v === this.version) return
    const before = this.file
    this.file = await readCredentials(this.path)
    this.version = v
    for (const unit of Object.keys(before.devices)) {
      if (this.file.devices[unit]?.hash !== before.devices[unit]!.hash) this.forget(`d:${unit}`, unit)
    }
    for (const name of Object.keys(before.users)) {
      if (this.file.users[name]?.hash !== before.users[name]!.hash) this.forget(`u:${name}`, name)
    }
  }

  private forget (key: string, name: string): void {
    this.verified.delete(key)
    this.emit('revoked', name)
  }

  get deviceCount (): number { return Object.keys(this.file.devices).length }

  hasDevice (unit: string): boolean { return Object.hasOwn(this.file.devices, unit) }

  /** Whether `name` is a registered unit or user. */
  has (name: string): boolean { return this.hasDevice(name) || Object.hasOwn(this.file.users, name) }

  /**
   * Checks a name and secret. Resolves the principal, or null when they do not match (unknown
   * names cost the same scrypt as wrong secrets, so timing does not reveal which units exist).
   */
  async verify (name: string, secret: string): Promise<Principal | null> {
    // A name we do not know may have been added by the CLI since the last poll.
    if (!Object.hasOwn(this.file.devices, name) && !Object.hasOwn(this.file.users, name)) await this.reload()
    const dev = Object.hasOwn(this.file.devices, name) ? this.file.devices[name]! : undefined
    const user = dev === undefined && Object.hasOwn(this.file.users, name) ? this.file.users[name]! : undefined
    const rec: HashRecord | undefined = dev ?? user
    const key = dev !== undefined ? `d:${name}` : `u:${name}`
    const digest = createHmac('sha256', this.cacheKey).update(secret).digest()
    if (rec !== undefined) {
      const hit = this.verified.get(key)
      if (hit !== undefined && hit.hash === rec.hash && timingSafeEqual(hit.digest, digest)) {
        return dev !== undefined ? { kind: 'device', unit: name } : { kind: 'user', name, role: user!.role }
      }
    }
    const params = this.file.scrypt ?? SCRYPT
    const salt = rec !== undefined ? Buffer.from(rec.salt, 'base64') : this.cacheKey.subarray(0, 16)
    const computed = await scrypt(secret, salt, params)
    if (rec === undefined) return null
    const expected = Buffer.from(rec.hash, 'base64')
    if (expected.length !== computed.length || !timingSafeEqual(expected, computed)) return null
    // Revoked or replaced while scrypt ran: its `revoked` event has already gone out, so a
    // session admitted now would outlive the revocation.
    const current = dev !== undefined ? this.file.devices : this.file.users
    if (!Object.hasOwn(current, name) || current[name]!.hash !== rec.hash) return null
    this.verified.set(key, { digest, hash: rec.hash })
    return dev !== undefined ? { kind: 'device', unit: name } : { kind: 'user', name, role: user!.role }
  }

  close (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }
}
