/**
 * The access log: every dataspace access, granted or refused, and every permit granted or
 * revoked, appended to DATA_DIR/dataspace/audit.log as JSON lines, each fsync'd before the data
 * it records leaves the gateway.
 *
 * Tamper evidence:
 * - each entry carries `prev`, the hash of the entry before it, and `hash`, SHA-256 over its own
 *   bytes (everything but the hash field): editing a byte breaks that entry's hash, removing or
 *   reordering entries breaks the next entry's `prev` or the sequence;
 * - the last entry's (seq, hash) is kept in a head file signed with the audit key (Ed25519). The
 *   signed message also carries a counter that grows by one with every head ever signed and the
 *   signing time, so an old signed head cannot pass for the current one once a newer one is known
 *   (issue #10, items 1-2);
 * - before EVERY append the head's signature is checked with the pinned public key and the log
 *   must end exactly at the head; otherwise nothing is appended (AMB_ERR_AUDIT_INTEGRITY, 503),
 *   and the operator is told (`onIntegrityFailure`: an error log line and a metric). The gateway
 *   also remembers the newest head it has seen (and the newest anchor, see anchor.ts): a head
 *   with a lower counter is a rollback;
 * - crash safety without blessing anything: before an entry is written, the head is rewritten
 *   with the entry's own signed head as `pending`; a crash after the entry but before the head
 *   update leaves the log ending at that signed pending head, which the next append promotes. An
 *   entry nobody signed (appended by hand) never matches and is refused (item 4): bringing such
 *   a log back into service is `ambulink audit recover`, an explicit operator action that writes
 *   what it did into the chain.
 *
 * Appends from the gateway and the CLI are serialised by a lock file (and a queue in-process).
 */
import { createHash, createPublicKey, sign, verify as verifySig, type KeyObject } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { LockTimeoutError, withFileLock, writeFileAtomic } from '../storage/durable.js'
import { DataspaceError } from './errors.js'
import { dataspaceDir } from './keys.js'

export type AuditKind = 'extract' | 'stream' | 'dsp.negotiation' | 'dsp.transfer' | 'statistics' | 'permit.grant' | 'permit.revoke' | 'audit.recovered' | 'audit.anomaly'
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
  /** Statistical queries (statistics.ts): what was asked and what it cost. */
  statistics?: { sign: string, statistic: string, by: string[], epsilon: number | null, budgetLeft: number | null, cells: number, suppressedCells: number }
}

export interface AuditEntry extends AuditEvent {
  seq: number
  at: string
  prev: string
  hash: string
}

/** One signed head: the log's last entry, the head counter and the signing time. */
export interface SignedHead { seq: number, hash: string, counter: number, at: string, sig: string }

interface HeadFile extends SignedHead { v: 2, pending?: SignedHead }

const ZERO = '0'.repeat(64)
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/
const TAIL_BYTES = 256 * 1024

export function auditLogPath (dataDir: string): string { return join(dataspaceDir(dataDir), 'audit.log') }
export function defaultAuditHeadPath (dataDir: string): string { return join(dataspaceDir(dataDir), 'audit.head.json') }

function sha256 (s: string): string { return createHash('sha256').update(s).digest('hex') }

function headMessage (h: Pick<SignedHead, 'seq' | 'hash' | 'counter' | 'at'>): Buffer {
  return Buffer.from(`ambulink-audit-head/v2\n${h.seq}\n${h.hash}\n${h.counter}\n${h.at}`)
}

function signHead (h: Omit<SignedHead, 'sig'>, privateKey: KeyObject): SignedHead {
  return { ...h, sig: sign(null, headMessage(h), privateKey).toString('base64') }
}

