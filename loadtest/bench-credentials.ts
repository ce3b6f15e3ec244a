/**
 * Bulk credentials for benchmarks: writes DATA_DIR/credentials.json (the format of
 * gateway/credentials.ts) for thousands of units at once. `ambulink device add` rewrites the
 * whole file under a lock and runs scrypt once per unit, which is right for an operator and
 * quadratic for 10,000 units.
 *
 * Benchmark units share one token, so the file costs one scrypt; the gateway still runs scrypt
 * once per unit at its first login (its cache is per unit), as it would in production. The
 * DATA_DIR is a throwaway temp folder.
 */
import { randomBytes, scrypt as scryptCb } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

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
  const unitRecord = await record(token)
  const devices: Record<string, typeof unitRecord> = {}
  for (const u of units) devices[u] = unitRecord
  const file = {
    version: 1,
    scrypt: { N: scryptN, r: 8, p: 1, keylen: 32 },
    devices,
    users: { 'bench-clinician': { ...(await record(password)), role: 'clinician' } }
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  await writeFile(join(dataDir, 'credentials.json'), JSON.stringify(file) + '\n', { mode: 0o600 })
  return { token, clinician: { name: 'bench-clinician', password } }
}

/** `prefix-0001`, `prefix-0002`, … (ids match the contract's id pattern). */
export function unitIds (prefix: string, count: number, from = 1): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${String(from + i).padStart(4, '0')}`)
}
