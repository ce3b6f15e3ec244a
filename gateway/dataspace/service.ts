/**
 * The dataspace as one gateway component: keys, the revocation list, the audit log, the permit
 * check, the live hub and the catalogue. open() builds it, close() ends live streams and lets
 * pending audit appends finish (safe to call twice).
 */
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
  Revocations,
  auditLogPath,
  defaultAuditHeadPath,
  openKeys,
  verifyPermitToken,
  type AlertSource,
  type DataspaceKeys,
  type DataspaceOptions,
  type FrameSource,
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

export class Dataspace {
  private closed = false

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
    private readonly detach: () => void
  ) {}

  static async open (deps: DataspaceDeps): Promise<Dataspace> {
    const { config, log } = deps
    const options = dataspaceOptions(config)
    const metrics = createDataspaceMetrics(deps.registry)
    const keys = await openKeys(config.dataDir)
    const audit = await AuditLog.open({
      logPath: auditLogPath(config.dataDir),
      headPath: auditHeadPath(config),
      privateKey: keys.auditPrivateKey,
      publicKey: keys.auditPublicKey,
      onAnomaly: message => {
        metrics.auditAnomalies.inc()
        log.error({ anomaly: message }, 'audit log anomaly: recorded in the log; `ambulink audit verify` will fail until it is investigated')
      }
    })
    const revocations = await Revocations.open(config.dataDir, config.credentialsPollMs)
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
    deps.credentials.on('revoked', onUserRevoked)
    const detach = (): void => {
      revocations.off('revoked', onRevoked)
      revocations.off('error', onError)
      deps.credentials.off('revoked', onUserRevoked)
    }
    const reader = influxReader(config, options)
    const catalog = new Catalog(reader, options.catalogCacheMs)
    log.info({ k: options.k, extracts: reader !== null }, 'dataspace ready')
    return new Dataspace(config, options, keys, revocations, audit, hub, catalog, reader, metrics, log, detach)
  }

  /** Sends ingested frames (Ingest's `frame` events) to live subscribers of `vitals`. */
  attachFrames (source: FrameSource): void { this.hub.attachFrames(source) }

  /** Sends alert events (the alert engine's `alert` events) to live subscribers of `alerts`. */
  attachAlerts (source: AlertSource): void { this.hub.attachAlerts(source) }

  /**
   * The permit a bearer token stands for: signature, shape, expiry, revocation, and the
   * researcher still holding the researcher role. Throws a 401 DataspaceError otherwise.
   */
  async authenticate (token: string | undefined, nowMs = Date.now()): Promise<Permit> {
    if (token === undefined || token === '') throw new DataspaceError('AMB_ERR_PERMIT_MISSING', 'send the data permit as `Authorization: Bearer <permit>`')
    const permit = verifyPermitToken(token, this.keys.permitPublicKey)
    if (permit.expiresAtMs <= nowMs) throw new DataspaceError('AMB_ERR_PERMIT_EXPIRED', `permit ${permit.id} expired at ${new Date(permit.expiresAtMs).toISOString()}`)
    await this.revocations.refresh()
    if (this.revocations.has(permit.id)) throw new DataspaceError('AMB_ERR_PERMIT_REVOKED', `permit ${permit.id} was revoked`)
    if (!await this.isResearcher(permit.researcher)) {
      throw new DataspaceError('AMB_ERR_PERMIT_REVOKED', `permit ${permit.id} names ${permit.researcher}, who is no longer a researcher`)
    }
    return permit
  }

  private async isResearcher (name: string): Promise<boolean> {
    return (await listUsers(this.config.dataDir)).some(u => u.name === name && u.role === 'researcher')
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.detach()
    this.revocations.close()
    this.hub.close()
    await this.audit.close()
    this.log.debug('dataspace closed')
  }
}
