/**
 * The access log: every dataspace access, granted or refused, and every permit granted or
 * revoked, appended to DATA_DIR/dataspace/audit.log as JSON lines, each fsync'd before the data
 * it records leaves the gateway.
 *
 * Tamper evidence:
 * - each entry carries `prev`, the hash of the entry before it, and `hash`, SHA-256 over its own
 *   bytes (everything but the hash field): editing a byte breaks that entry's hash, removing or
 *   reordering entries breaks the next entry's `prev` or the sequence;
 * - removing entries from the end leaves a valid but shorter chain, so the last entry's
 *   (seq, hash) is also kept in a head file signed with the audit key (Ed25519), rewritten
 *   atomically after each append. The head can live elsewhere (DATASPACE_AUDIT_HEAD): on another
 *   volume, or shipped to a witness, so that deleting both files is caught too.
 *
 * Appends from the gateway and the CLI are serialised by a lock file (and a queue in-process).
 * A crash between the append and the head update leaves the log one entry ahead of its head;
 * the next append carries on from there. Anything else that does not add up (head ahead of the
 * log, a log far ahead of its head, a missing head) is recorded as an `audit.anomaly` entry, and
 * `verify` fails for as long as the chain holds one: the evidence is never repaired away.
 */
import { createHash, sign, verify as verifySig, type KeyObject } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { LockTimeoutError, withFileLock, writeFileAtomic } from '../storage/durable.js'
import { DataspaceError } from './errors.js'
import { dataspaceDir } from './keys.js'

export type AuditKind = 'extract' | 'stream' | 'permit.grant' | 'permit.revoke' | 'audit.recovered' | 'audit.anomaly'
export type AuditOutcome = 'granted' | 'refused' | 'completed' | 'aborted' | 'closed' | 'recorded'

/** What is recorded. Never patient identifiers, tokens or secrets. */
export interface AuditEvent {
  kind: AuditKind
  outcome: AuditOutcome
  status?: number
  code?: string
  reason?: string
  permit?: string | null
  researcher?: string
  dataset?: string
  format?: string
  fields?: string[]
  from?: string
  to?: string
  level?: string
  purpose?: string
  rows?: number
  suppressedRows?: number
  suppressedEncounters?: number
  encounters?: number | null
  bytes?: number
  durationMs?: number
  ip?: string
}

export interface AuditEntry extends AuditEvent {
  seq: number
  at: string
  prev: string
  hash: string
}

interface Head { seq: number, hash: string, at: string, sig: string }

const ZERO = '0'.repeat(64)
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/
const TAIL_BYTES = 256 * 1024

export function auditLogPath (dataDir: string): string { return join(dataspaceDir(dataDir), 'audit.log') }
export function defaultAuditHeadPath (dataDir: string): string { return join(dataspaceDir(dataDir), 'audit.head.json') }

function sha256 (s: string): string { return createHash('sha256').update(s).digest('hex') }

function headMessage (seq: number, hash: string): Buffer { return Buffer.from(`ambulink-audit-head/v1\n${seq}\n${hash}`) }

/** Splits a stored line into its hashed body and its hash; null when it is not one of ours. */
function parseLine (line: string): { entry: AuditEntry, body: string, hash: string } | null {
  const m = HASH_SUFFIX.exec(line)
  if (m === null) return null
  const body = line.slice(0, m.index) + '}'
  try {
    const entry = JSON.parse(line) as AuditEntry
    return { entry, body, hash: m[1]! }
  } catch {
    return null
  }
}

async function readHead (path: string): Promise<Head | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Head
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    // An unreadable head is itself evidence; callers treat it as a mismatch.
    return { seq: -1, hash: '', at: '', sig: '' }
  }
}

/** The log's last complete line and any torn bytes after it. */
async function readTail (path: string): Promise<{ last: ReturnType<typeof parseLine>, size: number, tornFrom: number | null }> {
  let fh
  try {
    fh = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { last: null, size: 0, tornFrom: null }
    throw err
  }
  try {
    const { size } = await fh.stat()
    const start = Math.max(0, size - TAIL_BYTES)
    const buf = Buffer.alloc(size - start)
    await fh.read(buf, 0, buf.length, start)
    const text = buf.toString('utf8')
    const end = text.lastIndexOf('\n')
    const tornFrom = end === text.length - 1 ? null : start + Buffer.byteLength(text.slice(0, end + 1))
    const complete = end < 0 ? '' : text.slice(0, end)
    const lastLine = complete.slice(complete.lastIndexOf('\n') + 1)
    return { last: lastLine === '' ? null : parseLine(lastLine), size, tornFrom: size === 0 ? null : tornFrom }
  } finally {
    await fh.close()
  }
}

