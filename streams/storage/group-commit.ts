/**
 * Group commit for an append-only file: appends queue in memory while one write+fdatasync is in
 * flight; the next flush writes them all with one writev and covers them with one fdatasync.
 * Each append's promise settles only once its bytes are on stable storage. Under load this turns
 * thousands of frames per second into a few hundred fsyncs, never one per frame.
 */
import type { FileHandle } from 'node:fs/promises'

interface Waiter { resolve: () => void, reject: (err: Error) => void }

export class GroupCommitFile {
  private pending: Buffer[] = []
  private pendingBytes = 0
  private waiters: Waiter[] = []
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

  /** Queues `buf` at the end of the file; resolves once it is fsync'd. */
  append (buf: Buffer): Promise<void> {
    if (this.failed !== null) return Promise.reject(this.failed)
    this.pending.push(buf)
    this.pendingBytes += buf.length
    this.size += buf.length
    const p = new Promise<void>((resolve, reject) => { this.waiters.push({ resolve, reject }) })
    if (this.flushing === null) this.flushing = this.flushLoop()
    return p
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
        const waiters = this.waiters
        const bytes = this.pendingBytes
        this.pending = []
        this.waiters = []
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
          for (const w of waiters) w.reject(this.failed)
          for (const w of this.waiters) w.reject(this.failed)
          this.waiters = []
          this.pending = []
          return
        }
        this.durableSize += bytes
        this.onDurable?.(this.durableSize)
        for (const w of waiters) w.resolve()
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

function skipBytes (bufs: Buffer[], n: number): Buffer[] {
  let i = 0
  while (i < bufs.length && n >= bufs[i]!.length) { n -= bufs[i]!.length; i++ }
  if (i >= bufs.length) return []
  const out = bufs.slice(i)
  if (n > 0) out[0] = out[0]!.subarray(n)
  return out
}
