/**
 * The one table of configuration: every option's environment name, default, unit and check.
 * Defaults owned by a component (decoder limits, spool, sink) are read from that component, so
 * no default exists twice. A bad value fails at start with a message naming the option.
 */
import { isAbsolute, relative, resolve } from 'node:path'
import { DECODER_DEFAULTS } from '../decoders/index.js'
import { DEAD_LETTER_DEFAULTS } from '../streams/index.js'
import { INFLUX_SINK_DEFAULTS } from '../streams/index.js'
import { catalogue, CodedError, createError, type ErrorDefinition } from '../decoders/index.js'
import { LIVE_HUB_DEFAULTS } from '../streams/index.js'
import { ALERT_ENGINE_DEFAULTS } from '../streams/index.js'
import { SPOOL_DEFAULTS } from '../streams/index.js'
import { DATASPACE_DEFAULTS, DEFAULT_LOCAL_CODE_SYSTEM } from '../streams/index.js'
import { CLIENT_LIMIT_DEFAULTS } from './limits.js'
import { SESSION_DEFAULTS } from './sessions.js'

export type ConfigErrorCode = 'AMB_ERR_CONFIG'

export const CONFIG_ERRORS: Readonly<Record<ConfigErrorCode, ErrorDefinition<ConfigErrorCode>>> = catalogue<ConfigErrorCode>(
  createError('AMB_ERR_CONFIG', 'an environment variable is malformed, out of range, or inconsistent with another; the gateway does not start (exit 2)', 500)
)

export class ConfigError extends CodedError<ConfigErrorCode> {
  override readonly name = 'ConfigError'
  constructor (message: string, options: { cause?: unknown } = {}) {
    super(CONFIG_ERRORS.AMB_ERR_CONFIG, message, options)
  }
}

type Kind = 'port' | 'int' | 'number' | 'string' | 'path' | 'enum' | 'level'

