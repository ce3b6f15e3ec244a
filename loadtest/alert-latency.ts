/**
 * Publish → dashboard alert latency, with the demo fleet running: a gateway (in-process), the
 * simulated fleet streaming 12-lead ECG, a clinician's live dashboard socket (/api/v1/live, the
 * same feed the page uses), and a probe unit that publishes frames carrying a new device alarm.
 * Each probe's latency runs from just before its MQTT publish to the `alert` message on the
 * dashboard socket. Device alarms pass straight through the engine (no minimum duration), so
 * this measures the path, not a rule's delay. Prints progress on stderr and JSON on stdout.
 *
 *   node --import tsx loadtest/alert-latency.ts [--units 5] [--probes 200] [--interval-ms 200]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import mqtt from 'mqtt'
import WebSocket from 'ws'
import { encodeFrame } from '../decoders/index.js'
import { loadConfig } from '../gateway/config.js'
import { addDevice, addUser } from '../gateway/credentials.js'
import { createLogger } from '../gateway/logger.js'
import { startGateway } from '../gateway/server.js'
import { Fleet } from '../simulator/fleet.js'

const { values } = parseArgs({
  options: {
    units: { type: 'string', default: '5' },
    probes: { type: 'string', default: '200' },
    'interval-ms': { type: 'string', default: '200' }
  }
})
const units = Number(values.units)
const probes = Number(values.probes)
const intervalMs = Number(values['interval-ms'])

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return Math.round(s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]! * 100) / 100
}

const dataDir = await mkdtemp(join(tmpdir(), 'ambulink-alert-latency-'))
const creds = []
for (let i = 1; i <= units; i++) creds.push({ unitId: `amb-${String(i).padStart(2, '0')}`, token: await addDevice(dataDir, `amb-${String(i).padStart(2, '0')}`) })
const probeToken = await addDevice(dataDir, 'probe-1')
const password = await addUser(dataDir, 'dr-latency', 'clinician')
const gw = await startGateway(loadConfig({ dataDir, host: '127.0.0.1', mqttPort: 0, httpPort: 0, mqttsPort: null, logLevel: 'warn' }, {}), { log: createLogger('warn') })
const fleet = new Fleet({ url: `mqtt://127.0.0.1:${gw.ports.mqtt}`, units: creds, progressIntervalMs: 60_000 })
await fleet.start()
try {
  const base = `http://127.0.0.1:${gw.ports.http}`
  const login = await fetch(`${base}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'dr-latency', password }) })
  if (login.status !== 200) throw new Error(`login failed: ${login.status}`)
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!
  const ws = new WebSocket(`ws://127.0.0.1:${gw.ports.http}/api/v1/live`, { headers: { cookie } })
  const waiting = new Map<string, (t: number) => void>()
  ws.on('message', (data, isBinary) => {
    if (isBinary) return
    const m = JSON.parse(data.toString()) as { type: string, event?: { type: string, alert: { kind: string, key: string } } }
    if (m.type === 'alert' && m.event?.type === 'raised' && m.event.alert.kind === 'device_alarm') {
      waiting.get(m.event.alert.key)?.(performance.now())
    }
  })
  await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  ws.send(JSON.stringify({ type: 'hello', watch: [], resume: {} }))

  const probe = await mqtt.connectAsync(`mqtt://127.0.0.1:${gw.ports.mqtt}`, { username: 'probe-1', password: probeToken, clientId: 'probe-1', reconnectPeriod: 0 })
  const latencies: number[] = []
  let lost = 0
  const t0 = Date.now()
  for (let i = 1; i <= probes; i++) {
    const code = `PROBE-${i}`
    const frame = Buffer.from(encodeFrame({
      unitId: 'probe-1', bootId: 'probe', seq: i, capturedAtMs: t0 + i * intervalMs, encounterId: 'enc-probe',
      numerics: [{ sign: 1, value: 80, offsetMs: 0 }],
      alarms: [{ code, priority: 3, text: 'latency probe', offsetMs: 0 }]
    }))
    const got = new Promise<number | null>(resolve => {
      const timer = setTimeout(() => { waiting.delete(code); resolve(null) }, 5000)
      waiting.set(code, t => { clearTimeout(timer); waiting.delete(code); resolve(t) })
    })
    const sent = performance.now()
    await probe.publishAsync('units/probe-1/telemetry', frame, { qos: 1 })
    const at = await got
    if (at === null) lost++
    else latencies.push(at - sent)
    if (i % 50 === 0) process.stderr.write(`alert-latency: ${i}/${probes} probes, p50 ${pct(latencies, 50)} ms p99 ${pct(latencies, 99)} ms\n`)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  await probe.endAsync()
  ws.close()
  const stats = fleet.stats()
  process.stdout.write(JSON.stringify({
    units,
    probes,
    lost,
    publish_to_dashboard_alert_p50_ms: pct(latencies, 50),
    publish_to_dashboard_alert_p99_ms: pct(latencies, 99),
    publish_to_dashboard_alert_max_ms: pct(latencies, 100),
    fleet_frames_acked: stats.framesAcked,
    fleet_ack_p50_ms: stats.ackLatencyMs.p50
  }) + '\n')
} finally {
  await fleet.stop({ drain: false })
  await gw.close()
  await rm(dataDir, { recursive: true, force: true })
}