/** Cross-process exclusive lock (streams/storage/durable.ts: pid inside, stale locks broken). */
async function withLock<T> (path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await withFileLock(path, fn, { retryMs: 5 })
  } catch (err) {
    if (err instanceof LockTimeoutError) throw new DataspaceError('AMB_ERR_AUDIT_UNAVAILABLE', `audit lock ${path} held too long by pid ${err.owner}`, { retryAfterMs: 1000 })
    throw err
  }
}

export interface AuditLogOptions {
  logPath: string
  headPath: string
  privateKey: KeyObject
  publicKey: KeyObject
  /** Told about anomalies found while appending (for the operator's log and a metric). */
  onAnomaly?: (message: string) => void
}

export class AuditLog {
  private queue: Promise<unknown> = Promise.resolve()
  private closed = false

  private constructor (private readonly o: AuditLogOptions) {}

  static async open (o: AuditLogOptions): Promise<AuditLog> {
    await mkdir(dirname(o.logPath), { recursive: true, mode: 0o700 })
    await mkdir(dirname(o.headPath), { recursive: true, mode: 0o700 })
    return new AuditLog(o)
  }

  /** Appends one event; resolves once it (and the new head) are on disk. */
  append (event: AuditEvent): Promise<AuditEntry> {
    if (this.closed) return Promise.reject(new DataspaceError('AMB_ERR_AUDIT_UNAVAILABLE', 'audit log closed'))
    const p = this.queue.then(() => withLock(this.o.logPath + '.lock', () => this.appendLocked(event)))
    this.queue = p.catch(() => {})
    return p.catch((err: unknown) => {
      if (err instanceof DataspaceError) throw err
      throw new DataspaceError('AMB_ERR_AUDIT_UNAVAILABLE', `audit log append failed: ${(err as Error).message}`, { cause: err, retryAfterMs: 1000 })
    })
  }

  private async appendLocked (event: AuditEvent): Promise<AuditEntry> {
    const tail = await readTail(this.o.logPath)
    const head = await readHead(this.o.headPath)
    let seq = tail.last?.entry.seq ?? 0
    let prev = tail.last?.hash ?? ZERO
    const anomalies: string[] = []
    const recovered: string[] = []

    if (tail.tornFrom !== null) {
      // A torn last line is a crash mid-append; it was never acknowledged (the head was not moved).
      if (head !== null && head.seq === seq && head.hash === prev) {
        const fh = await open(this.o.logPath, 'r+')
        try { await fh.truncate(tail.tornFrom); await fh.sync() } finally { await fh.close() }
        recovered.push(`removed ${tail.size - tail.tornFrom} torn bytes after entry ${seq}`)
      } else {
        anomalies.push(`the log ends in ${tail.size - tail.tornFrom} bytes that are not an entry`)
        await this.writeRaw('\n')
      }
    }
    if (head === null) {
      if (seq !== 0) anomalies.push(`the signed head is missing while the log holds ${seq} entries`)
    } else if (head.seq === seq && head.hash === prev) {
      // in step
    } else if (head.seq === seq - 1 && tail.last?.entry.prev === head.hash) {
      recovered.push(`entry ${seq} was appended but the head not updated (crash); head moved on`)
    } else if (head.seq > seq) {
      anomalies.push(`the signed head is at entry ${head.seq} but the log ends at ${seq}: entries were removed`)
      // Chain on from the head, so the gap stays visible to every later verify.
      seq = head.seq
      prev = head.hash
    } else {
      anomalies.push(`the log (entry ${seq}) does not end at its signed head (entry ${head.seq})`)
    }

    for (const message of anomalies) {
      this.o.onAnomaly?.(message)
      ;({ seq, prev } = await this.write({ kind: 'audit.anomaly', outcome: 'recorded', reason: message }, seq, prev))
    }
    for (const message of recovered) ({ seq, prev } = await this.write({ kind: 'audit.recovered', outcome: 'recorded', reason: message }, seq, prev))
    const { entry } = await this.write(event, seq, prev)
    await this.writeHead(entry.seq, entry.hash)
    return entry
  }

  private async writeRaw (text: string): Promise<void> {
    const fh = await open(this.o.logPath, 'a', 0o600)
    try {
      await fh.write(text)
      await fh.sync()
    } finally {
      await fh.close()
    }
  }

