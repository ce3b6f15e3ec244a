/**
 * The one error factory, in the manner of fastify's `lib/errors.js`: every catalogue (decoders,
 * streams' storage, alerts and dataspace, the durable layer, the gateway, configuration, the
 * simulator) declares each code once with `createError(code, message, status)` and its class
 * extends `CodedError`, so every refusal carries a stable `code`, an HTTP `statusCode`, a cause,
 * and says whether retrying can help. `test/docs.test.ts` checks every catalogue against
 * docs/errors.md. Lives in decoders/ because decoders/ imports nothing from other folders; the
 * others reach it through `decoders/index.ts`.
 */

/** One code of a catalogue: its stable code, what it means, the HTTP status answered with it. */
export interface ErrorDefinition<C extends string = string> {
  readonly code: C
  /** What the code means (the catalogue's description; docs/errors.md says it for users). */
  readonly description: string
  /** HTTP status (for the dataspace's live stream: the WebSocket close code). */
  readonly status: number
  /** Whether the same request may succeed later (the code's default; an instance may say more). */
  readonly retry: boolean
}

/** Declares one code; `status` defaults to 500 as in fastify. */
export function createError<C extends string> (code: C, message: string, status = 500, options: { retry?: boolean } = {}): ErrorDefinition<C> {
  if (!/^AMB_ERR_[A-Z0-9_]+$/.test(code)) throw new TypeError(`error code ${code} does not match AMB_ERR_[A-Z0-9_]+`)
  return Object.freeze({ code, description: message, status, retry: options.retry ?? false })
}

/** A catalogue keyed by code, frozen; a code declared twice is a programming error. */
export function catalogue<C extends string> (...defs: ReadonlyArray<ErrorDefinition<C>>): Readonly<Record<C, ErrorDefinition<C>>> {
  const out: Partial<Record<C, ErrorDefinition<C>>> = {}
  for (const d of defs) {
    if (d.code in out) throw new TypeError(`error code ${d.code} declared twice`)
    out[d.code] = d
  }
  return Object.freeze(out as Record<C, ErrorDefinition<C>>)
}

export interface CodedErrorOptions {
  cause?: unknown
  /** ms after which the same request may succeed; given: `canRetry()` is true. */
  retryAfterMs?: number
}

/**
 * The base of every catalogue's error class: `code` and `statusCode` come from the catalogue
 * entry; callers match on `code` (and `instanceof` the area's class), never on the message.
 */
export abstract class CodedError<C extends string = string> extends Error {
  readonly code: C
  readonly statusCode: number
  private readonly retryAfterMs: number | null
  private readonly retryByDefault: boolean

  protected constructor (def: ErrorDefinition<C>, message: string, options: CodedErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = def.code
    this.statusCode = def.status
    this.retryAfterMs = options.retryAfterMs ?? null
    this.retryByDefault = def.retry
  }

  /** Whether the same request may succeed later. */
  canRetry (): boolean { return this.retryAfterMs !== null || this.retryByDefault }

  /** How long a sender should wait before trying again, in ms (null: no advice). */
  retryAfter (): number | null { return this.retryAfterMs }
}
