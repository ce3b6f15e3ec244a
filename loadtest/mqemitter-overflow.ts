/**
 * Reproduces the aedes 1.2.0 / mqemitter 7 crash "Maximum call stack size exceeded" with plain
 * aedes (none of Ambulink's hooks), for test/faults-subscriber.test.ts:
 *
 * 1. A QoS 0 subscriber stops reading. Each delivery to it that finds the socket full waits for
 *    'drain' while holding one of mqemitter's `concurrency` (100) slots.
 * 2. Once all slots are held, every publish, with or without subscribers, queues in mqemitter.
 * 3. When the subscriber goes (here: drainTimeout destroys it) the slots are released; each
 *    release runs the next queued message, and a message with no subscribers completes
 *    synchronously (fastparallel calls done at once for zero functions), which releases the
 *    next one: recursion as deep as the queue, and an uncaught RangeError kills the process.
 *
 *   node --import tsx loadtest/mqemitter-overflow.ts [--queued 30000]
 * Exits with the RangeError (code 1 or 7) when the bug fires; prints {"survived": true} if not.
 */
import { createServer, type AddressInfo } from 'node:net'
import { Aedes } from 'aedes'
import mqtt from 'mqtt'
import { numberFlags } from '../testkit/fault-harness.js'

const f = numberFlags(process.argv.slice(2), { queued: 30_000, drainTimeoutMs: 1500 })
const broker = await Aedes.createBroker({ drainTimeout: f.drainTimeoutMs })
const server = createServer(sock => { broker.handle(sock) })
await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`
const sub = await mqtt.connectAsync(url, { clientId: 'frozen', reconnectPeriod: 0 })
await sub.subscribeAsync('alerts/#', { qos: 0 })
sub.stream.pause()
const noop = (): void => {}
/** Messages waiting inside mqemitter (`broker.mq` is not in aedes' typings). */
const queued = (): number => (broker as unknown as { mq: { length: number } }).mq.length
// Fill the subscriber's socket and hold every mqemitter slot…
for (let i = 0; i < 3000; i++) broker.publish({ topic: 'alerts/u1', payload: Buffer.alloc(4096, 1), qos: 0, retain: false, cmd: 'publish', dup: false }, noop)
// …then queue messages nobody subscribes to (device telemetry in the gateway).
for (let i = 0; i < f.queued; i++) broker.publish({ topic: 'units/u1/telemetry', payload: Buffer.alloc(16), qos: 0, retain: false, cmd: 'publish', dup: false }, noop)
process.stderr.write(`mqemitter queue: ${queued()}\n`)
setTimeout(() => {
  process.stdout.write(JSON.stringify({ survived: true, queueLeft: queued() }) + '\n')
  sub.end(true)
  broker.close()
  server.close()
}, f.drainTimeoutMs + 3000)
