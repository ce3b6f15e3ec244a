/**
 * The MQTT broker (aedes) with Ambulink's authentication and topic ACLs. aedes accepts everyone
 * unless told otherwise, so every hook is supplied:
 * - authenticate: device = unit id + token (or, on mTLS, the certificate's CN), user = name +
 *   password; the MQTT client id must be the principal's name or start with "<name>:", so no one
 *   can take over another unit's session by reusing its client id.
 * - authorizePublish: a device publishes only under its own `units/{unit}/`; telemetry is
 *   ingested (spooled, fsync'd) before aedes sends the PUBACK. Users publish nothing.
 * - authorizeSubscribe: devices subscribe to nothing; clinicians and admins to alerts and unit
 *   status; refused subscriptions get SUBACK 0x80.
 * Per-client limits (issue #10, item 13): topic length, subscriptions held, and QoS 1 messages
 * sent but not yet acknowledged; each refusal is counted with its code and logged at a bounded
 * rate (RefusalLog), attacker-supplied strings capped.
 */
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket, type Subscription } from 'aedes'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import { isDeviceToken, type CredentialStore, type Principal } from '../credentials.js'
import { AuthError, type GatewayErrorCode } from '../errors.js'
import type { Ingest } from '../ingest.js'
import { CLIENT_LIMIT_DEFAULTS, type ClientLimits, type PasswordThrottle } from '../limits.js'
import { cap, RefusalLog } from '../logger.js'
import type { Metrics } from '../metrics.js'
import { boundedOffline } from './offline-queue.js'
import { remoteAddressOf, transportOf } from './packet-guard.js'

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
  cluster?: { mq: unknown, persistence: unknown, heartbeatIntervalMs: number }
}

/** The only payloads of units/{unit}/status (docs/device-contract.md). */
const STATUS_PAYLOADS = new Set(['online', 'offline'])

function validStatus (payload: unknown, qos: number): boolean {
  const text = Buffer.isBuffer(payload) ? payload.toString('latin1') : typeof payload === 'string' ? payload : ''
  return qos <= 1 && STATUS_PAYLOADS.has(text)
}

/** MQTT topic filter matching (§4.7): '+' one level, '#' the rest. */
function matches (filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false
  }
  return f.length === t.length
}

/** What the gateway tracks per connected user: granted filters (with QoS) and unacked sends. */
interface ClientState { subs: Map<string, number>, inflight: number }

const principals = new WeakMap<Client, Principal>()

export function principalOf (client: Client): Principal | undefined { return principals.get(client) }

function nameOf (p: Principal): string { return p.kind === 'device' ? p.unit : p.name }

/**
 * `name` owns `name` and `name:<suffix>`, unless a longer registered name claims the id: names
 * may contain ':', and unit "amb-01" must not take unit "amb-01:2"'s id (aedes would close the
 * other unit's connection to hand its session over).
 */
function ownsClientId (name: string, clientId: string, isRegistered: (n: string) => boolean): boolean {
  if (clientId === name) return true
  if (!clientId.startsWith(name + ':')) return false
  for (let i = name.length + 1; i <= clientId.length; i++) {
    if ((i === clientId.length || clientId[i] === ':') && isRegistered(clientId.slice(0, i))) return false
  }
  return true
}

/** Subscriptions a user role may hold (MQTT topic filters, matched exactly). */
const ROLE_FILTERS: Record<string, readonly string[]> = {
  clinician: ['alerts/#', 'alerts/+', 'units/+/status'],
  admin: ['alerts/#', 'alerts/+', 'units/+/status'],
  researcher: []
}

