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
 */
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket, type Subscription } from 'aedes'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import type { CredentialStore, Principal } from './credentials.js'
import { AuthError } from './errors.js'
import type { Ingest } from './ingest.js'
import type { Metrics } from './metrics.js'

export interface BrokerDeps {
  credentials: CredentialStore
  ingest: Ingest
  metrics: Metrics
  log: Logger
}

const principals = new WeakMap<Client, Principal>()

export function principalOf (client: Client): Principal | undefined { return principals.get(client) }

function nameOf (p: Principal): string { return p.kind === 'device' ? p.unit : p.name }

function ownsClientId (name: string, clientId: string): boolean {
  return clientId === name || clientId.startsWith(name + ':')
}

/** Subscriptions a user role may hold (MQTT topic filters, matched exactly). */
const ROLE_FILTERS: Record<string, readonly string[]> = {
  clinician: ['alerts/#', 'alerts/+', 'units/+/status'],
  admin: ['alerts/#', 'alerts/+', 'units/+/status'],
  researcher: []
}

export async function createBroker (deps: BrokerDeps): Promise<Aedes> {
  const { credentials, ingest, metrics, log } = deps

  const refuse = (reason: string, client: Client | null, detail: string): Error => {
    metrics.mqttRefused.inc({ reason })
    log.warn({ reason, clientId: client?.id, detail }, 'mqtt refused')
    return new AuthError(reason as AuthError['code'], detail)
  }

  const broker = await Aedes.createBroker({
    // A frozen subscriber must not stall delivery for everyone (aedes docs: drainTimeout).
    drainTimeout: 10_000,
    heartbeatInterval: 60_000,
    connectTimeout: 10_000,
    maxClientsIdLength: 128,

    authenticate (client, username, password, done) {
      const fail = (code: 'AMB_ERR_UNAUTHENTICATED' | 'AMB_ERR_CLIENT_ID', detail: string): void => {
        const err = refuse(code, client, detail) as AuthError & { returnCode: number }
        done(err as never, false)
      }
      const cert = peerCertificateCN(client)
      const run = async (): Promise<void> => {
        let principal: Principal | null = null
        if (cert !== undefined) {
          // mTLS: the TLS layer already verified the chain; the CN names the unit.
          if (username !== undefined && username !== cert) return fail('AMB_ERR_UNAUTHENTICATED', `username ${username} differs from certificate CN`)
          if (!credentials.hasDevice(cert)) return fail('AMB_ERR_UNAUTHENTICATED', `certificate CN ${cert} is not a registered unit`)
          if (password !== undefined && password.length > 0 && (await credentials.verify(cert, password.toString())) === null) {
            return fail('AMB_ERR_UNAUTHENTICATED', 'wrong token')
          }
          principal = { kind: 'device', unit: cert }
        } else {
          if (username === undefined || password === undefined) return fail('AMB_ERR_UNAUTHENTICATED', 'no username/password')
          principal = await credentials.verify(username, password.toString())
          if (principal === null) return fail('AMB_ERR_UNAUTHENTICATED', `bad credentials for ${username}`)
        }
        if (!ownsClientId(nameOf(principal), client.id)) {
          return fail('AMB_ERR_CLIENT_ID', `client id ${client.id} does not belong to ${nameOf(principal)}`)
        }
        principals.set(client, principal)
        done(null, true)
      }
      run().catch(err => { done(err as never, false) })
    },

    authorizePublish (client, packet, done) {
      if (packet.topic.startsWith('$')) return done(refuse('AMB_ERR_FORBIDDEN_TOPIC', client, `publish to ${packet.topic}`))
      if (client === null) {
        // A will published by aedes after its client is gone: only status topics carry wills.
        return /^units\/[^/]+\/status$/.test(packet.topic) ? done(null) : done(new Error('will outside units/{unit}/status'))
      }
      const p = principals.get(client)
      if (p === undefined || p.kind !== 'device') return done(refuse('AMB_ERR_FORBIDDEN_TOPIC', client, `${p?.kind ?? 'anonymous'} may not publish (${packet.topic})`))
      const prefix = `units/${p.unit}/`
      if (!packet.topic.startsWith(prefix)) return done(refuse('AMB_ERR_FORBIDDEN_TOPIC', client, `${p.unit} may not publish to ${packet.topic}`))
      if (packet.topic !== prefix + 'telemetry') return done(null)
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
      const p = principals.get(client)
      const allowed = p?.kind === 'user' && (ROLE_FILTERS[p.role] ?? []).includes(sub.topic)
      if (!allowed) {
        refuse('AMB_ERR_FORBIDDEN_SUBSCRIBE', client, `${p === undefined ? 'anonymous' : nameOf(p)} may not subscribe to ${sub.topic}`)
        return done(null, null)
      }
      done(null, sub)
    },

    authorizeForward (client, packet: AedesPublishPacket) {
      // Raw telemetry is never forwarded (see authorizePublish); devices receive nothing.
      if (principals.get(client)?.kind !== 'user') return null
      if (packet.topic.endsWith('/telemetry')) return null
      return packet
    }
  })

  broker.on('clientError', (client, err) => {
    log.debug({ clientId: client.id, err: err.message }, 'mqtt client error')
  })
  broker.on('connectionError', (client, err) => {
    log.debug({ clientId: client.id, err: err.message }, 'mqtt connection error')
  })

  // Revoked credentials end live sessions too.
  credentials.on('revoked', (name: string) => {
    for (const c of clientsOf(broker)) {
      const p = principals.get(c)
      if (p !== undefined && nameOf(p) === name) {
        log.info({ clientId: c.id }, 'credentials revoked: disconnecting')
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
  const sock = client.conn as Partial<TLSSocket>
  if (typeof sock.getPeerCertificate !== 'function' || sock.authorized !== true) return undefined
  const cn = sock.getPeerCertificate().subject?.CN
  return typeof cn === 'string' && cn !== '' ? cn : undefined
}

export type { PublishPacket }
