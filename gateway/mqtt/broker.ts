/**
 * The MQTT broker (aedes) with Ambulink's authentication and topic ACLs. aedes accepts everyone
 * unless told otherwise, so every hook is supplied, one file each under `hooks/` (as aedes keeps
 * one handler per packet type):
 * - `authenticate.ts`: device = unit id + token (or, on mTLS, the certificate's CN), user = name +
 *   password; the MQTT client id must be the principal's name or start with "<name>:".
 * - `authorize-publish.ts`: a device publishes only under its own `units/{unit}/`; telemetry is
 *   ingested (spooled, fsync'd) before aedes sends the PUBACK. Users publish nothing.
 * - `authorize-subscribe.ts`: devices subscribe to nothing; clinicians and admins to alerts and
 *   unit status; refused subscriptions get SUBACK 0x80.
 * - `authorize-forward.ts`: no raw telemetry to anyone, slow subscribers cut, in-flight capped.
 * - `events.ts` (acks, unsubscriptions, protocol errors) and `revoked.ts` (revoked credentials).
 * Per-client limits (issue #10, item 13): topic length, subscriptions held, and QoS 1 messages
 * sent but not yet acknowledged; each refusal is counted with its code and logged at a bounded
 * rate (RefusalLog), attacker-supplied strings capped. This file composes them, with the broker's
 * options and the cluster wiring.
 */
import { Aedes, type AedesPublishPacket, type PublishPacket } from 'aedes'
import type { Logger } from 'pino'
import type { CredentialStore } from '../credentials.js'
import type { Ingest } from '../ingest.js'
import { CLIENT_LIMIT_DEFAULTS, type ClientLimits, type PasswordThrottle } from '../limits.js'
import { RefusalLog } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { authenticateHook } from './hooks/authenticate.js'
import { authorizeForwardHook } from './hooks/authorize-forward.js'
import { authorizePublishHook } from './hooks/authorize-publish.js'
import { authorizeSubscribeHook } from './hooks/authorize-subscribe.js'
import { createHookContext } from './hooks/context.js'
import { logClientErrors, trackClientState } from './hooks/events.js'
import { disconnectRevoked } from './hooks/revoked.js'
import type { OutgoingCap } from './cluster.js'
import { boundedOffline, reportDrop } from './offline-queue.js'

export { principalOf } from './hooks/context.js'

export interface BrokerDeps {
  credentials: CredentialStore
  ingest: Ingest
  metrics: Metrics
  log: Logger
  /** Serialises password (scrypt) checks from addresses that keep failing; never device tokens. */
  passwordThrottle?: PasswordThrottle
  /** Per-client limits; defaults in CLIENT_LIMIT_DEFAULTS. */
  limits?: Partial<ClientLimits>
  /**
   * Shared routing and sessions for a cluster of gateways (gateway/cluster.ts: mqemitter-redis
   * and aedes-persistence-redis); without it, aedes' in-memory defaults (one process).
   */
  cluster?: { mq: unknown, persistence: unknown, heartbeatIntervalMs: number, capOutgoing?: (cap: OutgoingCap) => void }
}

export async function createBroker (deps: BrokerDeps): Promise<Aedes> {
  const { credentials, ingest, metrics, log } = deps
  const limits: ClientLimits = { ...CLIENT_LIMIT_DEFAULTS, ...deps.limits }
  const refusals = new RefusalLog(log)
  const noise = new RefusalLog(log, { level: 'debug' })
  // MAX_QUEUED_PER_CLIENT: in memory on one process, on the Redis queues in a cluster (cluster.ts).
  deps.cluster?.capOutgoing?.({ max: limits.maxQueued, onDrop: reportDrop(limits.maxQueued, metrics, refusals) })
  const ctx = createHookContext({ limits, metrics, log, refusals })

  const broker = await Aedes.createBroker({
    // A frozen subscriber must not stall delivery for everyone (aedes docs: drainTimeout).
    drainTimeout: 10_000,
    heartbeatInterval: deps.cluster?.heartbeatIntervalMs ?? 60_000,
    ...(deps.cluster !== undefined ? { mq: deps.cluster.mq, persistence: deps.cluster.persistence } : { persistence: boundedOffline(limits.maxQueued, metrics, refusals) }),
    connectTimeout: 10_000,
    maxClientsIdLength: 128,
    // Packets a client may pipeline before its CONNECT is authenticated.
    queueLimit: limits.queueLimit,
    authenticate: authenticateHook(ctx, credentials, deps.passwordThrottle),
    authorizePublish: authorizePublishHook(ctx, ingest),
    authorizeSubscribe: authorizeSubscribeHook(ctx),
    authorizeForward: authorizeForwardHook(ctx)
  })

  trackClientState(broker, ctx)

  // aedes 1.2.0 + mqemitter 7: when mqemitter's queue has formed (all `concurrency` slots held)
  // and is released, a queued message nobody subscribes to completes synchronously
  // (fastparallel calls done at once for zero listeners), which releases the next one: recursion
  // as deep as the queue, "Maximum call stack size exceeded", process down. Device telemetry is
  // exactly such a message. One listener on every topic that completes on the next turn makes
  // every delivery asynchronous, so a release can never recurse. Reproduced without it by
  // loadtest/mqemitter-overflow.ts. Only on the in-process mqemitter: with mqemitter-redis a
  // '#' listener would pull every message of the cluster into this process; there the packet
  // guard's write-time cut (no delivery ever waits on a slow socket) is what keeps the queue
  // from forming. The completions of one turn share one setImmediate (an Immediate per message
  // was garbage made per frame, issue 12); each still runs on the next turn, in order, and one
  // that releases another message queues that one's completion for the turn after.
  if (deps.cluster === undefined) {
    let due: Array<() => void> = []
    const complete = (): void => {
      const now = due
      due = []
      for (let i = 0; i < now.length; i++) now[i]!()
    }
    broker.subscribe('#', (_packet: AedesPublishPacket, cb: () => void) => { if (due.push(cb) === 1) setImmediate(complete) }, () => {})
  }

  logClientErrors(broker, noise)
  broker.once('closed', () => { refusals.close(); noise.close() })

  disconnectRevoked(broker, credentials, log)
  return broker
}

export type { PublishPacket }