  private async write (event: AuditEvent, lastSeq: number, prev: string): Promise<{ entry: AuditEntry, seq: number, prev: string }> {
    const seq = lastSeq + 1
    const body = JSON.stringify({ seq, at: new Date().toISOString(), prev, ...event })
    const hash = sha256(body)
    await this.writeRaw(body.slice(0, -1) + `,"hash":"${hash}"}\n`)
    return { entry: { ...(JSON.parse(body) as Omit<AuditEntry, 'hash'>), hash }, seq, prev: hash }
  }

  private async writeHead (seq: number, hash: string): Promise<void> {
    const head: Head = { seq, hash, at: new Date().toISOString(), sig: sign(null, headMessage(seq, hash), this.o.privateKey).toString('base64') }
    await writeFileAtomic(this.o.headPath, JSON.stringify(head) + '\n')
  }

  /** Waits for pending appends; later appends are refused. Safe to call twice. */
  async close (): Promise<void> {
    this.closed = true
    await this.queue
  }
}

export interface VerifyResult {
  ok: boolean
  entries: number
  /** What is wrong, each naming the entry (line) concerned. */
  errors: string[]
  /** Things worth knowing that are not tampering (crash recoveries, unsigned trailing entries). */
  notes: string[]
}

/** Checks the whole chain and the signed head. */
export async function verifyAudit (o: { logPath: string, headPath: string, publicKey: KeyObject | null }): Promise<VerifyResult> {
  const errors: string[] = []
  const notes: string[] = []
  // The head first: entries appended while we read the log are then merely "after the head".
  const head = await readHead(o.headPath)
  let entries = 0
  let prev = ZERO
  let lastSeq = 0
  let exists = true
  try { await stat(o.logPath) } catch { exists = false }
  if (exists) {
    const rl = createInterface({ input: createReadStream(o.logPath, { encoding: 'utf8' }), crlfDelay: Infinity })
    let lineNo = 0
    for await (const line of rl) {
      lineNo++
      if (line === '' ) { errors.push(`line ${lineNo}: empty line`); continue }
      const p = parseLine(line)
      if (p === null) { errors.push(`line ${lineNo}: not an audit entry (altered?)`); continue }
      entries++
      if (sha256(p.body) !== p.hash) errors.push(`line ${lineNo} (entry ${p.entry.seq}): hash does not match its content (altered)`)
      if (p.entry.seq !== lastSeq + 1) errors.push(`line ${lineNo}: entry ${p.entry.seq} follows entry ${lastSeq} (entries removed or reordered)`)
      else if (p.entry.prev !== prev) errors.push(`line ${lineNo} (entry ${p.entry.seq}): does not chain to the entry before it (entries removed, reordered or altered)`)
      if (p.entry.kind === 'audit.anomaly') errors.push(`entry ${p.entry.seq}: anomaly recorded by the gateway: ${p.entry.reason ?? ''}`)
      if (p.entry.kind === 'audit.recovered') notes.push(`entry ${p.entry.seq}: ${p.entry.reason ?? 'recovered'}`)
      prev = p.hash
      lastSeq = p.entry.seq
    }
  }
  if (head === null) {
    if (entries > 0) errors.push('the signed head is missing')
  } else if (head.seq === -1) {
    errors.push('the head file is not readable JSON')
  } else {
    if (o.publicKey === null) errors.push('no audit public key to check the head with')
    else if (!verifySig(null, headMessage(head.seq, head.hash), o.publicKey, Buffer.from(head.sig ?? '', 'base64'))) errors.push('the head\'s signature does not verify (head altered, or signed by another key)')
    if (lastSeq < head.seq) errors.push(`the log ends at entry ${lastSeq} but the signed head is at entry ${head.seq}: entries were removed from the end`)
    else if (lastSeq === head.seq) {
      if (prev !== head.hash) errors.push(`entry ${lastSeq} is not the entry the head signed (altered or replaced)`)
    } else {
      notes.push(`${lastSeq - head.seq} entries after the signed head (entry ${head.seq}) are not yet covered by its signature (an append in progress, or a crash before the head update)`)
    }
  }
  return { ok: errors.length === 0, entries, errors, notes }
}

/** Every entry, oldest first (for `ambulink audit`); lines that are not entries are skipped. */
export async function * readAudit (logPath: string): AsyncGenerator<AuditEntry> {
  try { await stat(logPath) } catch { return }
  const rl = createInterface({ input: createReadStream(logPath, { encoding: 'utf8' }), crlfDelay: Infinity })
  for await (const line of rl) {
    const p = parseLine(line)
    if (p !== null) yield { ...p.entry, hash: p.hash }
  }
}
