/**
 * The bare-aedes reference broker (issue 12, goal 3), run as a child process as the gateway is:
 * the same aedes and MQTT listener the gateway uses, with only an authenticate that accepts
 * every client — no credential check, no decode, no validation, no spool, no alert engine, no
 * live hub. QoS 1 PUBACKs come from aedes itself (no persistence beyond its in-memory default).
 * What the saturating generator measures against it is the broker library's own cost, which
 * the gateway's figure is divided by (`ingest_vs_aedes_ratio`).
 *
 * Prints one line `{"listening":<port>}` on stdout once the TCP listener is up.
 *
 *   node --import tsx loadtest/aedes-bare.ts
 */
import { createServer } from 'node:net'
import { Aedes } from 'aedes'

const broker = await Aedes.createBroker({
  // Same as the gateway's broker (gateway/mqtt/broker.ts), so only the hooks differ.
  drainTimeout: 10_000,
  connectTimeout: 10_000,
  maxClientsIdLength: 128,
  authenticate (_client, _username, _password, done) { done(null, true) }
})
const server = createServer(broker.handle)
server.listen(0, '127.0.0.1', () => {
  const addr = server.address()
  process.stdout.write(JSON.stringify({ listening: typeof addr === 'object' && addr !== null ? addr.port : 0 }) + '\n')
})
const stop = (): void => {
  server.close()
  broker.close(() => { process.exit(0) })
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
