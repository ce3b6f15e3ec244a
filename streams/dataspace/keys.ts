/**
 * Key material under DATA_DIR/dataspace (0700):
 *
 * - `holder.secret`: 32 random bytes from which every permit's pseudonymisation and time-shift
 *   keys are derived. It never leaves DATA_DIR: only the data holder can reverse or re-link
 *   pseudonyms (EHDS Art. 66(3): the information needed to reverse pseudonymisation stays with
 *   the body that pseudonymised).
 * - `permit-signing.key` / `.pub`: Ed25519 keypair that signs data permits. The gateway verifies
 *   with the public key only; when the permits come from an outside health data access body, put
 *   its public key in `permit-signing.pub` and leave the private key out.
 * - `audit-signing.key` / `.pub`: Ed25519 keypair that signs the audit log's head.
 *
 * Private files are created 0600 and refused when others can read them, as ssh does. Files are
 * created exclusively (write a temp file, then link it into place), so the CLI and a running
 * gateway that start at once agree on one key.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto'
import { link, mkdir, open, readFile, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DataspaceError } from './errors.js'

export function dataspaceDir (dataDir: string): string { return join(dataDir, 'dataspace') }

export interface DataspaceKeys {
  /** Root of every per-permit key; never written anywhere else, never logged. */
  readonly holderSecret: Buffer
  readonly permitPublicKey: KeyObject
  /** null when only an outside authority's public key is installed. */
  readonly permitPrivateKey: KeyObject | null
  readonly auditPublicKey: KeyObject
  readonly auditPrivateKey: KeyObject
}

function isMissing (err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT'
}

/** Creates `path` with `content` unless it exists; never overwrites. */
async function createExclusive (path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  const fh = await open(tmp, 'wx', mode)
  try {
    await fh.writeFile(content)
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await link(tmp, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  } finally {
    await unlink(tmp).catch(() => {})
  }
}

async function readPrivate (path: string): Promise<string> {
  const st = await stat(path)
  // Group or world access to a secret is a misconfiguration worth stopping for.
  if ((st.mode & 0o077) !== 0) {
    throw new DataspaceError('AMB_ERR_DATASPACE_KEYS', `${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`)
  }
  return await readFile(path, 'utf8')
}

async function holderSecret (dir: string): Promise<Buffer> {
  const path = join(dir, 'holder.secret')
  try {
    await stat(path)
  } catch (err) {
    if (!isMissing(err)) throw err
    await createExclusive(path, randomBytes(32).toString('base64') + '\n', 0o600)
  }
  const secret = Buffer.from((await readPrivate(path)).trim(), 'base64')
  if (secret.length < 32) throw new DataspaceError('AMB_ERR_DATASPACE_KEYS', `${path} must hold at least 32 bytes (base64)`)
  return secret
}

interface KeyPair { publicKey: KeyObject, privateKey: KeyObject | null }

/** Loads `<name>.key` (deriving the public key), or only `<name>.pub`, or creates both. */
async function keyPair (dir: string, name: string, create: boolean): Promise<KeyPair> {
  const keyPath = join(dir, `${name}.key`)
  const pubPath = join(dir, `${name}.pub`)
  let pem: string | null = null
  try {
    pem = await readPrivate(keyPath)
  } catch (err) {
    if (!isMissing(err)) throw err
  }
  if (pem === null) {
    try {
      const publicKey = createPublicKey(await readFile(pubPath, 'utf8'))
      if (publicKey.asymmetricKeyType !== 'ed25519') throw new DataspaceError('AMB_ERR_DATASPACE_KEYS', `${pubPath} is not an Ed25519 public key`)
      return { publicKey, privateKey: null }
    } catch (err) {
      if (!isMissing(err) || !create) throw wrapKeyError(err, pubPath)
    }
    const { privateKey } = generateKeyPairSync('ed25519')
    await createExclusive(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600)
    pem = await readPrivate(keyPath)
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(pem)
  } catch (err) {
    throw wrapKeyError(err, keyPath)
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new DataspaceError('AMB_ERR_DATASPACE_KEYS', `${keyPath} is not an Ed25519 private key`)
  const publicKey = createPublicKey(privateKey)
  // The public half is for export (to whoever verifies); rewriting it is idempotent.
  await writeFile(pubPath, publicKey.export({ type: 'spki', format: 'pem' }).toString(), { mode: 0o644 })
  return { publicKey, privateKey }
}

function wrapKeyError (err: unknown, path: string): Error {
  if (err instanceof DataspaceError) return err
  return new DataspaceError('AMB_ERR_DATASPACE_KEYS', `cannot load ${path}: ${(err as Error).message}`, { cause: err })
}

/** Opens (creating what is missing) the dataspace's keys under `dataDir`. */
export async function openKeys (dataDir: string): Promise<DataspaceKeys> {
  const dir = dataspaceDir(dataDir)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const secret = await holderSecret(dir)
  const permit = await keyPair(dir, 'permit-signing', true)
  const audit = await keyPair(dir, 'audit-signing', true)
  if (audit.privateKey === null) throw new DataspaceError('AMB_ERR_DATASPACE_KEYS', `${join(dir, 'audit-signing.key')} is missing while its .pub exists`)
  return {
    holderSecret: secret,
    permitPublicKey: permit.publicKey,
    permitPrivateKey: permit.privateKey,
    auditPublicKey: audit.publicKey,
    auditPrivateKey: audit.privateKey
  }
}

/** The audit log's public key alone (what `ambulink audit verify` needs). */
export async function auditPublicKey (dataDir: string): Promise<KeyObject | null> {
  try {
    return createPublicKey(await readFile(join(dataspaceDir(dataDir), 'audit-signing.pub'), 'utf8'))
  } catch (err) {
    if (isMissing(err)) return null
    throw wrapKeyError(err, join(dataspaceDir(dataDir), 'audit-signing.pub'))
  }
}
