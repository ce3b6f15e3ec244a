// Holds the spool's fsyncs of an in-process gateway (testkit/gateway.ts): a real disk cannot be
// made slow on demand, and the tests of the alert priority path need a frame whose append is
// still in flight. Uses the product's test hook (streams/storage/sync-hook.ts).
import { setSpoolSyncHook } from '../streams/storage/sync-hook.js'

/** The spool's fsyncs wait until release(); `reached` resolves once one is waiting. */
export function holdFsyncs (): { reached: Promise<void>, release: () => void } {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  let reachedOnce!: () => void
  const reached = new Promise<void>(resolve => { reachedOnce = resolve })
  setSpoolSyncHook(async () => { reachedOnce(); await gate })
  return { reached, release: () => { setSpoolSyncHook(null); release() } }
}
