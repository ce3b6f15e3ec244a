/**
 * aedes `authenticate`: device = unit id + token (or, on mTLS, the certificate's CN), user = name +
 * password; the MQTT client id must be the principal's name or start with "<name>:", so no one
 * can take over another unit's session by reusing its client id. A will is checked here too.
 */
import type { Client } from 'aedes'
import type { TLSSocket } from 'node:tls'
import { isDeviceToken, type CredentialStore, type Principal } from '../../credentials.js'
import type { AuthError } from '../../errors.js'
import type { PasswordThrottle } from '../../limits.js'
import { remoteAddressOf, transportOf } from '../packet-guard.js'
import { nameOf, setPrincipal, validStatus, type Hook, type HookContext } from './context.js'

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

function peerCertificateCN (client: Client): string | undefined {
  const sock = transportOf(client.conn) as Partial<TLSSocket>
  if (typeof sock.getPeerCertificate !== 'function' || sock.authorized !== true) return undefined
  const cn = sock.getPeerCertificate().subject?.CN
  return typeof cn === 'string' && cn !== '' ? cn : undefined
}

export function authenticateHook (ctx: HookContext, credentials: CredentialStore, passwordThrottle: PasswordThrottle | undefined): Hook<'authenticate'> {
  return (client, username, password, done) => {
    const fail = (code: 'AMB_ERR_UNAUTHENTICATED' | 'AMB_ERR_CLIENT_ID' | 'AMB_ERR_FORBIDDEN_TOPIC' | 'AMB_ERR_BAD_STATUS', detail: string): void => {
      const err = ctx.refuse(code, client, detail) as AuthError & { returnCode: number }
      done(err as never, false)
    }
    const cert = peerCertificateCN(client)
    const address = remoteAddressOf(client.conn)
    // No budget, no lockout (issue #10, item 11): a device token costs one HMAC, so nothing an
    // attacker sends for a unit's name can delay or refuse the device that has the token.
    // Password checks (scrypt) from an address that keeps failing run one at a time instead.
    const check = (name: string, secret: string): Promise<Principal | null> => {
      if (isDeviceToken(secret) || passwordThrottle === undefined) return credentials.verify(name, secret)
      const throttle = passwordThrottle
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
      setPrincipal(client, principal)
      done(null, true)
    }
    run().catch(err => { done(err as never, false) })
  }
}
