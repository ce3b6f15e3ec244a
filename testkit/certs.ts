// Throw-away PKI for the TLS tests, made with the openssl CLI: a CA, a server certificate for
// 127.0.0.1 / localhost, client certificates whose CN is a unit id, and a second ("rogue") CA
// the gateway does not trust. EC P-256 keys: fast to generate. Valid for two days.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCommand } from './proc.js'

export interface KeyPair { cert: Buffer, key: Buffer, certFile: string, keyFile: string }

export interface TestPki {
  dir: string
  ca: KeyPair
  server: KeyPair
  /** A client certificate with this CN, signed by the trusted CA (or by the rogue CA). */
  client: (cn: string, opts?: { rogue?: boolean }) => Promise<KeyPair>
}

async function openssl (dir: string, args: string[]): Promise<void> {
  const r = await runCommand('openssl', args, { cwd: dir, timeoutMs: 20_000 })
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code}): ${r.stderr}`)
}

async function pair (dir: string, name: string): Promise<KeyPair> {
  const certFile = join(dir, `${name}.crt`)
  const keyFile = join(dir, `${name}.key`)
  return { cert: await readFile(certFile), key: await readFile(keyFile), certFile, keyFile }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']

async function makeCa (dir: string, name: string): Promise<KeyPair> {
  await openssl(dir, ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2',
    '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  return await pair(dir, name)
}

async function issue (dir: string, ca: string, name: string, cn: string, ext: string): Promise<KeyPair> {
  await openssl(dir, ['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`])
  await writeFile(join(dir, `${name}.ext`), ext)
  await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial',
    '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`])
  return await pair(dir, name)
}

/** Creates the PKI in `dir` (which the caller owns and removes). */
export async function makePki (dir: string): Promise<TestPki> {
  const ca = await makeCa(dir, 'test-ca')
  let rogueReady: Promise<KeyPair> | null = null
  const server = await issue(dir, 'test-ca', 'server', 'localhost',
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n')
  let n = 0
  return {
    dir,
    ca,
    server,
    client: async (cn, opts = {}) => {
      const signer = opts.rogue === true ? 'rogue-ca' : 'test-ca'
      if (opts.rogue === true) await (rogueReady ??= makeCa(dir, 'rogue-ca'))
      return await issue(dir, signer, `client-${++n}`, cn, 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n')
    }
  }
}
