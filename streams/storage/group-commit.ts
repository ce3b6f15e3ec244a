/**
 * Group commit for an append-only file: appends queue in memory while one write+fdatasync is in
 * flight; the next flush writes them all with one writev and covers them with one fdatasync.
 * Each append's promise settles only once its bytes are on stable storage. Under load this turns
 * thousands of frames per second into a few hundred fsyncs, never one per frame.
 *
 * The appends of one group share one promise (they settle together anyway): a promise, its two
 * functions and a waiter per append were garbage made per frame at ingest (issue 12).
 */
import type { FileHandle } from 'node:fs/promises'

/** The appends queued for the next write+fdatasync, and the one promise they all return. */
interface Group { promise: Promise<void>, resolve: () => void, reject: (err: Error) => void }

function newGroup (): Group {
  let resolve!: () => void
  let reject!: (err: Error) => void
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

export class GroupCommitFile {
  private pending: Uint8Array[] = []
  private pendingBytes = 0
  /** The group the next appends join (null: none queued since the last flush took its group). */
  private group: Group | null = null
  private flushing: Promise<void> | null = null
  private failed: Error | null = null
  /** Bytes known to be durable in the file. */
  durableSize: number
  /** Bytes handed to the file so far (durable or in flight). */
  size: number
  /** fdatasync calls made: with group commit, far fewer than appends. */
  syncs = 0

  /**
   * `beforeSync` (tests' fault injection, sync-hook.ts) is awaited before each fdatasync when it
   * returns a promise; a rejection counts as a failed fsync.
   */
  constructor (private readonly fh: FileHandle, size: number, private readonly onDurable?: (size: number) => void, private readonly beforeSync?: () => Promise<void> | null) {
    this.durableSize = size
    this.size = size
  }

  /**
   * Queues `buf` (then `more`, when given: one record in two parts, written together) at the end
   * of the file; resolves once it is fsync'd. Appends written by the same write+fdatasync get the
   * same promise. The bytes must not change until then.
   */
  append (buf: Uint8Array, more?: Uint8Array): Promise<void> {
    if (this.failed !== null) return Promise.reject(this.failed)
    this.pending.push(buf)
    let n = buf.length
    if (more !== undefined) {
      this.pending.push(more)
      n += more.length
    }
    this.pendingBytes += n
    this.size += n
    const g = this.group ?? (this.group = newGroup())
    if (this.flushing === null) this.flushing = this.flushLoop()
    return g.promise
  }

  get queuedBytes (): number { return this.pendingBytes }

  /** The write or fsync error that stopped this file (null while it works). */
  get failure (): Error | null { return this.failed }

  /** Resolves when everything appended so far is durable. */
  async flush (): Promise<void> {
    while (this.flushing !== null) await this.flushing
  }

  private async flushLoop (): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const bufs = this.pending
        // Not null: every append that queued a buffer made or joined the group.
        const group = this.group!
        const bytes = this.pendingBytes
        this.pending = []
        this.group = null
        this.pendingBytes = 0
        try {
          let off = 0
          // writev may write partially; loop until all bytes are down.
          let rest = bufs
          while (rest.length > 0) {
            const { bytesWritten } = await this.fh.writev(rest, this.durableSize + off)
            off += bytesWritten
            rest = skipBytes(rest, bytesWritten)
          }
          const hold = this.beforeSync?.()
          if (hold != null) await hold
          await this.fh.datasync()
          this.syncs++
        } catch (err) {
          // A failed fsync leaves the file's state unknown: refuse everything from now on
          // rather than acknowledge data that may not be there (the PostgreSQL fsync lesson).
          this.failed = err as Error
          group.reject(this.failed)
          // Appends queued while this write ran (TypeScript does not see the await change it).
          const queued = this.group as Group | null
          queued?.reject(this.failed)
          this.group = null
          this.pending = []
          return
        }
        this.durableSize += bytes
        this.onDurable?.(this.durableSize)
        group.resolve()
      }
    } finally {
      this.flushing = null
    }
  }

  async close (): Promise<void> {
    await this.flush()
    await this.fh.close()
  }
}

function skipBytes (bufs: Uint8Array[], n: number): Uint8Array[] {
  let i = 0
  while (i < bufs.length && n >= bufs[i]!.length) { n -= bufs[i]!.length; i++ }
  if (i >= bufs.length) return []
  const out = bufs.slice(i)
  if (n > 0) out[0] = out[0]!.subarray(n)
  return out
}