interface OptionSpec {
  env: string
  kind: Kind
  default: string | number | undefined
  values?: readonly string[]
  doc: string
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const OPTIONS = {
  mqttPort: { env: 'MQTT_PORT', kind: 'port', default: 1883, doc: 'MQTT over TCP (0 = any free port, "off" = disabled)' },
  mqttsPort: { env: 'MQTTS_PORT', kind: 'port', default: 8883, doc: 'MQTT over TLS; served only when TLS_CERT and TLS_KEY are set' },
  tlsCert: { env: 'TLS_CERT', kind: 'path', default: undefined, doc: 'PEM certificate chain for MQTTS' },
  tlsKey: { env: 'TLS_KEY', kind: 'path', default: undefined, doc: 'PEM private key for MQTTS' },
  tlsCa: { env: 'TLS_CA', kind: 'path', default: undefined, doc: 'PEM CA: when set, MQTTS requires client certificates whose CN is the unit id' },
  httpPort: { env: 'HTTP_PORT', kind: 'port', default: 8080, doc: 'HTTP API, dashboard and MQTT-over-WebSocket at /mqtt' },
  host: { env: 'HOST', kind: 'string', default: '0.0.0.0', doc: 'address every listener binds to' },
  dataDir: { env: 'DATA_DIR', kind: 'path', default: './data', doc: 'spool, dead letters, credentials' },
  influxUrl: { env: 'INFLUX_URL', kind: 'string', default: undefined, doc: 'InfluxDB base URL; unset = embedded default (the spool is the store of record)' },
  influxApi: { env: 'INFLUX_API', kind: 'enum', values: ['v2', 'v1'], default: INFLUX_SINK_DEFAULTS.api, doc: 'write API: v2 (/api/v2/write) or v1 (/write)' },
  influxToken: { env: 'INFLUX_TOKEN', kind: 'string', default: undefined, doc: 'v2 token, or user:password for v1 with auth' },
  influxOrg: { env: 'INFLUX_ORG', kind: 'string', default: '', doc: 'v2 organisation' },
  influxBucket: { env: 'INFLUX_BUCKET', kind: 'string', default: 'ambulink', doc: 'v2 bucket' },
  influxDb: { env: 'INFLUX_DB', kind: 'string', default: 'ambulink', doc: 'v1 database (created when missing)' },
  influxBatchPoints: { env: 'INFLUX_BATCH_POINTS', kind: 'int', default: INFLUX_SINK_DEFAULTS.maxBatchPoints, doc: 'most points per write request' },
  influxBatchBytes: { env: 'INFLUX_BATCH_BYTES', kind: 'int', default: INFLUX_SINK_DEFAULTS.maxBatchBytes, doc: 'most line-protocol bytes per write request' },
  influxLingerMs: { env: 'INFLUX_LINGER_MS', kind: 'int', default: INFLUX_SINK_DEFAULTS.lingerMs, doc: 'ms a batch may wait to fill' },
  influxTimeoutMs: { env: 'INFLUX_TIMEOUT_MS', kind: 'int', default: INFLUX_SINK_DEFAULTS.timeoutMs, doc: 'write request timeout, ms' },
  influxConcurrency: { env: 'INFLUX_CONCURRENCY', kind: 'int', default: INFLUX_SINK_DEFAULTS.concurrency, doc: 'write requests in flight (the spool cursor still moves in order)' },
  sinkWorkerNice: { env: 'SINK_WORKER_NICE', kind: 'int', default: INFLUX_SINK_DEFAULTS.workerNice, doc: 'nice levels (0-19) below the gateway at which the InfluxDB sink\'s worker thread (line protocol, gzip, HTTP) runs, so MQTT and alerts get the CPU first on a box shared with InfluxDB (Linux; capped at nice 19; elsewhere a logged notice and no change)' },
  maxSpoolBytes: { env: 'MAX_SPOOL_BYTES', kind: 'int', default: SPOOL_DEFAULTS.maxSpoolBytes, doc: 'bound on spool disk use, bytes; frames beyond it are refused' },
  spoolSegmentBytes: { env: 'SPOOL_SEGMENT_BYTES', kind: 'int', default: SPOOL_DEFAULTS.segmentBytes, doc: 'spool segment size, bytes' },
  maxDeadLetterBytes: { env: 'MAX_DEAD_LETTER_BYTES', kind: 'int', default: DEAD_LETTER_DEFAULTS.maxBytes, doc: 'bound on dead-letter disk use, bytes' },
  maxFrameBytes: { env: 'MAX_FRAME_BYTES', kind: 'int', default: DECODER_DEFAULTS.maxFrameBytes, doc: 'largest frame accepted, bytes' },
  maxPacketBytes: { env: 'MAX_PACKET_BYTES', kind: 'int', default: 0, doc: 'largest MQTT packet accepted, bytes (0 = MAX_FRAME_BYTES + 64 KiB); larger ones close the connection' },
  maxConnectionsPerIp: { env: 'MAX_CONNECTIONS_PER_IP', kind: 'int', default: 1000, doc: 'open MQTT connections per remote address (0 = no limit; ambulances may share a carrier NAT address)' },
  loginMaxFailuresPerIp: { env: 'LOGIN_MAX_FAILURES_PER_IP', kind: 'int', default: 30, doc: 'failed password (human) logins, MQTT and dashboard together, per address per LOGIN_FAILURE_WINDOW_MS before that address\'s password checks run one at a time (0 = never); nothing is refused unchecked, device tokens are never limited' },
  maxSubscriptionsPerClient: { env: 'MAX_SUBSCRIPTIONS_PER_CLIENT', kind: 'int', default: CLIENT_LIMIT_DEFAULTS.maxSubscriptions, doc: 'MQTT subscriptions one client may hold; more get SUBACK 0x80 (AMB_ERR_TOO_MANY_SUBSCRIPTIONS)' },
  maxTopicLength: { env: 'MAX_TOPIC_LENGTH', kind: 'int', default: CLIENT_LIMIT_DEFAULTS.maxTopicLength, doc: 'longest MQTT topic or topic filter, characters (AMB_ERR_TOPIC_TOO_LONG)' },
  maxInflightPerClient: { env: 'MAX_INFLIGHT_PER_CLIENT', kind: 'int', default: CLIENT_LIMIT_DEFAULTS.maxInflight, doc: 'QoS 1 messages sent to a client and not yet acknowledged before it is disconnected (AMB_ERR_TOO_MANY_INFLIGHT)' },
  maxQueuedPerClient: { env: 'MAX_QUEUED_PER_CLIENT', kind: 'int', default: CLIENT_LIMIT_DEFAULTS.maxQueued, doc: 'QoS 1 messages kept for a persistent (clean=false) MQTT client while it is offline or has not acknowledged them; beyond it the least important are dropped, superseded and cleared alerts first, high priority last (AMB_ERR_OFFLINE_QUEUE_FULL); the smaller of this and MAX_INFLIGHT_PER_CLIENT applies, since a reconnect delivers the whole queue at once' },
  mqttQueueLimit: { env: 'MQTT_QUEUE_LIMIT', kind: 'int', default: CLIENT_LIMIT_DEFAULTS.queueLimit, doc: 'MQTT packets a client may send before its CONNECT is authenticated (aedes queueLimit); beyond it the connection closes' },
  mqttWsAllowedOrigins: { env: 'MQTT_WS_ALLOWED_ORIGINS', kind: 'string', default: '', doc: 'comma-separated browser origins (scheme://host[:port]) that may open /mqtt besides the gateway\'s own; clients sending no Origin (devices) are not affected' },
  httpRequestTimeoutMs: { env: 'HTTP_REQUEST_TIMEOUT_MS', kind: 'int', default: 30_000, doc: 'whole-request deadline for HTTP clients, ms (slow or trickling clients get 408)' },
  loginFailureWindowMs: { env: 'LOGIN_FAILURE_WINDOW_MS', kind: 'int', default: 60_000, doc: 'window over which failed-login budgets refill, ms' },
  maxFutureSkewMs: { env: 'MAX_FUTURE_SKEW_MS', kind: 'int', default: DECODER_DEFAULTS.maxFutureSkewMs, doc: 'how far device time may run ahead, ms' },
  maxPastAgeMs: { env: 'MAX_PAST_AGE_MS', kind: 'int', default: DECODER_DEFAULTS.maxPastAgeMs, doc: 'how old device time may be, ms' },
  metricsToken: { env: 'METRICS_TOKEN', kind: 'string', default: undefined, doc: 'bearer token for /metrics; unset = /metrics answers loopback clients only' },
  credentialsPollMs: { env: 'CREDENTIALS_POLL_MS', kind: 'int', default: 1000, doc: 'how often credential changes made by the CLI are picked up, ms' },
  // Dashboard. The hospital default is the simulator's destination (simulator/route.ts
  // HOSPITAL_KIRCHBERG; test/live-hub.test.ts checks they agree).
  hospitalName: { env: 'HOSPITAL_NAME', kind: 'string', default: 'Hôpital Kirchberg, Luxembourg', doc: 'receiving hospital shown on the dashboard map' },
  hospitalLat: { env: 'HOSPITAL_LAT', kind: 'number', default: 49.6280, doc: 'hospital latitude, degrees (distance and ETA on the dashboard and in stroke alerts)' },
  hospitalLon: { env: 'HOSPITAL_LON', kind: 'number', default: 6.1620, doc: 'hospital longitude, degrees' },
  sessionTtlMs: { env: 'SESSION_TTL_MS', kind: 'int', default: SESSION_DEFAULTS.ttlMs, doc: 'dashboard session lifetime from login, ms' },
  liveBlockedTimeoutMs: { env: 'LIVE_BLOCKED_TIMEOUT_MS', kind: 'int', default: LIVE_HUB_DEFAULTS.blockedTimeoutMs, doc: 'a dashboard socket that accepts nothing for this long is disconnected, ms' },
  trustProxy: { env: 'TRUST_PROXY', kind: 'string', default: undefined, doc: 'unset = X-Forwarded-* ignored; "true" or a list of proxy addresses/CIDRs to trust (Secure cookies, client address)' },
  // Alert engine (streams/alerts/).
  alertRulesFile: { env: 'ALERT_RULES_FILE', kind: 'path', default: undefined, doc: 'JSON file of per-hospital threshold rule overrides (streams/alerts/rules.ts); validated at start' },
  signalLossMs: { env: 'SIGNAL_LOSS_MS', kind: 'int', default: ALERT_ENGINE_DEFAULTS.signalLossMs, doc: 'no frame for this long from a unit with an active encounter raises signal_loss, ms' },
  alertEscalateMs: { env: 'ALERT_ESCALATE_MS', kind: 'int', default: ALERT_ENGINE_DEFAULTS.escalateAfterMs, doc: 'a high-priority alert unacknowledged this long escalates (and again every such period), ms' },
  alertAckSilenceMs: { env: 'ALERT_ACK_SILENCE_MS', kind: 'int', default: ALERT_ENGINE_DEFAULTS.ackSilenceMs.high, doc: 'an acknowledgement silences a persisting high-priority alert this long, then it alarms again (IEC 60601-1-8 audio paused); medium and low ones at least 5 and 15 min, ms' },
  alertDeviceAlarmHoldMs: { env: 'ALERT_DEVICE_ALARM_HOLD_MS', kind: 'int', default: ALERT_ENGINE_DEFAULTS.deviceAlarmHoldMs, doc: 'a medium/low device alarm not repeated this long clears; a high one only once acknowledged, ms' },
  alertLinkSteadyMs: { env: 'ALERT_LINK_STEADY_MS', kind: 'int', default: ALERT_ENGINE_DEFAULTS.linkSteadyMs, doc: 'signal loss clears only after the link has run this long without a gap, ms' },
  // Dataspace (streams/dataspace/, the README (Dataspace)).
  dataspaceK: { env: 'DATASPACE_K', kind: 'int', default: DATASPACE_DEFAULTS.k, doc: 'k-anonymity on anonymised extracts: fewest encounters per class of quasi-identifiers (≥ 2)' },
  dataspaceChunkRows: { env: 'DATASPACE_CHUNK_ROWS', kind: 'int', default: DATASPACE_DEFAULTS.chunkRows, doc: 'rows per InfluxDB chunk an extract reads at a time' },
  dataspaceMaxEncounters: { env: 'DATASPACE_MAX_ENCOUNTERS', kind: 'int', default: DATASPACE_DEFAULTS.maxEncounters, doc: 'most encounters (and position cells) one extract may span' },
  dataspaceLiveMaxBufferBytes: { env: 'DATASPACE_LIVE_MAX_BUFFER_BYTES', kind: 'int', default: DATASPACE_DEFAULTS.liveMaxBufferBytes, doc: 'a live-stream client with more than this many bytes unsent is cut off' },
  dataspacePublicUrl: { env: 'DATASPACE_PUBLIC_URL', kind: 'string', default: undefined, doc: 'public base URL the catalogue gives for extracts and streams, e.g. https://gateway.example.org (unset = relative URLs; never taken from the request)' },
  dataspacePublisher: { env: 'DATASPACE_PUBLISHER', kind: 'string', default: 'Ambulink data holder', doc: 'publisher named in the dataspace catalogue' },
  dataspaceContact: { env: 'DATASPACE_CONTACT', kind: 'string', default: 'dataspace@example.org', doc: 'contact e-mail in the dataspace catalogue' },
  dataspaceHdabName: { env: 'DATASPACE_HDAB_NAME', kind: 'string', default: undefined, doc: 'name of the health data access body that grants permits for these datasets (HealthDCAT-AP healthdcatap:hdab in the catalogue)' },
  dataspaceHdabUrl: { env: 'DATASPACE_HDAB_URL', kind: 'string', default: undefined, doc: 'home page of that health data access body (http(s) URL)' },
  dataspaceCountry: { env: 'DATASPACE_COUNTRY', kind: 'string', default: undefined, doc: 'ISO 3166-1 alpha-3 code of the country the data come from, e.g. FRA (dct:spatial in the catalogue)' },
  dataspaceAuditHead: { env: 'DATASPACE_AUDIT_HEAD', kind: 'path', default: undefined, doc: 'signed head of the audit log (unset = DATA_DIR/dataspace/audit.head.json); put it on other storage' },
  dataspaceAuditPublicKey: { env: 'DATASPACE_AUDIT_PUBLIC_KEY', kind: 'path', default: undefined, doc: 'the audit key\'s Ed25519 public key (PEM), pinned OUTSIDE DATA_DIR: every append and `audit verify` check the head with it (unset = trust the key under DATA_DIR, with a warning)' },
  dataspaceAuditAnchorMs: { env: 'DATASPACE_AUDIT_ANCHOR_MS', kind: 'int', default: 60_000, doc: 'how often the audit log\'s signed head is anchored outside DATA_DIR (InfluxDB measurement audit_anchor, and the log), in ms' },
  dataspacePermitIssuers: { env: 'DATASPACE_PERMIT_ISSUERS', kind: 'path', default: undefined, doc: 'JSON file of trusted permit issuers (health data access bodies): iss, JWKS file or URL, revocation list, researcher map (docs/dataspace.md); unset = only local permits' },
  dataspaceIssuerPollMs: { env: 'DATASPACE_ISSUER_POLL_MS', kind: 'int', default: 60_000, doc: 'how often issuers\' revocation lists are polled, ms (a failing list backs off up to 32 polls)' },
  dataspaceFhirCodeSystem: { env: 'DATASPACE_FHIR_CODE_SYSTEM', kind: 'string', default: DEFAULT_LOCAL_CODE_SYSTEM, doc: 'URL of the local FHIR CodeSystem for findings no LOINC or SNOMED CT code states (LAMS, FAST, last known well, alert kinds, positions); set it to a URL your organisation controls' },
  dataspaceStatsNoise: { env: 'DATASPACE_STATS_NOISE', kind: 'enum', values: ['laplace', 'none'], default: 'laplace', doc: 'statistical queries: laplace = differential privacy with a budget per permit; none = exact answers with k suppression only (differencing attacks are then possible: docs/dataspace.md)' },
  dataspaceStatsBudget: { env: 'DATASPACE_STATS_BUDGET', kind: 'number', default: 1, doc: 'total differential-privacy epsilon each statistical permit may spend, summed over its queries' },
  dataspaceStatsEpsilon: { env: 'DATASPACE_STATS_EPSILON', kind: 'number', default: 0.1, doc: 'epsilon a statistical query spends when it does not name one' },
  dataspaceJwksCooldownMs: { env: 'DATASPACE_JWKS_COOLDOWN_MS', kind: 'int', default: 30_000, doc: 'least time between two fetches of an issuer\'s JWKS URL when a permit names an unknown key id, ms' },
  dataspaceDspTokenTtlMs: { env: 'DATASPACE_DSP_TOKEN_TTL_MS', kind: 'int', default: 600_000, doc: 'lifetime of a Dataspace Protocol pull token (the transfer\'s bearer token for the extract), ms; never past the permit\'s expiry' },
  // Scale-out (gateway/cluster.ts, the README (Scale-out)).
  redisUrl: { env: 'REDIS_URL', kind: 'string', default: undefined, doc: 'redis://host:port[/db]: share MQTT routing, sessions and retained messages with other gateway processes (unset = one process)' },
  logLevel: { env: 'LOG_LEVEL', kind: 'level', default: 'info', values: LEVELS, doc: 'pino log level' }
} as const satisfies Record<string, OptionSpec>

type Opts = typeof OPTIONS
type ValueOf<S extends OptionSpec> = S['kind'] extends 'port' ? number | null
  : S['kind'] extends 'int' | 'number' ? number
    : S['default'] extends undefined ? string | undefined : string

export type Config = { -readonly [K in keyof Opts]: ValueOf<Opts[K]> }

/** Reads the configuration from `env` (process.env by default) plus explicit overrides. */
export function loadConfig (overrides: Partial<Config> = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {}
  for (const [key, spec] of Object.entries(OPTIONS) as Array<[keyof Config, OptionSpec]>) {
    if (key in overrides) {
      out[key] = overrides[key]
      continue
    }
    const raw = env[spec.env]
    out[key] = parse(spec, raw === '' ? undefined : raw)
  }
  const c = out as Config
  c.dataDir = resolve(c.dataDir)
  // Room for a frame plus MQTT framing and topic (one default, derived from the other).
  if (c.maxPacketBytes === 0) c.maxPacketBytes = c.maxFrameBytes + 64 * 1024
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) {
    throw new ConfigError('TLS_CERT and TLS_KEY must be set together')
  }
  if (c.tlsCa !== undefined && c.tlsCert === undefined) throw new ConfigError('TLS_CA needs TLS_CERT and TLS_KEY')
  if (!(c.hospitalLat >= -90 && c.hospitalLat <= 90)) throw new ConfigError(`HOSPITAL_LAT must be within -90..90, got ${c.hospitalLat}`)
  if (!(c.hospitalLon >= -180 && c.hospitalLon <= 180)) throw new ConfigError(`HOSPITAL_LON must be within -180..180, got ${c.hospitalLon}`)
  if (c.signalLossMs < 1000) throw new ConfigError(`SIGNAL_LOSS_MS must be at least 1000 ms, got ${c.signalLossMs}`)
  if (c.alertEscalateMs < 1000) throw new ConfigError(`ALERT_ESCALATE_MS must be at least 1000 ms, got ${c.alertEscalateMs}`)
  if (c.alertAckSilenceMs < 1000) throw new ConfigError(`ALERT_ACK_SILENCE_MS must be at least 1000 ms, got ${c.alertAckSilenceMs}`)
  if (c.alertDeviceAlarmHoldMs < 1000) throw new ConfigError(`ALERT_DEVICE_ALARM_HOLD_MS must be at least 1000 ms, got ${c.alertDeviceAlarmHoldMs}`)
  if (c.alertLinkSteadyMs < 1000) throw new ConfigError(`ALERT_LINK_STEADY_MS must be at least 1000 ms, got ${c.alertLinkSteadyMs}`)
  if (c.influxUrl !== undefined) {
    try { new URL(c.influxUrl) } catch { throw new ConfigError(`INFLUX_URL is not a URL: ${c.influxUrl}`) }
  }
  if (c.sinkWorkerNice > 19) throw new ConfigError(`SINK_WORKER_NICE must be within 0..19, got ${c.sinkWorkerNice}`)
  if (c.influxConcurrency < 1) throw new ConfigError(`INFLUX_CONCURRENCY must be at least 1, got ${c.influxConcurrency}`)
  if (c.redisUrl !== undefined) {
    let u: URL | undefined
    try { u = new URL(c.redisUrl) } catch { /* reported below */ }
    if (u?.protocol !== 'redis:') throw new ConfigError(`REDIS_URL must be redis://host:port[/db], got ${JSON.stringify(c.redisUrl)}`)
  }
  if (c.maxQueuedPerClient < 1) throw new ConfigError(`MAX_QUEUED_PER_CLIENT must be at least 1, got ${c.maxQueuedPerClient}`)
  if (c.dataspaceK < 2) throw new ConfigError(`DATASPACE_K must be at least 2, got ${c.dataspaceK}`)
  if (c.dataspaceAuditPublicKey !== undefined) {
    const rel = relative(c.dataDir, resolve(c.dataspaceAuditPublicKey))
    // A key beside the log is replaced together with it: pinning only means something outside.
    if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) throw new ConfigError(`DATASPACE_AUDIT_PUBLIC_KEY must be outside DATA_DIR (${c.dataDir}), got ${c.dataspaceAuditPublicKey}`)
  }
  if (!(c.dataspaceStatsBudget > 0 && Number.isFinite(c.dataspaceStatsBudget))) throw new ConfigError(`DATASPACE_STATS_BUDGET must be a positive number, got ${c.dataspaceStatsBudget}`)
  if (!(c.dataspaceStatsEpsilon > 0 && c.dataspaceStatsEpsilon <= c.dataspaceStatsBudget)) throw new ConfigError(`DATASPACE_STATS_EPSILON must be positive and at most DATASPACE_STATS_BUDGET, got ${c.dataspaceStatsEpsilon}`)
  if (c.dataspaceAuditAnchorMs < 1000) throw new ConfigError(`DATASPACE_AUDIT_ANCHOR_MS must be at least 1000 ms, got ${c.dataspaceAuditAnchorMs}`)
  if (c.dataspaceDspTokenTtlMs < 1000) throw new ConfigError(`DATASPACE_DSP_TOKEN_TTL_MS must be at least 1000 ms, got ${c.dataspaceDspTokenTtlMs}`)
  if (c.dataspaceCountry !== undefined && !/^[A-Z]{3}$/.test(c.dataspaceCountry)) throw new ConfigError(`DATASPACE_COUNTRY must be an ISO 3166-1 alpha-3 code such as FRA, got ${JSON.stringify(c.dataspaceCountry)}`)
  if (c.dataspaceHdabUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(c.dataspaceHdabUrl)) throw new ConfigError(`DATASPACE_HDAB_URL must be an http(s) URL, got ${JSON.stringify(c.dataspaceHdabUrl)}`)
  if (c.dataspacePublicUrl !== undefined) {
    let u: URL | undefined
    try { u = new URL(c.dataspacePublicUrl) } catch { /* reported below */ }
    if (u === undefined || !/^https?:$/.test(u.protocol)) throw new ConfigError(`DATASPACE_PUBLIC_URL must be an http(s) URL, got ${JSON.stringify(c.dataspacePublicUrl)}`)
  }
  return c
}

