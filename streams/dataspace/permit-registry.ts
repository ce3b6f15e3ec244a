/**
 * The holder's record of permits, under DATA_DIR/dataspace:
 * - `permits.jsonl`: one line per granted permit (its claims, never the token: a stored token
 *   would be a credential at rest);
 * - `revocations.jsonl`: one line per revoked permit id.
 *
 * Both are append-only JSON lines, written by the CLI with O_APPEND in one write each. The
 * gateway's `Revocations` follows the revocation file by its stat (checked on every access and
 * on a timer), so `ambulink permit revoke` takes effect on a running gateway without a restart.
 */
import { EventEmitter } from 'node:events'
import { appendFile, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { dataspaceDir } from './keys.js'
import type { Permit } from './permit.js'

export function permitsPath (dataDir: string): string { return join(dataspaceDir(dataDir), 'permits.jsonl') }
export function revocationsPath (dataDir: string): string { return join(dataspaceDir(dataDir), 'revocations.jsonl') }

async function readLines (path: string): Promise<unknown[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const out: unknown[] = []
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    try { out.push(JSON.parse(line)) } catch { /* a torn last line from a crash: skip it */ }
  }
  return out
}

export async function recordGrant (dataDir: string, p: Permit): Promise<void> {
  await appendFile(permitsPath(dataDir), JSON.stringify(p) + '\n', { mode: 0o600 })
}

export async function listGrants (dataDir: string): Promise<Permit[]> {
  return (await readLines(permitsPath(dataDir))).filter((p): p is Permit => typeof (p as Permit)?.id === 'string')
}

export interface Revocation { id: string, at: string, reason: string }

export async function recordRevocation (dataDir: string, id: string, reason: string): Promise<void> {
  const r: Revocation = { id, at: new Date().toISOString(), reason }
  await appendFile(revocationsPath(dataDir), JSON.stringify(r) + '\n', { mode: 0o600 })
}

export async function listRevocations (dataDir: string): Promise<Revocation[]> {
  return (await readLines(revocationsPath(dataDir))).filter((r): r is Revocation => typeof (r as Revocation)?.id === 'string')
}

export interface RevocationEvents {
  /** Ids revoked since the last reload. */
  revoked: [ids: string[]]
  error: [err: Error]
}

/** The gateway's view of the revocation list. */
export class Revocations extends EventEmitter<RevocationEvents> {
  private ids = new Set<string>()
  private version = ''
  private timer: NodeJS.Timeout | null = null
  private loading: Promise<void> | null = null

  private constructor (private readonly dataDir: string) { super() }

  static async open (dataDir: string, pollMs: number): Promise<Revocations> {
    const r = new Revocations(dataDir)
    await r.refresh()
    if (pollMs > 0) {
      r.timer = setInterval(() => { r.refresh().catch(err => { r.emit('error', err as Error) }) }, pollMs)
      r.timer.unref()
    }
    return r
  }

  /** Re-reads the file if it changed (one stat when it did not). */
  refresh (): Promise<void> {
    this.loading ??= this.load().finally(() => { this.loading = null })
    return this.loading
  }

  private async load (): Promise<void> {
    const path = revocationsPath(this.dataDir)
    let v: string
    try {
      const st = await stat(path)
      v = `${st.mtimeMs}:${st.size}:${st.ino}`
    } catch {
      v = 'none'
    }
    if (v === this.version) return
    const next = new Set((await listRevocations(this.dataDir)).map(r => r.id))
    const added = [...next].filter(id => !this.ids.has(id))
    this.ids = next
    this.version = v
    if (added.length > 0) this.emit('revoked', added)
  }

  has (id: string): boolean { return this.ids.has(id) }

  close (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }
}
