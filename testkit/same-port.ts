// Restarting a test server on the port it had (InfluxDB, Redis, a gateway child: an outage, then
// the same address again, as clients configured with it expect). Two races make a naive restart
// flaky on a loaded machine where test files run in parallel:
//
// - the port is not free yet: a socket of the old process lingers, or, while the server was down,
//   the kernel gave the port to someone else — another test file's server asking for a free
//   port, or a client's connect() that picked it as its ephemeral local port (a client
//   reconnecting to that very port can even connect to itself: TCP simultaneous open). A
//   client's connect() binds without SO_REUSEADDR, so its socket, and once it closes its
//   TIME_WAIT (60 s on Linux), keep a server from binding the port. The new server then fails
//   with EADDRINUSE;
// - the port is taken between the check and the server's bind.
//
// restartOnSamePorts() therefore starts only once every port can be bound, waiting (bounded) while
// it cannot, and retries a start that still lost the race, a bounded number of times. The caller
// has already waited for the old process to exit (ManagedProcess.stop()/exited), and its start
// must make sure the listener it waits for is its own process' (pidListensOn(), or a log line of
// this run), so a dying or foreign server is never mistaken for the new one.
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'

const HOST = '127.0.0.1'

/** /proc/net/tcp state codes (include/net/tcp_states.h). */
const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '06': 'TIME_WAIT',
  '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING'
}

/** Whether a server could bind `port` on 127.0.0.1 now (as servers do: SO_REUSEADDR, so TIME_WAIT does not count). */
export function canBind (port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false)
      else reject(err)
    })
    srv.listen({ port, host: HOST, exclusive: true }, () => { srv.close(() => { resolve(true) }) })
  })
}

/** The sockets using `port` as their local port (from /proc/net/tcp{,6}), for error messages: "LISTEN", "ESTABLISHED to :41234", … */
export async function portHolders (port: number): Promise<string[]> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const out: string[] = []
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try { text = await readFile(table, 'utf8') } catch { continue }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st …
      const cols = line.trim().split(/\s+/)
      if (cols.length < 4 || !cols[1]!.endsWith(hex)) continue
      const state = TCP_STATES[cols[3]!] ?? cols[3]!
      const remotePort = parseInt(cols[2]!.split(':')[1] ?? '0', 16)
      out.push(state === 'LISTEN' ? state : `${state} to :${remotePort}`)
    }
  }
  return out
}

export interface SamePortOptions {
  /** What is restarted (error messages). */
  what: string
  /** Whether a failed start failed because a port was in use (then it is retried). */
  isAddressInUse: (err: unknown) => boolean | Promise<boolean>
  /**
   * Bound on the whole restart: waiting for the ports and every start, ms (default 120 s: a client
   * that held the port as its local port leaves it in TIME_WAIT for Linux's 60 s once it closes).
   */
  timeoutMs?: number
  /** Starts at most this many times (default 5). */
  attempts?: number
  /** Called each time a port is found in use before a start (tests, and a log line). */
  onPortBusy?: (port: number, holders: string[]) => void
  /** How often a busy port is tried again, ms (default 100). */
  pollMs?: number
}

/** A start or a wait of restartOnSamePorts() gave up: the port stayed in use. */
export class PortStillInUseError extends Error {
  constructor (message: string, readonly port: number, readonly holders: string[]) {
    super(message)
    this.name = 'PortStillInUseError'
  }
}

/**
 * Runs `start` (which starts the server again on `ports`) once every port can be bound; retries
 * it when it fails with the address in use (`isAddressInUse`), up to `attempts` starts, all within
 * `timeoutMs`. Rejects with a PortStillInUseError naming what holds the port when it never became
 * free, and with start's own error for any other failure.
 */
export async function restartOnSamePorts<T> (ports: readonly number[], start: () => Promise<T>, o: SamePortOptions): Promise<T> {
  const timeoutMs = o.timeoutMs ?? 120_000
  const attempts = o.attempts ?? 5
  const pollMs = o.pollMs ?? 100
  const deadline = Date.now() + timeoutMs
  for (let attempt = 1; ; attempt++) {
    for (const port of ports) {
      let told = false
      while (!await canBind(port)) {
        const holders = await portHolders(port)
        if (!told) { told = true; o.onPortBusy?.(port, holders) }
        if (Date.now() >= deadline) {
          throw new PortStillInUseError(`${o.what}: port ${port} still in use after ${timeoutMs} ms (held by: ${holders.join(', ') || 'unknown'})`, port, holders)
        }
        await new Promise(resolve => setTimeout(resolve, pollMs))
      }
    }
    try {
      return await start()
    } catch (err) {
      if (attempt >= attempts || Date.now() >= deadline || !await o.isAddressInUse(err)) throw err
      // Lost the race between the check and the bind: wait for the port again, then start again.
    }
  }
}
