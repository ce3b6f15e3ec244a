/**
 * pino, with secrets redacted wherever they might ride along in a log object. Tokens and
 * passwords are never logged on purpose; redaction is the belt to that brace.
 */
import { pino, type DestinationStream, type Logger } from 'pino'

export function createLogger (level: string, destination?: NodeJS.WritableStream): Logger {
  return pino({
    level,
    base: { service: 'ambulink' },
    redact: {
      paths: ['password', 'token', 'authorization', '*.password', '*.token', '*.authorization', 'req.headers.authorization', 'headers.authorization'],
      censor: '[redacted]'
    }
  }, destination as DestinationStream | undefined)
}

/** Longest attacker-supplied string (client id, topic, user name, detail) a log line carries. */
export const LOG_STRING_MAX = 128

/** `s` cut to `max` characters, saying how much was left out (issue #10, item 12). */
export function cap (s: string | null | undefined, max = LOG_STRING_MAX): string | undefined {
  if (s === null || s === undefined) return undefined
  return s.length <= max ? s : `${s.slice(0, max)}…(+${s.length - max} chars)`
}

export interface RefusalLogOptions {
  /** Lines logged per reason per interval; the rest are counted and summarised. */
  burst?: number
  /** Length of an interval, ms. */
  intervalMs?: number
  /** pino level of the lines (refusals warn; transport noise is debug). */
  level?: 'warn' | 'debug'
  now?: () => number
}

interface ReasonWindow { start: number, logged: number, suppressed: number }

/**
 * Rate-limited logging of refusals: per reason, the first `burst` lines of an interval are
 * written (their string fields capped), the rest only counted, and one line "suppressed N
 * similar" sums them up when the interval ends. A flood of refusals costs a few lines of log,
 * never one line each; the metrics still count every refusal.
 */
export class RefusalLog {
  private readonly windows = new Map<string, ReasonWindow>()
  private readonly burst: number
  private readonly intervalMs: number
  private readonly now: () => number
  private readonly level: 'warn' | 'debug'
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly log: Logger, o: RefusalLogOptions = {}) {
    this.burst = o.burst ?? 5
    this.intervalMs = o.intervalMs ?? 10_000
    this.level = o.level ?? 'warn'
    this.now = o.now ?? Date.now
  }

  warn (reason: string, fields: Record<string, unknown>, msg: string): void {
    const t = this.now()
    let w = this.windows.get(reason)
    if (w !== undefined && t - w.start >= this.intervalMs) {
      this.summarise(reason, w)
      w = undefined
    }
    if (w === undefined) {
      w = { start: t, logged: 0, suppressed: 0 }
      this.windows.set(reason, w)
    }
    if (w.logged < this.burst) {
      w.logged++
      const capped: Record<string, unknown> = { reason }
      for (const [k, v] of Object.entries(fields)) capped[k] = typeof v === 'string' ? cap(v) : v
      this.log[this.level](capped, msg)
      return
    }
    w.suppressed++
    if (this.timer === null) {
      this.timer = setTimeout(() => { this.timer = null; this.flush(false) }, this.intervalMs)
      this.timer.unref()
    }
  }

  private summarise (reason: string, w: ReasonWindow): void {
    if (w.suppressed > 0) this.log[this.level]({ reason, suppressed: w.suppressed, intervalMs: this.intervalMs }, `suppressed ${w.suppressed} similar`)
  }

  /** Writes the summaries of ended intervals (all of them when `all`). */
  flush (all: boolean): void {
    const t = this.now()
    for (const [reason, w] of this.windows) {
      if (!all && t - w.start < this.intervalMs) continue
      this.summarise(reason, w)
      this.windows.delete(reason)
    }
    if (!all && [...this.windows.values()].some(w => w.suppressed > 0) && this.timer === null) {
      this.timer = setTimeout(() => { this.timer = null; this.flush(false) }, this.intervalMs)
      this.timer.unref()
    }
  }

  close (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.flush(true)
  }
}