/** Whether `h` is a well-formed head whose signature verifies with `publicKey`. */
export function headVerifies (h: unknown, publicKey: KeyObject): h is SignedHead {
  if (typeof h !== 'object' || h === null) return false
  const x = h as Partial<SignedHead>
  if (!Number.isSafeInteger(x.seq) || !Number.isSafeInteger(x.counter) || typeof x.hash !== 'string' || typeof x.at !== 'string' || typeof x.sig !== 'string') return false
  try {
    return verifySig(null, headMessage(x as SignedHead), publicKey, Buffer.from(x.sig, 'base64'))
  } catch {
    return false
  }
}

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

type ReadHead = { state: 'missing' } | { state: 'unreadable' } | { state: 'ok', head: HeadFile }

async function readHead (path: string): Promise<ReadHead> {
  try {
    const head = JSON.parse(await readFile(path, 'utf8')) as HeadFile
    return typeof head === 'object' && head !== null ? { state: 'ok', head } : { state: 'unreadable' }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' }
    return { state: 'unreadable' }
  }
}

/** The log's last complete line and any torn bytes after it. */
async function readTail (path: string): Promise<{ last: ReturnType<typeof parseLine>, lastLine: string, size: number, tornFrom: number | null }> {
  let fh
  try {
    fh = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { last: null, lastLine: '', size: 0, tornFrom: null }
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
    return { last: lastLine === '' ? null : parseLine(lastLine), lastLine, size, tornFrom: size === 0 ? null : tornFrom }
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
  /** The PINNED verifying key (configuration, never the file beside the log when pinning is set). */
  publicKey: KeyObject
  /** The newest head known from outside DATA_DIR (an anchor): an older head is a rollback. */
  floor?: Pick<SignedHead, 'seq' | 'hash' | 'counter'> | null
  /** Told about every refused append (for the operator's error log and a metric). */
  onIntegrityFailure?: (message: string) => void
  /**
   * Given every head this process signs, once the entry and the head are on disk and before
   * `append` resolves (so before the data the entry records leaves): the caller publishes it
   * outside DATA_DIR (the log stream, InfluxDB), closing the window in which an insider could
   * roll the log back to a head no anchor has seen. Outside the lock; its errors are its own.
   */
  onHeadSigned?: (head: SignedHead) => void | Promise<void>
}

/** Where the log stands once its head checked out: what the next entry chains on. */
interface Committed { seq: number, hash: string, counter: number }

export class AuditLog {
  private queue: Promise<unknown> = Promise.resolve()
  private closed = false
  /** The newest head this process signed or accepted. */
  private newest: Committed | null
  /** The newest head this process signed and has not handed to onHeadSigned yet. */
  private unpublished: SignedHead | null = null
  private publishing: Promise<void> = Promise.resolve()
  private readonly keyMismatch: boolean

  private constructor (private readonly o: AuditLogOptions) {
    this.newest = o.floor ?? null
    const own = createPublicKey(o.privateKey).export({ type: 'spki', format: 'der' })
    this.keyMismatch = !own.equals(o.publicKey.export({ type: 'spki', format: 'der' }))
  }

  static async open (o: AuditLogOptions): Promise<AuditLog> {
    await mkdir(dirname(o.logPath), { recursive: true, mode: 0o700 })
    await mkdir(dirname(o.headPath), { recursive: true, mode: 0o700 })
    return new AuditLog(o)
  }

  /** The newest head this process has signed or accepted (what the anchors publish). */
  async currentHead (): Promise<SignedHead | null> {
    const r = await readHead(this.o.headPath)
    if (r.state !== 'ok' || !headVerifies(r.head, this.o.publicKey)) return null
    const { seq, hash, counter, at, sig } = r.head
    return { seq, hash, counter, at, sig }
  }

  /** Raises the rollback floor (a newer anchor was read). */
  raiseFloor (floor: Pick<SignedHead, 'seq' | 'hash' | 'counter'>): void {
    if (this.newest === null || floor.counter > this.newest.counter) this.newest = { seq: floor.seq, hash: floor.hash, counter: floor.counter }
  }

  /** Appends one event; resolves once it (and the new head) are on disk. */
  async append (event: AuditEvent): Promise<AuditEntry> {
    const entry = await this.locked(() => this.appendLocked(event))
    await this.publish()
    return entry
  }

  /**
   * Hands the newest signed head to onHeadSigned (a newer one supersedes an older). Chained, so an
   * append resolves only once the head it signed, or a newer one, has been handed over.
   */
  private publish (): Promise<void> {
    const cb = this.o.onHeadSigned
    if (cb === undefined) return Promise.resolve()
    this.publishing = this.publishing.then(async () => {
      const head = this.unpublished
      if (head === null) return
      this.unpublished = null
      await cb(head)
    }).catch(() => {})
    return this.publishing
  }

  /**
   * `ambulink audit recover`: the operator's explicit decision to bring a log whose head does not
   * check out back into service. An unsigned tail that chains on from a valid head is recorded as
   * blessed (`audit.recovered`, naming the entries and the reason); anything else is recorded as
   * an `audit.anomaly` (verify keeps failing: the evidence stays). Either way a new head is signed.
   */
  async recover (reason: string): Promise<{ recorded: 'nothing' | 'audit.recovered' | 'audit.anomaly', message: string }> {
    const r = await this.recoverLocked(reason)
    await this.publish()
    return r
  }

  private recoverLocked (reason: string): Promise<{ recorded: 'nothing' | 'audit.recovered' | 'audit.anomaly', message: string }> {
    return this.locked(async () => {
      const problem = await this.check().then(() => null, (err: unknown) => err instanceof DataspaceError && err.code === 'AMB_ERR_AUDIT_INTEGRITY' ? err.message : Promise.reject(err))
      if (problem === null) return { recorded: 'nothing' as const, message: 'the log ends at its signed head: nothing to recover' }
      const tail = await readTail(this.o.logPath)
      const h = await readHead(this.o.headPath)
      const head = h.state === 'ok' && headVerifies(h.head, this.o.publicKey) ? h.head : null
      if (tail.tornFrom !== null) await this.writeRaw('\n')
      const blessed = head !== null && tail.tornFrom === null ? await this.unsignedTail(head) : null
      const lastSeq = tail.last?.entry.seq ?? 0
      const counter = Math.max(head?.counter ?? 0, this.newest?.counter ?? 0, h.state === 'ok' && Number.isSafeInteger(h.head.counter) ? h.head.counter : 0)
      const at: Committed = { seq: lastSeq, hash: tail.last?.hash ?? ZERO, counter }
      const kind = blessed !== null ? 'audit.recovered' as const : 'audit.anomaly' as const
      const message = blessed !== null
        ? `operator recovery: entries ${blessed.from}..${blessed.to} were past the signed head (entry ${head!.seq}) and are now covered by it: ${reason}`
        : `operator recovery after: ${problem}: ${reason}`
      await this.write({ kind, outcome: 'recorded', reason: message.slice(0, 2000) }, at)
      return { recorded: kind, message }
    })
  }

  private locked<T> (fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new DataspaceError('AMB_ERR_AUDIT_UNAVAILABLE', 'audit log closed'))
    const p = this.queue.then(() => withLock(this.o.logPath + '.lock', fn))
    this.queue = p.catch(() => {})
    return p.catch((err: unknown) => {
      if (err instanceof DataspaceError) throw err
      throw new DataspaceError('AMB_ERR_AUDIT_UNAVAILABLE', `audit log append failed: ${(err as Error).message}`, { cause: err, retryAfterMs: 1000 })
    })
  }

  /** Entries after a valid head that chain on from it with intact hashes: what recover may bless. */
  private async unsignedTail (head: SignedHead): Promise<{ from: number, to: number } | null> {
    let prev: string | null = null
    let from = 0
    let to = 0
    for await (const line of createInterface({ input: createReadStream(this.o.logPath, { encoding: 'utf8' }), crlfDelay: Infinity })) {
      const p = parseLine(line)
      if (p === null) return null
      if (p.entry.seq === head.seq) { if (p.hash !== head.hash) return null; prev = p.hash; continue }
      if (prev === null || p.entry.seq <= head.seq) continue
      if (sha256(p.body) !== p.hash || p.entry.prev !== prev || p.entry.seq !== (to === 0 ? head.seq : to) + 1) return null
      if (from === 0) from = p.entry.seq
      to = p.entry.seq
      prev = p.hash
    }
    return from === 0 ? null : { from, to }
  }

  private fail (message: string): never {
    this.o.onIntegrityFailure?.(message)
    throw new DataspaceError('AMB_ERR_AUDIT_INTEGRITY', `audit log integrity: ${message}; nothing was appended (investigate, then \`ambulink audit recover\`)`)
  }

  /** Checks the head against the pinned key, the newest head known and the log's end. */
  private async check (): Promise<{ committed: Committed, notes: string[] }> {
    if (this.keyMismatch) this.fail('the audit signing key under DATA_DIR does not match the pinned public key (DATASPACE_AUDIT_PUBLIC_KEY)')
    const tail = await readTail(this.o.logPath)
    const h = await readHead(this.o.headPath)
    const notes: string[] = []
    let committed: Committed
    if (h.state === 'missing') {
      if (tail.size !== 0 || this.newest !== null) this.fail(`the signed head is missing while the log holds ${tail.size} bytes`)
      return { committed: { seq: 0, hash: ZERO, counter: 0 }, notes }
    }
    if (h.state === 'unreadable') this.fail('the head file is not readable JSON')
    const head = h.head
    if (!headVerifies(head, this.o.publicKey)) this.fail('the head\'s signature does not verify with the pinned key (head forged or re-signed with another key)')
    const n = this.newest
    if (n !== null && (head.counter < n.counter || (head.counter === n.counter && head.hash !== n.hash))) {
      this.fail(`the signed head (counter ${head.counter}, entry ${head.seq}) is older than one already seen (counter ${n.counter}, entry ${n.seq}): the log was rolled back`)
    }
    const lastSeq = tail.last?.entry.seq ?? 0
    const lastHash = tail.last?.hash ?? ZERO
    if (tail.last === null && tail.lastLine !== '') this.fail('the log\'s last line is not an audit entry')
    if (tail.last !== null && sha256(tail.last.body) !== tail.last.hash) this.fail(`entry ${lastSeq}'s hash does not match its content`)
    const pending = head.pending
    if (lastSeq === head.seq && lastHash === head.hash) {
      committed = { seq: head.seq, hash: head.hash, counter: head.counter }
    } else if (pending !== undefined && headVerifies(pending, this.o.publicKey) && pending.counter === head.counter + 1 &&
      lastSeq === pending.seq && lastHash === pending.hash && tail.last?.entry.prev === head.hash) {
      committed = { seq: pending.seq, hash: pending.hash, counter: pending.counter }
      notes.push(`entry ${pending.seq} was written but the head not updated (crash); it matches the signed pending head`)
    } else if (lastSeq > head.seq) {
      this.fail(`the log ends at entry ${lastSeq}, past its signed head (entry ${head.seq}): entries nobody signed`)
    } else {
      this.fail(`the log ends at entry ${lastSeq} but the signed head is at entry ${head.seq}: entries were removed or replaced`)
    }
    if (tail.tornFrom !== null) {
      // Bytes after a signed entry that are not a complete line: a crash mid-write, never acknowledged.
      const fh = await open(this.o.logPath, 'r+')
      try { await fh.truncate(tail.tornFrom); await fh.sync() } finally { await fh.close() }
      notes.push(`removed ${tail.size - tail.tornFrom} torn bytes after entry ${committed.seq}`)
    }
    return { committed, notes }
  }

  private async appendLocked (event: AuditEvent): Promise<AuditEntry> {
    const checked = await this.check()
    let committed = checked.committed
    const notes = checked.notes
    for (const message of notes) ({ committed } = await this.write({ kind: 'audit.recovered', outcome: 'recorded', reason: message }, committed))
    const { entry } = await this.write(event, committed)
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

  /** Head with the new entry's signed head as pending, then the entry, then the new head. */
  private async write (event: AuditEvent, at: Committed): Promise<{ entry: AuditEntry, committed: Committed }> {
    const seq = at.seq + 1
    const body = JSON.stringify({ seq, at: new Date().toISOString(), prev: at.hash, ...event })
    const hash = sha256(body)
    const current = await readHead(this.o.headPath)
    const next = signHead({ seq, hash, counter: at.counter + 1, at: new Date().toISOString() }, this.o.privateKey)
    // The head the pending one follows: the current one, or (a new log, an operator recovery) one
    // signed now for where the log stands.
    const base = current.state === 'ok' && headVerifies(current.head, this.o.publicKey) && current.head.seq === at.seq && current.head.hash === at.hash
      ? current.head
      : signHead({ seq: at.seq, hash: at.hash, counter: at.counter, at: new Date().toISOString() }, this.o.privateKey)
    await this.writeHead({ v: 2, seq: base.seq, hash: base.hash, counter: base.counter, at: base.at, sig: base.sig, pending: next })
    await this.writeRaw(body.slice(0, -1) + `,"hash":"${hash}"}\n`)
    await this.writeHead({ v: 2, ...next })
    const committed = { seq, hash, counter: next.counter }
    this.newest = committed
    this.unpublished = next
    return { entry: { ...(JSON.parse(body) as Omit<AuditEntry, 'hash'>), hash }, committed }
  }

  private async writeHead (head: HeadFile): Promise<void> {
    await writeFileAtomic(this.o.headPath, JSON.stringify(head) + '\n')
  }

  /** Waits for pending appends; later appends are refused. Safe to call twice. */
  async close (): Promise<void> {
    this.closed = true
    await this.queue
    await this.publishing
  }
}

export interface VerifyResult {
  ok: boolean
  entries: number
  /** What is wrong, each naming the entry (line) concerned. */
  errors: string[]
  /** Things worth knowing that are not tampering (crash recoveries, operator recoveries). */
  notes: string[]
  /** The head as read (null when missing or unreadable). */
  head: SignedHead | null
}

/**
 * Checks the whole chain and the signed head with the pinned key; with an anchor (a head
 * published outside DATA_DIR), also that the log was not rolled back behind it.
 */
export async function verifyAudit (o: { logPath: string, headPath: string, publicKey: KeyObject | null, anchor?: SignedHead | null }): Promise<VerifyResult> {
  // `anchor` is the newest head known from outside DATA_DIR: InfluxDB's anchor, or the newest
  // head published on the log stream (publishedHeads), whichever is newer.
  const errors: string[] = []
  const notes: string[] = []
  // The head first: an append in progress then shows as a log ending at the signed pending head.
  const h = await readHead(o.headPath)
  const head = h.state === 'ok' ? h.head : null
  const anchor = o.anchor ?? null
  let anchorHash: string | null = null
  let entries = 0
  let prev = ZERO
  let lastSeq = 0
  let lastPrev = ZERO
  let exists = true
  try { await stat(o.logPath) } catch { exists = false }
  if (exists) {
    const rl = createInterface({ input: createReadStream(o.logPath, { encoding: 'utf8' }), crlfDelay: Infinity })
    let lineNo = 0
    for await (const line of rl) {
      lineNo++
      if (line === '') { errors.push(`line ${lineNo}: empty line`); continue }
      const p = parseLine(line)
      if (p === null) { errors.push(`line ${lineNo}: not an audit entry (altered?)`); continue }
      entries++
      if (sha256(p.body) !== p.hash) errors.push(`line ${lineNo} (entry ${p.entry.seq}): hash does not match its content (altered)`)
      if (p.entry.seq !== lastSeq + 1) errors.push(`line ${lineNo}: entry ${p.entry.seq} follows entry ${lastSeq} (entries removed or reordered)`)
      else if (p.entry.prev !== prev) errors.push(`line ${lineNo} (entry ${p.entry.seq}): does not chain to the entry before it (entries removed, reordered or altered)`)
      if (p.entry.kind === 'audit.anomaly') errors.push(`entry ${p.entry.seq}: anomaly recorded: ${p.entry.reason ?? ''}`)
      if (p.entry.kind === 'audit.recovered') notes.push(`entry ${p.entry.seq}: ${p.entry.reason ?? 'recovered'}`)
      if (anchor !== null && p.entry.seq === anchor.seq) anchorHash = p.hash
      lastPrev = p.entry.prev
      prev = p.hash
      lastSeq = p.entry.seq
    }
  }
  if (o.publicKey === null) errors.push('no pinned audit public key (DATASPACE_AUDIT_PUBLIC_KEY or --key): the key beside the log proves nothing')
  if (h.state === 'missing') {
    if (entries > 0) errors.push('the signed head is missing')
  } else if (head === null) {
    errors.push('the head file is not readable JSON')
  } else if (o.publicKey !== null) {
    if (!headVerifies(head, o.publicKey)) errors.push('the head\'s signature does not verify with the pinned key (head altered, or signed by another key)')
    const pending = head.pending
    if (lastSeq < head.seq) errors.push(`the log ends at entry ${lastSeq} but the signed head is at entry ${head.seq}: entries were removed from the end`)
    else if (lastSeq === head.seq) {
      if (prev !== head.hash) errors.push(`entry ${lastSeq} is not the entry the head signed (altered or replaced)`)
    } else if (pending !== undefined && headVerifies(pending, o.publicKey) && lastSeq === pending.seq && prev === pending.hash && lastPrev === head.hash) {
      notes.push(`entry ${lastSeq} is covered by the signed pending head (an append in progress, or a crash before the head update)`)
    } else {
      errors.push(`${lastSeq - head.seq} entries after the signed head (entry ${head.seq}) are signed by nobody (appended by hand?)`)
    }
    if (anchor !== null) {
      if (!headVerifies(anchor, o.publicKey)) errors.push('the anchor\'s signature does not verify with the pinned key')
      else {
        if (head.counter < anchor.counter) errors.push(`the head (counter ${head.counter}, entry ${head.seq}) is older than the anchored head (counter ${anchor.counter}, entry ${anchor.seq}): the log was rolled back`)
        if (anchorHash !== anchor.hash) errors.push(`the log no longer holds the anchored entry ${anchor.seq} as it was signed: rolled back or rewritten`)
      }
    }
  }
  const signed = head !== null ? { seq: head.seq, hash: head.hash, counter: head.counter, at: head.at, sig: head.sig } : null
  return { ok: errors.length === 0, entries, errors, notes, head: signed }
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

/**
 * The newest head, among lines of the gateway's shipped log stream (JSON lines; `auditHead` as
 * published at every signing, `auditAnchor` as anchored periodically), whose signature verifies
 * with `publicKey`. Lines that are not JSON or carry neither are skipped; so is any head that does
 * not verify (an insider cannot raise or lower the floor with forged lines).
 */
export function newestPublishedHead (text: string, publicKey: KeyObject): SignedHead | null {
  let best: SignedHead | null = null
  for (const line of text.split('\n')) {
    if (!line.includes('"audit')) continue
    let o: { auditHead?: unknown, auditAnchor?: unknown }
    try { o = JSON.parse(line) as typeof o } catch { continue }
    for (const h of [o.auditHead, o.auditAnchor]) {
      if (!headVerifies(h, publicKey)) continue
      if (best === null || h.counter > best.counter) best = { seq: h.seq, hash: h.hash, counter: h.counter, at: h.at, sig: h.sig }
    }
  }
  return best
}
