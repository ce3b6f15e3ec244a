/**
 * Bulk credentials for benchmarks: writes DATA_DIR/credentials.json (the format of
 * gateway/credentials.ts) for thousands of units at once. `ambulink device add` rewrites the
 * whole file under a lock and runs scrypt once per unit, which is right for an operator and
 * quadratic for 10,000 units.
 *
 * Benchmark units share one token; each unit's record is the token's HMAC-SHA-256 under the
 * server key (credentials.key, created beside the file), bound to the unit id, exactly as
 * `ambulink device add` writes it, so logins cost what they cost in production. The clinician's
 * password is scrypt-hashed (scryptN). The DATA_DIR is a throwaway temp folder.
 */
import { createHmac, randomBytes, scrypt as scryptCb } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { serverKey } from '../gateway/credentials.js'

/** gateway/credentials.ts' parameters (~30 ms per check on this class of machine). */
export const PRODUCTION_SCRYPT_N = 16384

export interface BenchCredentials {
  /** The token every listed unit logs in with. */
  token: string
  /** Clinician user (subscribes to alerts/#). */
  clinician: { name: string, password: string }
}

function scrypt (secret: string, salt: Buffer, N: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(secret, salt, 32, { N, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (err, key) => { if (err) reject(err); else resolve(key) })
  })
}

/**
 * Writes credentials for `units` and one clinician into `dataDir`.
 * @param scryptN scrypt cost; lower only to iterate quickly (it changes login CPU, not memory)
 */
export async function writeBenchCredentials (dataDir: string, units: readonly string[], scryptN = PRODUCTION_SCRYPT_N): Promise<BenchCredentials> {
  const token = 'amb_' + randomBytes(32).toString('base64url')
  const password = randomBytes(24).toString('base64url')
  const createdAt = new Date().toISOString()
  const record = async (secret: string): Promise<{ salt: string, hash: string, createdAt: string }> => {
    const salt = randomBytes(16)
    return { salt: salt.toString('base64'), hash: (await scrypt(secret, salt, scryptN)).toString('base64'), createdAt }
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const key = await serverKey(dataDir)
  const devices: Record<string, { alg: 'hmac-sha256', hash: string, createdAt: string }> = {}
  for (const u of units) devices[u] = { alg: 'hmac-sha256', hash: createHmac('sha256', key).update(u).update('\0').update(token).digest('base64'), createdAt }
  const file = {
    version: 1,
    scrypt: { N: scryptN, r: 8, p: 1, keylen: 32 },
    devices,
    users: { 'bench-clinician': { ...(await record(password)), role: 'clinician' } }
  }
  await writeFile(join(dataDir, 'credentials.json'), JSON.stringify(file) + '\n', { mode: 0o600 })
  return { token, clinician: { name: 'bench-clinician', password } }
}

/** `prefix-0001`, `prefix-0002`, … (ids match the contract's id pattern). */
export function unitIds (prefix: string, count: number, from = 1): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(from + i).padStart(4, '0')}`)
}