function parse (spec: OptionSpec, raw: string | undefined): unknown {
  if (raw === undefined) return spec.default
  switch (spec.kind) {
    case 'port': {
      if (raw === 'off') return null
      const n = Number(raw)
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${spec.env} must be a port number 0-65535 or "off", got ${JSON.stringify(raw)}`)
      return n
    }
    case 'int': {
      const n = Number(raw)
      if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(`${spec.env} must be a whole number ≥ 0, got ${JSON.stringify(raw)}`)
      return n
    }
    case 'number': {
      const n = Number(raw)
      if (!Number.isFinite(n)) throw new ConfigError(`${spec.env} must be a number, got ${JSON.stringify(raw)}`)
      return n
    }
    case 'enum':
    case 'level':
      if (!spec.values!.includes(raw)) throw new ConfigError(`${spec.env} must be one of ${spec.values!.join(', ')}, got ${JSON.stringify(raw)}`)
      return raw
    default:
      return raw
  }
}

/** Lists the options (the README's configuration table and `ambulink help`). */
/** The README's configuration table (`ambulink config --markdown`); test/docs.test.ts keeps them equal. */
export function optionsMarkdown (): string {
  const cell = (v: unknown): string => v === undefined ? '(unset)' : v === '' ? '(empty)' : '`' + String(v) + '`'
  return ['| variable | default | meaning |', '|---|---|---|',
    ...Object.values(OPTIONS as Record<string, OptionSpec>).map(o => `| \`${o.env}\` | ${cell(o.default)} | ${o.doc.replace(/\|/g, '\\|')} |`)
  ].join('\n')
}

export function describeOptions (): string {
  return Object.values(OPTIONS as Record<string, OptionSpec>)
    .map(o => `${o.env.padEnd(22)} ${String(o.default ?? '(unset)').padEnd(12)} ${o.doc}`)
    .join('\n')
}