/** One unit's alerts or status, for clinicians following a single ambulance. */
const ONE_UNIT_FILTER = /^(alerts\/[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}|units\/[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\/status)$/

export async function createBroker (deps: BrokerDeps): Promise<Aedes> {
  const { credentials, ingest, metrics, log } = deps
  const limits: ClientLimits = { ...CLIENT_LIMIT_DEFAULTS, ...deps.limits }
  const refusals = new RefusalLog(log)
  const noise = new RefusalLog(log, { level: 'debug' })
  const states = new WeakMap<Client, ClientState>()
  const stateOf = (client: Client): ClientState => {
    let st = states.get(client)
    if (st === undefined) states.set(client, st = { subs: new Map(), inflight: 0 })
    return st
  }

  const refuse = (reason: GatewayErrorCode, client: Client | null, detail: string): Error => {
    metrics.mqttRefused.inc({ reason })
    refusals.warn(reason, { clientId: client?.id, detail }, 'mqtt refused')
    return new AuthError(reason, detail)
  }

  const broker = await Aedes.createBroker({
    // A frozen subscriber must not stall delivery for everyone (aedes docs: drainTimeout).
    drainTimeout: 10_000,
    heartbeatInterval: deps.cluster?.heartbeatIntervalMs ?? 60_000,
    ...(deps.cluster !== undefined ? { mq: deps.cluster.mq, persistence: deps.cluster.persistence } : { persistence: boundedOffline(limits.maxQueued, metrics, refusals) }),
    connectTimeout: 10_000,
    maxClientsIdLength: 128,
    // Packets a client may pipeline before its CONNECT is authenticated.
    queueLimit: limits.queueLimit,

    authenticate (client, username, password, done) {
      const fail = (code: 'AMB_ERR_UNAUTHENTICATED' | 'AMB_ERR_CLIENT_ID' | 'AMB_ERR_FORBIDDEN_TOPIC' | 'AMB_ERR_BAD_STATUS', detail: string): void => {
        const err = refuse(code, client, detail) as AuthError & { returnCode: number }
        done(err as never, false)
      }
      const cert = peerCertificateCN(client)
      const address = remoteAddressOf(client.conn)
      // No budget, no lockout (issue #10, item 11): a device token costs one HMAC, so nothing an
      // attacker sends for a unit's name can delay or refuse the device that has the token.
      // Password checks (scrypt) from an address that keeps failing run one at a time instead.
      const check = (name: string, secret: string): Promise<Principal | null> => {
        if (isDeviceToken(secret) || deps.passwordThrottle === undefined) return credentials.verify(name, secret)
        const throttle = deps.passwordThrottle
        return throttle.run(address, () => credentials.verify(name, secret)).then(p => {
          if (p === null) throttle.failed(address)
          return p
        })
      }
      const failLogin = (detail: string): void => {
        fail('AMB_ERR_UNAUTHENTICATED', `${detail} (from ${address})`)
      }
      const run = async (): Promise<void> => {
        let principal: Principal | null = null
        if (cert !== undefined) {
          // mTLS: the TLS layer already verified the chain; the CN names the unit.
          if (username !== undefined && username !== cert) return fail('AMB_ERR_UNAUTHENTICATED', `username differs from certificate CN ${cert}`)
          // A unit the CLI added since the last poll: look once more before refusing.
          if (!credentials.hasDevice(cert)) await credentials.reload()
          if (!credentials.hasDevice(cert)) return fail('AMB_ERR_UNAUTHENTICATED', `certificate CN ${cert} is not a registered unit`)
          if (password !== undefined && password.length > 0 && (await check(cert, password.toString())) === null) {
            return failLogin('wrong token')
          }
          principal = { kind: 'device', unit: cert }
        } else {
          if (username === undefined || password === undefined) return failLogin('no username/password')
          principal = await check(username, password.toString())
          // Name only principals that exist: an unknown "user name" may be a secret typed into
          // the wrong field (some platforms put the device token there), and must not be logged.
          if (principal === null) return failLogin(`bad credentials for ${credentials.has(username) ? username : 'an unknown name'}`)
        }
        if (!ownsClientId(nameOf(principal), client.id, n => credentials.has(n))) {
          return fail('AMB_ERR_CLIENT_ID', `client id ${client.id} does not belong to ${nameOf(principal)}`)
        }
        // A will is published later, maybe when no client is there to check (after a restart,
        // or by another process): so it is checked now. Only a unit's own status topic.
        const will = (client as unknown as { _will?: { topic?: string, payload?: unknown, qos?: number } | null })._will
        if (will?.topic !== undefined && (principal.kind !== 'device' || will.topic !== `units/${principal.unit}/status`)) {
          return fail('AMB_ERR_FORBIDDEN_TOPIC', `${nameOf(principal)} may not set a will on ${will.topic}`)
        }
        if (will?.topic !== undefined && !validStatus(will.payload, will.qos ?? 0)) {
          return fail('AMB_ERR_BAD_STATUS', `${nameOf(principal)}: a status will must be "online" or "offline" at QoS 0 or 1`)
        }
        principals.set(client, principal)
        done(null, true)
      }
      run().catch(err => { done(err as never, false) })
    },

    authorizePublish (client, packet, done) {
      if (packet.topic.length > limits.maxTopicLength) return done(refuse('AMB_ERR_TOPIC_TOO_LONG', client, `topic of ${packet.topic.length} characters, MAX_TOPIC_LENGTH is ${limits.maxTopicLength}`))
      if (packet.topic.startsWith('$')) return done(refuse('AMB_ERR_FORBIDDEN_TOPIC', client, `publish to ${packet.topic}`))
      if (client === null) {
        // A will published by aedes after its client is gone: only status topics carry wills.
        return /^units\/[^/]+\/status$/.test(packet.topic) ? done(null) : done(new Error('will outside units/{unit}/status'))
      }
      const p = principals.get(client)
      if (p === undefined || p.kind !== 'device') return done(refuse('AMB_ERR_FORBIDDEN_TOPIC', client, `${p?.kind ?? 'anonymous'} may not publish (${packet.topic})`))
      const prefix = `units/${p.unit}/`
      if (!packet.topic.startsWith(prefix)) return done(refuse('AMB_ERR_FORBIDDEN_TOPIC', client, `${p.unit} may not publish to ${packet.topic}`))
      const leaf = packet.topic.slice(prefix.length)
      // The device contract names two topics; anything else would only grow retained state.
      if (leaf === 'status') {
        // Clinicians receive (and late subscribers get retained) whatever is accepted here.
        if (!validStatus(packet.payload, packet.qos)) return done(refuse('AMB_ERR_BAD_STATUS', client, `${p.unit}: status must be "online" or "offline" at QoS 0 or 1 (got ${packet.payload.length} bytes at QoS ${packet.qos})`))
        return done(null)
      }
      if (leaf !== 'telemetry') return done(refuse('AMB_ERR_FORBIDDEN_TOPIC', client, `${p.unit} may not publish to ${packet.topic}`))
      // Telemetry is consumed here, never retained nor routed to subscribers as raw frames.
      packet.retain = false
      ingest.ingest(p.unit, packet.payload as Buffer, 'mqtt').then(
        () => { done(null) },
        (err: Error) => {
          // Could not keep the frame (spool full or failing): no PUBACK. MQTT 3.1.1 has no
          // negative ack, so the connection closes and the device resends later.
          log.error({ unit: p.unit, code: (err as { code?: string }).code, err: err.message }, 'frame not spooled; disconnecting device')
          done(err)
        }
      )
    },

    authorizeSubscribe (client, sub: Subscription, done) {
      if (sub.topic.length > limits.maxTopicLength) {
        refuse('AMB_ERR_TOPIC_TOO_LONG', client, `topic filter of ${sub.topic.length} characters, MAX_TOPIC_LENGTH is ${limits.maxTopicLength}`)
        return done(null, null)
      }
      const p = principals.get(client)
      const allowed = p?.kind === 'user' && ((ROLE_FILTERS[p.role] ?? []).includes(sub.topic) || (p.role !== 'researcher' && ONE_UNIT_FILTER.test(sub.topic)))
      if (!allowed) {
        refuse('AMB_ERR_FORBIDDEN_SUBSCRIBE', client, `${p === undefined ? 'anonymous' : nameOf(p)} may not subscribe to ${sub.topic}`)
        return done(null, null)
      }
      const st = stateOf(client)
      if (!st.subs.has(sub.topic) && st.subs.size >= limits.maxSubscriptions) {
        refuse('AMB_ERR_TOO_MANY_SUBSCRIPTIONS', client, `${nameOf(p)} holds ${st.subs.size} subscriptions, MAX_SUBSCRIPTIONS_PER_CLIENT is ${limits.maxSubscriptions}`)
        return done(null, null)
      }
      st.subs.set(sub.topic, sub.qos)
      done(null, sub)
    },

    authorizeForward (client, packet: AedesPublishPacket) {
      // Raw telemetry is never forwarded (see authorizePublish); devices receive nothing.
      if (principals.get(client)?.kind !== 'user') return null
      if (packet.topic.endsWith('/telemetry')) return null
      // A subscriber whose connection is congested is cut now rather than after drainTimeout:
      // aedes would hold an mqemitter slot per delivery waiting for 'drain' (see packet-guard.ts,
      // which does the same for every guarded connection at write time; this covers any
      // connection handed to aedes without the guard).
      if ((client.conn as Duplex).writableNeedDrain) {
        cutSlowSubscriber(client)
        return null
      }
      // QoS 1 deliveries wait in aedes for the client's PUBACK: a client that never acks would
      // grow them without end. Delivered QoS = min(message, best matching subscription).
      if (packet.qos > 0) {
        const st = stateOf(client)
        let qos = 0
        for (const [filter, q] of st.subs) if (q > qos && matches(filter, packet.topic)) qos = q
        if (qos > 0) {
          if (st.inflight >= limits.maxInflight) {
            cutClient(client, 'AMB_ERR_TOO_MANY_INFLIGHT', `${st.inflight} QoS 1 messages unacknowledged, MAX_INFLIGHT_PER_CLIENT is ${limits.maxInflight}`)
            return null
          }
          st.inflight++
        }
      }
      return packet
    }
  })

  broker.on('ack', (_packet, client) => {
    const st = states.get(client)
    if (st !== undefined && st.inflight > 0) st.inflight--
  })
  broker.on('unsubscribe', (topics: string[], client) => {
    const st = states.get(client)
    if (st !== undefined) for (const t of topics) st.subs.delete(t)
  })

  // aedes 1.2.0 + mqemitter 7: when mqemitter's queue has formed (all `concurrency` slots held)
  // and is released, a queued message nobody subscribes to completes synchronously
  // (fastparallel calls done at once for zero listeners), which releases the next one: recursion
  // as deep as the queue, "Maximum call stack size exceeded", process down. Device telemetry is
  // exactly such a message. One listener on every topic that completes on the next turn makes
  // every delivery asynchronous, so a release can never recurse. Reproduced without it by
  // loadtest/mqemitter-overflow.ts. Only on the in-process mqemitter: with mqemitter-redis a
  // '#' listener would pull every message of the cluster into this process; there the packet
  // guard's write-time cut (no delivery ever waits on a slow socket) is what keeps the queue
  // from forming.
  if (deps.cluster === undefined) {
    broker.subscribe('#', (_packet: AedesPublishPacket, cb: () => void) => { setImmediate(cb) }, () => {})
  }

  const cutting = new WeakSet<Client>()
  const cutClient = (client: Client, reason: GatewayErrorCode, detail: string): void => {
    if (cutting.has(client)) return
    cutting.add(client)
    metrics.mqttRefused.inc({ reason })
    refusals.warn(reason, { clientId: client.id, detail }, 'mqtt client disconnected')
    // Not from inside mqemitter's delivery loop: aedes' close() unsubscribes synchronously.
    setImmediate(() => { (client.conn as Duplex).destroy() })
  }
  const cutSlowSubscriber = (client: Client): void => {
    cutClient(client, 'AMB_ERR_SUBSCRIBER_TOO_SLOW', `subscriber is not reading; ${(client.conn as Duplex).writableLength} bytes queued`)
  }

  // Protocol errors carry whatever the client sent (a 60 KB client id): capped, rate-limited.
  broker.on('clientError', (client, err) => {
    noise.warn('client-error', { clientId: cap(client.id), err: cap(err.message) }, 'mqtt client error')
  })
  broker.on('connectionError', (client, err) => {
    noise.warn('connection-error', { clientId: cap(client.id), err: cap(err.message) }, 'mqtt connection error')
  })
  broker.once('closed', () => { refusals.close(); noise.close() })

  // Revoked credentials end live sessions too.
  credentials.on('revoked', (name: string) => {
    for (const c of clientsOf(broker)) {
      const p = principals.get(c)
      if (p !== undefined && nameOf(p) === name) {
        log.info({ clientId: cap(c.id) }, 'credentials revoked: disconnecting')
        c.close()
      }
    }
  })
  return broker
}

/** aedes keeps connected clients in `broker.clients` (id → Client); not in its typings. */
function clientsOf (broker: Aedes): Client[] {
  const clients = (broker as unknown as { clients: Record<string, Client> }).clients
  return Object.values(clients)
}

function peerCertificateCN (client: Client): string | undefined {
  const sock = transportOf(client.conn) as Partial<TLSSocket>
  if (typeof sock.getPeerCertificate !== 'function' || sock.authorized !== true) return undefined
  const cn = sock.getPeerCertificate().subject?.CN
  return typeof cn === 'string' && cn !== '' ? cn : undefined
}

export type { PublishPacket }
