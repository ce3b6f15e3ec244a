// Starts a real Ambulink gateway in-process for tests: its own temp DATA_DIR, every listener
// on a free port (port 0), logs captured in memory so tests can scan them (no secret may
// appear), and a close() that stops everything and removes the folder.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { loadConfig, type Config } from '../gateway/config.js'
import { addDevice, addUser, type Role } from '../gateway/credentials.js'
import { createLogger } from '../gateway/logger.js'
import { startGateway, type Gateway } from '../gateway/server.js'

export interface TestGateway {
  gw: Gateway
  dataDir: string
  mqttUrl: string
  wsUrl: string
  httpUrl: string
  /** Everything the gateway logged (pino JSON lines). */
  logs: () => string
  addDevice: (unit: string) => Promise<string>
  addUser: (name: string, role: Role) => Promise<string>
  /** Stops the gateway; keeps DATA_DIR unless `remove` (used by restart tests). */
  stop: () => Promise<void>
  close: () => Promise<void>
}

export async function startTestGateway (overrides: Partial<Config> = {}, opts: { dataDir?: string } = {}): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? await mkdtemp(join(tmpdir(), 'ambulink-test-'))
  let logText = ''
  const sink = new Writable({
    write (chunk: Buffer, _enc, cb) { logText += chunk.toString(); cb() }
  })
  const config = loadConfig({
    dataDir,
    host: '127.0.0.1',
    mqttPort: 0,
    mqttsPort: null,
    httpPort: 0,
    logLevel: 'debug',
    credentialsPollMs: 100,
    // Alerts: no time-driven alert (signal loss when a test unit falls silent, escalation) unless
    // a test asks for one, so spool and InfluxDB counts stay exact in tests about other things.
    signalLossMs: 3_600_000,
    alertEscalateMs: 3_600_000,
    ...overrides
  }, {})
  const log = createLogger(config.logLevel, sink)
  const gw = await startGateway(config, { log })
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await gw.close()
  }
  return {
    gw,
    dataDir,
    mqttUrl: `mqtt://127.0.0.1:${gw.ports.mqtt}`,
    wsUrl: `ws://127.0.0.1:${gw.ports.http}/mqtt`,
    httpUrl: `http://127.0.0.1:${gw.ports.http}`,
    logs: () => logText,
    addDevice: unit => addDevice(dataDir, unit),
    addUser: (name, role) => addUser(dataDir, name, role),
    stop,
    close: async () => {
      await stop()
      if (opts.dataDir === undefined) await rm(dataDir, { recursive: true, force: true })
    }
  }
}
