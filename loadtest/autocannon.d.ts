/** Minimal typings for autocannon 8 (no @types package): what http-scenarios.ts uses. */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  namespace autocannon {
    interface Histogram {
      average: number
      stddev: number
      min: number
      max: number
      total: number
      p50: number
      p90: number
      p97_5: number
      p99: number
      p99_9: number
    }
    interface Request {
      method?: string
      path?: string
      headers?: Record<string, string>
      body?: string | Buffer
      /** Called before each request is sent; returns the request to send. */
      setupRequest?: (req: Request, context: Record<string, unknown>) => Request
    }
    interface Options {
      url: string
      title?: string
      connections?: number
      pipelining?: number
      /** Seconds. */
      duration?: number
      /** Requests in total (overrides duration). */
      amount?: number
      /** Seconds. */
      timeout?: number
      method?: string
      headers?: Record<string, string>
      body?: string | Buffer
      requests?: Request[]
    }
    interface Result {
      title?: string
      url: string
      requests: Histogram & { sent: number }
      latency: Histogram
      throughput: Histogram
      duration: number
      errors: number
      timeouts: number
      non2xx: number
      statusCodeStats: Record<string, { count: number }>
    }
    interface Instance extends EventEmitter {
      stop: () => void
    }
  }
  function autocannon (opts: autocannon.Options, cb: (err: Error | null, result: autocannon.Result) => void): autocannon.Instance
  export = autocannon
}
