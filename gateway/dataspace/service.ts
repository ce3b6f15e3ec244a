/**
 * The dataspace as one gateway component: keys, the revocation list, the audit log, the permit
 * check, the live hub and the catalogue. open() builds it, close() ends live streams and lets
 * pending audit appends finish (safe to call twice).
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import {
  AuditLog,
  Catalog,
  DATASPACE_DEFAULTS,
  DataspaceError,
  InfluxReader,
  ResearchLiveHub,
  ReleasedQuasiIdentifiers,
  Revocations,
  TrustedIssuers,
  auditLogPath,
  defaultAuditHeadPath,
  openKeys,
  readAnchor,
  verifyPermitToken,
  writeAnchor,
  type SignedHead,
  type AlertSource,
  type DataspaceKeys,
  type DataspaceOptions,
  type FrameSource,
  headVerifies,
  type Permit
} from '../../streams/index.js'
import type { Config } from '../config.js'
import { listUsers, type CredentialStore } from '../credentials.js'
import { createDataspaceMetrics, type DataspaceMetrics } from './metrics.js'

export interface DataspaceDeps {
  config: Config
  credentials: CredentialStore
  registry: Registry
  log: Logger
}

/** The dataspace options a gateway config sets; the rest keep their defaults. */
export function dataspaceOptions (c: Config): DataspaceOptions {
  return {
    ...DATASPACE_DEFAULTS,
    k: c.dataspaceK,
    chunkRows: c.dataspaceChunkRows,
    maxEncounters: c.dataspaceMaxEncounters,
    liveMaxBufferBytes: c.dataspaceLiveMaxBufferBytes
  }
}

