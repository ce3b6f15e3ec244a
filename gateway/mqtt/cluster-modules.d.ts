/**
 * Minimal typings for aedes-persistence-redis 11's async persistence (the class aedes 1.x needs:
 * its package entry wraps it in a callback adapter whose setup() aedes 1.x refuses). Only what
 * gateway/cluster.ts uses; the options are ioredis connection options.
 */
declare module 'aedes-persistence-redis/asyncPersistence.js' {
  namespace AsyncRedisPersistence {
    interface Options {
      host?: string
      port?: number
      username?: string
      password?: string
      db?: number
      /** Most queued QoS>0 messages delivered to a reconnecting client (default 1000). */
      maxSessionDelivery?: number
      /** ioredis: commands issued while disconnected fail after this many retries (null = wait). */
      maxRetriesPerRequest?: number | null
      /** An ioredis connection to use instead of one made from the options above. */
      conn?: unknown
    }
  }
  class AsyncRedisPersistence {
    constructor (opts?: AsyncRedisPersistence.Options)
    setup (broker: unknown): Promise<void>
    /** Retained messages matching the patterns (an async generator, not a stream). */
    createRetainedStreamCombi (patterns: string[]): AsyncIterable<unknown>
    /** A client's queued QoS>0 messages (an async generator). */
    outgoingStream (client: unknown): AsyncIterable<unknown>
    /** Queues `packet` for each offline subscriber: `outgoing:<clientId>` lists of packet keys. */
    outgoingEnqueueCombi (subs: Array<{ clientId: string }> | null | undefined, packet: unknown): Promise<void>
    /** Deletes the will `brokerId` stored for client `id` (returns the will, or null). */
    delWill (client: { id: string, brokerId: string }): Promise<unknown>
    destroy (): Promise<void>
  }
  export = AsyncRedisPersistence
}
