/**
 * Device and user credentials under DATA_DIR/credentials.json. Only hashes are stored; secrets
 * are shown once, by the CLI, and never logged. The CLI writes the file (atomically, under a
 * lock file); a running gateway re-reads it when it changes, so adding or revoking a credential
 * takes effect without a restart.
 *
 * Two kinds of secret, two hashes (issue #10, item 11):
 * - Device tokens are 256 random bits ("amb_" + 43 base64url characters): guessing one is
 *   hopeless however fast the check, so they are verified with HMAC-SHA-256 under a server key
 *   (credentials.key, 0600, beside credentials.json) in microseconds. Nothing ever limits or
 *   delays a device login, so no one without the token can keep out the device that has it.
 * - Human passwords keep salted scrypt (~30 ms), which is what makes an offline guess costly.
 * Which check runs depends only on the shape of the secret presented, never on whether the name
 * exists, so the answer and its timing class do not reveal registered names. Device records
 * still in the old scrypt form verify as before and are re-hashed on their first success.
 */
import { createHmac, randomBytes, randomUUID, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { link, lstat, mkdir, readFile, readlink, stat, unlink, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { LIMITS } from '../decoders/index.js'
import { withFileLock, writeFileAtomic } from '../streams/index.js'
import { AuthError } from './errors.js'

export type Role = 'clinician' | 'researcher' | 'admin'
export const ROLES: readonly Role[] = ['clinician', 'researcher', 'admin']

interface HashRecord { salt: string, hash: string, createdAt: string }
/** A device token's HMAC-SHA-256 under the server key (base64). */
interface HmacRecord { alg: 'hmac-sha256', hash: string, createdAt: string }
/** Current devices are HMAC records; older files hold scrypt records (migrated on login). */
export type DeviceRecord = HmacRecord | (HashRecord & { alg?: undefined })
/**
 * `accountId`: random, assigned when a name is first added and kept across password resets and
 * role changes, never reused: a user removed and added again under the same name is a new
 * account, and what was bound to the old one (data permits) does not come back.
 * `view`: the team view a user's dashboard opens on until they choose their own (ed, cath, stroke).
 */
export interface UserRecord extends HashRecord { role: Role, accountId?: string, view?: DefaultView }
export type DefaultView = 'ed' | 'cath' | 'stroke'
export const DEFAULT_VIEWS: readonly DefaultView[] = ['ed', 'cath', 'stroke']

/** The shape of every device token the CLI issues: "amb_" + 32 random bytes in base64url. */
const DEVICE_TOKEN = /^amb_[A-Za-z0-9_-]{43}$/

/** Whether `secret` has the shape of a device token (checked by HMAC, never limited). */
export function isDeviceToken (secret: string): boolean { return DEVICE_TOKEN.test(secret) }

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

/**
 * Where credentials.json really lives: behind a symbolic link when several gateways share one
 * file (docs/scale-out.md). Writes go there (a rename over the link would replace it), and the
 * server key lives beside it so every process sharing the file shares the key.
 */
async function realCredentialsPath (dataDir: string): Promise<string> {
  const path = credentialsPath(dataDir)
  try {
    if ((await lstat(path)).isSymbolicLink()) return resolve(dirname(path), await readlink(path))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  return path
}

/** The HMAC key for device tokens: 32 random bytes, created once (0600), never logged. */
export async function serverKey (dataDir: string): Promise<Buffer> {
  const keyPath = join(dirname(await realCredentialsPath(dataDir)), 'credentials.key')
  try {
    return await readKey(keyPath)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 })
  // Written whole to a private name, then linked into place: link() fails if another process
  // (the CLI and a gateway starting together) won the race, and then its key is the key.
  const tmp = `${keyPath}.${process.pid}.${randomBytes(4).toString('hex')}`
  await writeFile(tmp, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' })
  try {
    await link(tmp, keyPath)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  } finally {
    await unlink(tmp).catch(() => {})
  }
  return await readKey(keyPath)
}

async function readKey (keyPath: string): Promise<Buffer> {
  const key = Buffer.from((await readFile(keyPath, 'utf8')).trim(), 'base64')
  if (key.length !== 32) throw new Error(`${keyPath} does not hold a 32-byte key`)
  return key
}

/** HMAC-SHA-256 of a unit's token, bound to the unit id (a record copied to another unit fails). */
function deviceDigest (key: Buffer, unit: string, token: string): Buffer {
  return createHmac('sha256', key).update(unit).update('\0').update(token).digest()
}

function hmacRecord (key: Buffer, unit: string, token: string): HmacRecord {
  return { alg: 'hmac-sha256', hash: deviceDigest(key, unit, token).toString('base64'), createdAt: new Date().toISOString() }
}

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
  const path = await realCredentialsPath(dataDir)
  return await withFileLock(path + '.lock', async () => {
    const file = await readCredentials(path)
    const result = await fn(file)
    await writeFileAtomic(path, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 })
    return result
  })
}

function newSecret (prefix: string): string {
  return prefix + randomBytes(32).toString('base64url')
}

/** CLI: creates (or replaces) a unit's token and returns it. Only its hash is stored. */
export async function addDevice (dataDir: string, unit: string): Promise<string> {
  if (!LIMITS.idPattern.test(unit)) throw new AuthError('AMB_ERR_BAD_NAME', `unit id must match ${LIMITS.idPattern.source}`)
  const token = newSecret('amb_')
  const rec = hmacRecord(await serverKey(dataDir), unit, token)
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

/** CLI: creates (or resets) a user and returns the generated password; `view` sets their default team view. */
export async function addUser (dataDir: string, name: string, role: Role, view?: DefaultView): Promise<string> {
  if (!LIMITS.idPattern.test(name)) throw new AuthError('AMB_ERR_BAD_NAME', `user name must match ${LIMITS.idPattern.source}`)
  if (!ROLES.includes(role)) throw new AuthError('AMB_ERR_BAD_NAME', `role must be one of ${ROLES.join(', ')}`)
  if (view !== undefined && !DEFAULT_VIEWS.includes(view)) throw new AuthError('AMB_ERR_DASHBOARD_BAD_REQUEST', `view must be one of ${DEFAULT_VIEWS.join(', ')}`)
  // 43 characters without the "amb_" prefix: never shaped like a device token.
  const password = newSecret('')
  const rec = await hashSecret(password)
  await mutate(dataDir, f => {
    if (Object.hasOwn(f.devices, name)) throw new AuthError('AMB_ERR_BAD_NAME', `${name} is already a unit id`)
    const accountId = f.users[name]?.accountId ?? randomUUID()
    f.users[name] = view === undefined ? { ...rec, role, accountId } : { ...rec, role, accountId, view }
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

/**
 * Gives every user added before accounts had ids a fresh random account id (issue #10, item 10),
 * under the credentials lock, written atomically (mutate: streams/storage/durable.ts). Returns how
 * many were given one. A fresh id binds nothing old: permits without an account id are refused,
 * and `permit grant` never issued one to such a user. Runs when the gateway opens the file and
 * whenever a command lists the users, so nobody has to be added again.
 */
export async function migrateAccountIds (dataDir: string): Promise<number> {
  const lacking = (f: CredentialsFile): UserRecord[] => Object.values(f.users).filter(u => typeof u.accountId !== 'string' || u.accountId === '')
  if (lacking(await readCredentials(await realCredentialsPath(dataDir))).length === 0) return 0
  return await mutate(dataDir, f => {
    const users = lacking(f)
    for (const u of users) u.accountId = randomUUID()
    return users.length
  })
}

export async function listUsers (dataDir: string): Promise<Array<{ name: string, role: Role, createdAt: string, accountId: string | null }>> {
  let f = await readCredentials(credentialsPath(dataDir))
  if (Object.values(f.users).some(u => typeof u.accountId !== 'string' || u.accountId === '')) {
    await migrateAccountIds(dataDir)
    f = await readCredentials(credentialsPath(dataDir))
  }
  return Object.entries(f.users).map(([name, u]) => ({ name, role: u.role, createdAt: u.createdAt, accountId: u.accountId ?? null }))
}

export type Principal =
  | { kind: 'device', unit: string }
  | { kind: 'user', name: string, role: Role }

/** verify() looks for changes to the file at most this often, ms (the poll covers the rest). */
const LOOK_MS = 100

/**
 * The gateway's view: verifies secrets against the file and follows its changes. Emits
 * `revoked` (principal name) when a device or user disappears, so live sessions can be cut.
 */
export class CredentialStore extends EventEmitter {
  private file: CredentialsFile = emptyFile()
  private version = ''
  private timer: NodeJS.Timeout | null = null
  /** User passwords already verified, as keyed digests (not the secrets), to skip scrypt on reconnects. */
  private readonly verified = new Map<string, { digest: Buffer, hash: string }>()
  private readonly cacheKey = randomBytes(32)
  /** Device records this store re-hashed from scrypt to HMAC: not a revocation when reloaded. */
  private readonly migrated = new Map<string, string>()
  /** Device records still in the scrypt form (while any remain, unknown names cost a scrypt too). */
  private legacyDevices = 0
  /** When verify() last looked at the file (ms). */
  private lastLook = 0

  private constructor (private readonly dataDir: string, private readonly key: Buffer) {
    super()
  }

  /** `onMigrated`: told how many users were given an account id at open (migrateAccountIds). */
  static async open (dataDir: string, pollMs: number, onMigrated?: (users: number) => void): Promise<CredentialStore> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    const migrated = await migrateAccountIds(dataDir)
    if (migrated > 0) onMigrated?.(migrated)
    const s = new CredentialStore(dataDir, await serverKey(dataDir))
    await s.reload()
    if (pollMs > 0) {
      s.timer = setInterval(() => { s.reload().catch(err => { s.emit('error', err) }) }, pollMs)
      s.timer.unref()
    }
    return s
  }

  /** Re-reads the file when it changed. */
  async reload (): Promise<void> {
    const path = credentialsPath(this.dataDir)
    let v: string
    try {
      const st = await stat(path)
      v = `${st.mtimeMs}:${st.size}:${st.ino}`
    } catch {
      v = 'none'
    }
    if (v === this.version) return
    const before = this.file
    this.file = await readCredentials(path)
    this.version = v
    this.legacyDevices = Object.values(this.file.devices).filter(d => d.alg !== 'hmac-sha256').length
    for (const unit of Object.keys(before.devices)) {
      const now = this.file.devices[unit]?.hash
      if (now === before.devices[unit]!.hash) continue
      if (now !== undefined && this.migrated.get(unit) === now) continue
      this.forget(`d:${unit}`, unit)
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

  /** The team view an admin set for `name` (`user add --view`), if any. */
  defaultView (name: string): DefaultView | undefined {
    const v = Object.hasOwn(this.file.users, name) ? this.file.users[name]!.view : undefined
    return v !== undefined && DEFAULT_VIEWS.includes(v) ? v : undefined
  }

  /** Whether `name` is a registered unit or user. */
  has (name: string): boolean { return this.hasDevice(name) || Object.hasOwn(this.file.users, name) }

  /**
   * Checks a name and secret. Resolves the principal, or null when they do not match. The work
   * done depends on the secret's shape, not on the name: a token-shaped secret costs one HMAC
   * (plus one scrypt while old scrypt device records remain), any other secret one scrypt, so
   * unknown and registered names get the same answer in the same time class.
   */
  async verify (name: string, secret: string): Promise<Principal | null> {
    // The CLI may have added the name since the last poll. Looked at whatever the name, known or
    // not (looking only for unknown ones would make them answer measurably later), and at most
    // every LOOK_MS, so HTTP telemetry does not stat the file for every frame.
    const now = Date.now()
    let looked = false
    if (now - this.lastLook >= LOOK_MS) {
      this.lastLook = now
      looked = true
      await this.reload()
    }
    const check = async (): Promise<Principal | null> => isDeviceToken(secret) ? await this.verifyToken(name, secret) : await this.verifyPassword(name, secret)
    const checkedAgainst = this.version
    const found = await check()
    if (found !== null) return found
    // A failure looks at the file once more before it is final: a name added by the CLI a moment
    // ago (within LOOK_MS of the last look, or while scrypt ran and a poll reloaded the file)
    // must not be refused. Every failing name takes this path, known or not, so it reveals
    // nothing about which names exist.
    if (!looked) {
      this.lastLook = Date.now()
      await this.reload()
    }
    return this.version === checkedAgainst ? null : await check()
  }

  private async verifyToken (unit: string, token: string): Promise<Principal | null> {
    const rec = Object.hasOwn(this.file.devices, unit) ? this.file.devices[unit]! : undefined
    const digest = deviceDigest(this.key, unit, token)
    if (rec?.alg === 'hmac-sha256') {
      const expected = Buffer.from(rec.hash, 'base64')
      return expected.length === digest.length && timingSafeEqual(expected, digest) ? { kind: 'device', unit } : null
    }
    if (rec === undefined) {
      // Same cost as a registered unit in the old form, while there are any.
      if (this.legacyDevices > 0) await scrypt(token, this.cacheKey.subarray(0, 16), this.file.scrypt ?? SCRYPT)
      return null
    }
    const computed = await scrypt(token, Buffer.from(rec.salt, 'base64'), this.file.scrypt ?? SCRYPT)
    const expected = Buffer.from(rec.hash, 'base64')
    if (expected.length !== computed.length || !timingSafeEqual(expected, computed)) return null
    // Revoked or replaced while scrypt ran: its `revoked` event has already gone out.
    if (this.file.devices[unit]?.hash !== rec.hash) return null
    this.migrate(unit, rec.hash, token)
    return { kind: 'device', unit }
  }

  /** Re-hashes a scrypt device record as HMAC, unless the CLI changed it meanwhile. */
  private migrate (unit: string, oldHash: string, token: string): void {
    const rec = hmacRecord(this.key, unit, token)
    this.migrated.set(unit, rec.hash)
    mutate(this.dataDir, f => {
      if (f.devices[unit]?.hash === oldHash) f.devices[unit] = rec
    }).then(() => this.reload()).catch(err => { this.emit('error', err) })
  }

  private async verifyPassword (name: string, secret: string): Promise<Principal | null> {
    const user = Object.hasOwn(this.file.users, name) ? this.file.users[name]! : undefined
    const key = `u:${name}`
    const digest = createHmac('sha256', this.cacheKey).update(secret).digest()
    if (user !== undefined) {
      const hit = this.verified.get(key)
      if (hit !== undefined && hit.hash === user.hash && timingSafeEqual(hit.digest, digest)) return { kind: 'user', name, role: user.role }
    }
    const salt = user !== undefined ? Buffer.from(user.salt, 'base64') : this.cacheKey.subarray(0, 16)
    const computed = await scrypt(secret, salt, this.file.scrypt ?? SCRYPT)
    if (user === undefined) return null
    const expected = Buffer.from(user.hash, 'base64')
    if (expected.length !== computed.length || !timingSafeEqual(expected, computed)) return null
    // Revoked or replaced while scrypt ran: its `revoked` event has already gone out, so a
    // session admitted now would outlive the revocation.
    if (this.file.users[name]?.hash !== user.hash) return null
    this.verified.set(key, { digest, hash: user.hash })
    return { kind: 'user', name, role: user.role }
  }

  close (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }
}