/** The pinned audit public key (DATASPACE_AUDIT_PUBLIC_KEY), or null when none is configured. */
export async function pinnedAuditKey (c: Config): Promise<KeyObject | null> {
  if (c.dataspaceAuditPublicKey === undefined) return null
  const path = resolve(c.dataspaceAuditPublicKey)
  let key: KeyObject
  try {
    key = createPublicKey(await readFile(path, 'utf8'))
  } catch (err) {
    throw new DataspaceError('AMB_ERR_DATASPACE_KEYS', `DATASPACE_AUDIT_PUBLIC_KEY ${path}: ${(err as Error).message}`, { cause: err })
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new DataspaceError('AMB_ERR_DATASPACE_KEYS', `DATASPACE_AUDIT_PUBLIC_KEY ${path} is not an Ed25519 public key`)
  return key
}

/** The newest anchor in InfluxDB (null without INFLUX_URL, or when it cannot be read: `why` says). */
export async function latestAnchor (c: Config): Promise<{ anchor: SignedHead | null, why: string | null }> {
  const reader = influxReader(c, dataspaceOptions(c))
  if (reader === null) return { anchor: null, why: 'no InfluxDB configured (INFLUX_URL): no anchor to check against' }
  try {
    // Bounded: a gateway starting while InfluxDB is unreachable must not wait on it.
    return { anchor: await readAnchor(reader, AbortSignal.timeout(2000)), why: null }
  } catch (err) {
    return { anchor: null, why: `the anchors in InfluxDB could not be read: ${(err as Error).message.slice(0, 200)}` }
  } finally {
    reader.close()
  }
}

/**
 * Opens the audit log with the pinned key (or, unpinned, the key under DATA_DIR) and the newest
 * anchor as its rollback floor. Used by the gateway and by every CLI command that appends.
 */
export async function openAuditLog (c: Config, keys: DataspaceKeys, onIntegrityFailure?: (message: string) => void, onHeadSigned?: (head: SignedHead) => void | Promise<void>): Promise<{ audit: AuditLog, pinned: boolean, anchorNote: string | null }> {
  const pinned = await pinnedAuditKey(c)
  const { anchor, why } = await latestAnchor(c)
  const publicKey = pinned ?? keys.auditPublicKey
  const audit = await AuditLog.open({
    logPath: auditLogPath(c.dataDir),
    headPath: auditHeadPath(c),
    privateKey: keys.auditPrivateKey,
    publicKey,
    // An anchor that does not verify with our key is not ours: it raises no floor.
    floor: anchor !== null && headVerifies(anchor, publicKey) ? anchor : null,
    ...(onIntegrityFailure !== undefined ? { onIntegrityFailure } : {}),
    ...(onHeadSigned !== undefined ? { onHeadSigned } : {})
  })
  return { audit, pinned: pinned !== null, anchorNote: why }
}

export function auditHeadPath (c: Config): string {
  return c.dataspaceAuditHead !== undefined ? resolve(c.dataspaceAuditHead) : defaultAuditHeadPath(c.dataDir)
}

/** The InfluxDB extracts read from (the one the sink writes to), or null without INFLUX_URL. */
export function influxReader (c: Config, o: DataspaceOptions): InfluxReader | null {
  if (c.influxUrl === undefined) return null
  return new InfluxReader({
    url: c.influxUrl,
    db: c.influxApi === 'v1' ? c.influxDb : c.influxBucket,
    token: c.influxToken,
    chunkRows: o.chunkRows,
    timeoutMs: o.queryTimeoutMs
  })
}

/** Resolves a credential other than a permit (a DSP transfer token) to the permit it stands for; null: not its kind. */
export type TokenResolver = (token: string, nowMs: number) => Promise<Permit | null>

export class Dataspace {
  private closed = false
  private readonly tokenResolvers: TokenResolver[] = []

  private constructor (
    readonly config: Config,
    readonly options: DataspaceOptions,
    readonly keys: DataspaceKeys,
    readonly revocations: Revocations,
    readonly audit: AuditLog,
    readonly hub: ResearchLiveHub,
    readonly catalog: Catalog,
    readonly reader: InfluxReader | null,
    readonly metrics: DataspaceMetrics,
    private readonly log: Logger,
    private readonly detach: () => void,
    readonly anchors: Anchors,
    readonly released: ReleasedQuasiIdentifiers,
    /** Access bodies whose permits are honoured (DATASPACE_PERMIT_ISSUERS), or null. */
    readonly issuers: TrustedIssuers | null
  ) {}

  static async open (deps: DataspaceDeps): Promise<Dataspace> {
    const { config, log } = deps
    const options = dataspaceOptions(config)
    const metrics = createDataspaceMetrics(deps.registry)
    const keys = await openKeys(config.dataDir)
    // Anchors needs the audit log, and the audit log hands every head it signs to Anchors.
    let anchors: Anchors | null = null
    const { audit, pinned, anchorNote } = await openAuditLog(config, keys, message => {
      metrics.auditIntegrityFailures.inc()
      log.error({ problem: message }, 'AUDIT LOG INTEGRITY FAILURE: appends stopped, dataspace access refused (503) until an operator investigates and runs `ambulink audit recover`')
    }, async head => { await anchors?.published(head) })
    if (!pinned) log.warn('DATASPACE_AUDIT_PUBLIC_KEY is not set: the audit log is checked with the key under DATA_DIR, which an insider can replace; pin it outside DATA_DIR')
    if (anchorNote !== null) log.warn({ reason: anchorNote }, 'audit log: no anchor read at start; rollbacks from before this start cannot be caught here')
    const revocations = await Revocations.open(config.dataDir, config.credentialsPollMs)
    const issuers = config.dataspacePermitIssuers === undefined
      ? null
      : await TrustedIssuers.open(config.dataspacePermitIssuers, { pollMs: config.dataspaceIssuerPollMs, jwksCooldownMs: config.dataspaceJwksCooldownMs, fetchTimeoutMs: 5000 })
    const hub = new ResearchLiveHub({
      maxBufferedBytes: options.liveMaxBufferBytes,
      onCutoff: () => { metrics.liveCutoffs.inc() }
    })
    metrics.sources.liveSubscribers = () => hub.size

    // Revocations reach open streams without a restart: the list is polled, and a researcher
    // removed from the credentials (or re-added with another role) loses their streams.
    const onRevoked = (ids: string[]): void => {
      const n = hub.endWhere(s => ids.includes(s.permitId), 'permit revoked')
      if (n > 0) log.info({ permits: ids.length, streams: n }, 'permit revoked: live streams closed')
    }
    const onUserRevoked = (name: string): void => { hub.endWhere(s => s.researcher === name, 'permit revoked') }
    const onError = (err: Error): void => { log.error({ err }, 'reading the permit revocation list failed') }
    revocations.on('revoked', onRevoked)
    revocations.on('error', onError)
    issuers?.on('revoked', onRevoked)
    issuers?.on('error', onError)
    deps.credentials.on('revoked', onUserRevoked)
    const detach = (): void => {
      revocations.off('revoked', onRevoked)
      revocations.off('error', onError)
      issuers?.off('revoked', onRevoked)
      issuers?.off('error', onError)
      issuers?.close()
      deps.credentials.off('revoked', onUserRevoked)
    }
    const reader = influxReader(config, options)
    const catalog = new Catalog(reader, options.catalogCacheMs)
    anchors = new Anchors(audit, reader, log, config.dataspaceAuditAnchorMs)
    log.info({ k: options.k, extracts: reader !== null }, 'dataspace ready')
    return new Dataspace(config, options, keys, revocations, audit, hub, catalog, reader, metrics, log, detach, anchors, ReleasedQuasiIdentifiers.forDataDir(config.dataDir), issuers)
  }

  /** Accepts another kind of bearer credential on the extract (the DSP provider's transfer tokens). */
  addTokenResolver (r: TokenResolver): void { this.tokenResolvers.push(r) }

  /** Sends ingested frames (Ingest's `frame` events) to live subscribers of `vitals`. */
  attachFrames (source: FrameSource): void { this.hub.attachFrames(source) }

  /** Sends alert events (the alert engine's `alert` events) to live subscribers of `alerts`. */
  attachAlerts (source: AlertSource): void { this.hub.attachAlerts(source) }

  /**
   * Ends every live stream with 1001 (going away). Called at shutdown before the HTTP server
   * closes: that closes the WebSockets still open without a code.
   */
  endLiveStreams (): void { this.hub.endWhere(() => true, 'shutting down') }

  /**
   * The permit a bearer token stands for: signature, shape, expiry, revocation, and the
   * researcher still holding the researcher role. Throws a 401 DataspaceError otherwise.
   */
  async authenticate (token: string | undefined, nowMs = Date.now()): Promise<Permit> {
    if (token === undefined || token === '') throw new DataspaceError('AMB_ERR_PERMIT_MISSING', 'send the data permit as `Authorization: Bearer <permit>`')
    for (const r of this.tokenResolvers) {
      let p: Permit | null
      try { p = await r(token, nowMs) } catch (err) { throw new DataspaceError('AMB_ERR_PERMIT_INVALID', (err as Error).message, { cause: err }) }
      if (p !== null) return p
    }
    // A token naming an issuer (`iss`) is an access body's; local permits carry none.
    if (TrustedIssuers.claimsIssuer(token)) {
      if (this.issuers === null) throw new DataspaceError('AMB_ERR_PERMIT_UNKNOWN_ISSUER', 'this gateway trusts no outside permit issuer (DATASPACE_PERMIT_ISSUERS)')
      return await this.authenticateExternal(this.issuers, token, nowMs)
    }
    const permit = verifyPermitToken(token, this.keys.permitPublicKey)
    if (permit.expiresAtMs <= nowMs) throw new DataspaceError('AMB_ERR_PERMIT_EXPIRED', `permit ${permit.id} expired at ${new Date(permit.expiresAtMs).toISOString()}`)
    await this.revocations.refresh()
    if (this.revocations.has(permit.id)) throw new DataspaceError('AMB_ERR_PERMIT_REVOKED', `permit ${permit.id} was revoked`)
    const user = (await listUsers(this.config.dataDir)).find(u => u.name === permit.researcher)
    if (user?.role !== 'researcher') {
      throw new DataspaceError('AMB_ERR_PERMIT_REVOKED', `permit ${permit.id} names ${permit.researcher}, who is no longer a researcher`)
    }
    // Bound to the account, not the name (issue #10, item 10): a researcher removed and added
    // again under the same name is a new account and does not get the old permits back.
    if (permit.accountId === null || user.accountId !== permit.accountId) {
      throw new DataspaceError('AMB_ERR_PERMIT_REVOKED', `permit ${permit.id} was issued to another account named ${permit.researcher} (removed since)`)
    }
    return permit
  }

  private async authenticateExternal (issuers: TrustedIssuers, token: string, nowMs: number): Promise<Permit> {
    const p = await issuers.verify(token, nowMs)
    if (issuers.isRevoked(p.issuer, p.id)) throw new DataspaceError('AMB_ERR_PERMIT_REVOKED', `permit ${p.id} was revoked by its issuer`)
    // The local revocation list applies too: an operator can stop an outside permit here.
    await this.revocations.refresh()
    if (this.revocations.has(p.id)) throw new DataspaceError('AMB_ERR_PERMIT_REVOKED', `permit ${p.id} was revoked`)
    const name = issuers.researcherFor(p.issuer, p.researcher)
    const user = name === null ? undefined : (await listUsers(this.config.dataDir)).find(u => u.name === name)
    if (user?.role !== 'researcher' || user.accountId === null) {
      throw new DataspaceError('AMB_ERR_PERMIT_RESEARCHER_UNBOUND', `permit ${p.id}: its researcher is not bound to a local researcher account`)
    }
    // From here on the permit is the local account's: streams end when that account goes.
    return { ...p, researcher: user.name, accountId: user.accountId }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.detach()
    this.revocations.close()
    this.hub.close()
    await this.anchors.close()
    await this.audit.close()
    this.reader?.close()
    this.log.debug('dataspace closed')
  }
}

/**
 * Publishes the audit head outside DATA_DIR:
 * - every head as it is signed (`published`, awaited before the access it records goes on): a
 *   structured line in the gateway's log stream (`"msg":"audit head signed"`, `auditHead` with
 *   seq, counter, hash, at, sig; stdout, shipped off the machine by the log collector) and, with
 *   InfluxDB, a point written synchronously (bounded to 2 s; while InfluxDB fails, heads are not
 *   waited for and the periodic anchor retries);
 * - every `intervalMs` (when it moved) and at close: the current head again (the CLI's heads,
 *   and any write that failed), as `"msg":"audit head anchor"` and a point in InfluxDB.
 */
export class Anchors {
  private timer: NodeJS.Timeout
  private lastCounter = -1
  private running: Promise<void> = Promise.resolve()
  private closed = false
  /** The last InfluxDB write failed: do not make appends wait on it until one succeeds again. */
  private storeFailing = false

  constructor (private readonly audit: AuditLog, private readonly reader: InfluxReader | null, private readonly log: Logger, intervalMs: number) {
    this.timer = setInterval(() => { void this.anchor() }, intervalMs)
    this.timer.unref()
  }

  /** Anchors the current head now (if it moved); resolves when written. */
  anchor (timeoutMs = 5000): Promise<void> {
    this.running = this.running.then(async () => {
      const head = await this.audit.currentHead().catch(() => null)
      if (head === null || head.counter === this.lastCounter) return
      this.log.info({ auditAnchor: head }, 'audit head anchor')
      if (this.reader !== null) {
        try {
          await writeAnchor(this.reader, head, timeoutMs)
          this.storeFailing = false
        } catch (err) {
          this.storeFailing = true
          this.log.warn({ err: (err as Error).message }, 'audit anchor not written to InfluxDB; retried at the next interval')
          return
        }
      }
      this.lastCounter = head.counter
    })
    return this.running
  }

  /** A head just signed by this process: to the log stream at once, and to InfluxDB (issue #10, item 2). */
  async published (head: SignedHead): Promise<void> {
    // pino writes to stdout synchronously: the line has left the process when this returns.
    this.log.info({ auditHead: head }, 'audit head signed')
    if (this.reader === null || this.storeFailing) return
    try {
      await writeAnchor(this.reader, head, 2000)
      if (head.counter > this.lastCounter) this.lastCounter = head.counter
    } catch (err) {
      this.storeFailing = true
      this.log.warn({ err: (err as Error).message }, 'audit head not written to InfluxDB; appends no longer wait for it, the periodic anchor retries')
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    // Shutdown must stay quick when InfluxDB is down: one short try.
    await this.anchor(1000)
  }
}
