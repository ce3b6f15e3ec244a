/** Revoked credentials end live sessions too (the credential store's 'revoked' event). */
import type { Aedes, Client } from 'aedes'
import type { Logger } from 'pino'
import type { CredentialStore } from '../../credentials.js'
import { cap } from '../../logger.js'
import { nameOf, principalOf } from './context.js'

/** aedes keeps connected clients in `broker.clients` (id → Client); not in its typings. */
function clientsOf (broker: Aedes): Client[] {
  const clients = (broker as unknown as { clients: Record<string, Client> }).clients
  return Object.values(clients)
}

export function disconnectRevoked (broker: Aedes, credentials: CredentialStore, log: Logger): void {
  credentials.on('revoked', (name: string) => {
    for (const c of clientsOf(broker)) {
      const p = principalOf(c)
      if (p !== undefined && nameOf(p) === name) {
        log.info({ clientId: cap(c.id) }, 'credentials revoked: disconnecting')
        c.close()
      }
    }
  })
}
