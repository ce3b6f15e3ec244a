/**
 * The one table of configuration: every option's environment name, default, unit and check.
 * Defaults owned by a component (decoder limits, spool, sink) are read from that component, so
 * no default exists twice. A bad value fails at start with a message naming the option.
 */
import { resolve } from 'node:path'
import { DECODER_DEFAULTS } from '../decoders/index.js'
import { DEAD_LETTER_DEFAULTS } from '../streams/dead-letter.js'
import { INFLUX_SINK_DEFAULTS } from '../streams/influx-sink.js'
import { SPOOL_DEFAULTS } from '../streams/spool.js'

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly code = 'AMB_ERR_CONFIG'
}

type Kind = 'port' | 'int' | 'string' | 'path' | 'enum' | 'level'

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
  maxSpoolBytes: { env: 'MAX_SPOOL_BYTES', kind: 'int', default: SPOOL_DEFAULTS.maxSpoolBytes, doc: 'bound on spool disk use, bytes; frames beyond it are refused' },
  spoolSegmentBytes: { env: 'SPOOL_SEGMENT_BYTES', kind: 'int', default: SPOOL_DEFAULTS.segmentBytes, doc: 'spool segment size, bytes' },
  maxDeadLetterBytes: { env: 'MAX_DEAD_LETTER_BYTES', kind: 'int', default: DEAD_LETTER_DEFAULTS.maxBytes, doc: 'bound on dead-letter disk use, bytes' },
  maxFrameBytes: { env: 'MAX_FRAME_BYTES', kind: 'int', default: DECODER_DEFAULTS.maxFrameBytes, doc: 'largest frame accepted, bytes' },
  maxFutureSkewMs: { env: 'MAX_FUTURE_SKEW_MS', kind: 'int', default: DECODER_DEFAULTS.maxFutureSkewMs, doc: 'how far device time may run ahead, ms' },
  maxPastAgeMs: { env: 'MAX_PAST_AGE_MS', kind: 'int', default: DECODER_DEFAULTS.maxPastAgeMs, doc: 'how old device time may be, ms' },
  metricsToken: { env: 'METRICS_TOKEN', kind: 'string', default: undefined, doc: 'bearer token for /metrics; unset = /metrics answers loopback clients only' },
  credentialsPollMs: { env: 'CREDENTIALS_POLL_MS', kind: 'int', default: 1000, doc: 'how often credential changes made by the CLI are picked up, ms' },
  logLevel: { env: 'LOG_LEVEL', kind: 'level', default: 'info', values: LEVELS, doc: 'pino log level' }
} as const satisfies Record<string, OptionSpec>

type Opts = typeof OPTIONS
type ValueOf<S extends OptionSpec> = S['kind'] extends 'port' ? number | null
  : S['kind'] extends 'int' ? number
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
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) {
    throw new ConfigError('TLS_CERT and TLS_KEY must be set together')
  }
  if (c.tlsCa !== undefined && c.tlsCert === undefined) throw new ConfigError('TLS_CA needs TLS_CERT and TLS_KEY')
  if (c.influxUrl !== undefined) {
    try { new URL(c.influxUrl) } catch { throw new ConfigError(`INFLUX_URL is not a URL: ${c.influxUrl}`) }
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
    case 'enum':
    case 'level':
      if (!spec.values!.includes(raw)) throw new ConfigError(`${spec.env} must be one of ${spec.values!.join(', ')}, got ${JSON.stringify(raw)}`)
      return raw
    default:
      return raw
  }
}

/** Lists the options (the README's configuration table and `ambulink help`). */
export function describeOptions (): string {
  return Object.values(OPTIONS as Record<string, OptionSpec>)
    .map(o => `${o.env.padEnd(22)} ${String(o.default ?? '(unset)').padEnd(12)} ${o.doc}`)
    .join('\n')
}
