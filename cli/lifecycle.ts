/** The process lifecycle of the long-running commands (`serve`, `demo`). */
import type { Gateway } from '../gateway/server.js'

/** Runs until SIGINT/SIGTERM, then closes everything in reverse start order. */
export async function runUntilSignal (gw: Gateway, extraClose?: () => Promise<void>): Promise<number> {
  await new Promise<void>(resolve => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  gw.log.info('shutting down')
  // A second signal, or a stuck close, must not keep the process alive for long.
  const force = setTimeout(() => {
    gw.log.error('shutdown took too long; exiting')
    process.exit(1)
  }, 10_000)
  force.unref()
  if (extraClose !== undefined) await extraClose()
  await gw.close()
  clearTimeout(force)
  gw.log.info('stopped')
  return 0
}
