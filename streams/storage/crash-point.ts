/**
 * Fault injection for the crash-safety tests (test/faults-crash.test.ts, loadtest/crash.ts).
 *
 * `AMBULINK_CRASH_AT=<point>:<n>` makes the process SIGKILL itself the n-th time execution
 * passes `<point>`, so a test can kill the gateway at a moment an outside timer cannot hit
 * reliably (an fsync in flight, InfluxDB written but the cursor not yet moved). A real SIGKILL,
 * not an exception: nothing after the point runs, no finally block, no flush.
 *
 * Unset (production), crashPoint() is one comparison against null.
 */
import { isMainThread } from 'node:worker_threads'

const spec = /^([a-z-]+):(\d+)$/.exec(process.env.AMBULINK_CRASH_AT ?? '')
const target: string | null = spec === null ? null : spec[1]!
let remaining = spec === null ? 0 : Number(spec[2])

/** Where the gateway can be made to crash; names are part of the test contract. */
export type CrashPointName =
  | 'spool-append-inflight' // record handed to the group commit, write+fdatasync not finished
  | 'spool-durable' // record fsync'd, PUBACK not yet sent
  | 'spool-rotate' // new segment created, old one still being flushed
  | 'spool-commit' // cursor persisted, old segments not yet deleted
  | 'sink-posting' // InfluxDB write request in flight
  | 'sink-written' // InfluxDB acknowledged a batch, the spool cursor not yet moved
  | 'sink-worker' // the sink's worker thread holds a batch: it exits (the thread only, not the process)

export function crashPoint (name: CrashPointName): void {
  if (target !== name) return
  if (--remaining !== 0) return
  // In a worker thread process.exit() ends that thread only: a crashed worker, not a crashed process.
  if (name === 'sink-worker' && !isMainThread) process.exit(70)
  process.kill(process.pid, 'SIGKILL')
}
