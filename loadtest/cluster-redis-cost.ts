/**
 * The Redis cost of one streaming unit in a cluster (issue #15, docs/scale-out.md "Redis cost
 * per unit"): a real redis-server, two gateway processes (children), `--units` devices on
 * mqtt.js split between them, each sending one frame a second (seven vital signs, no ECG: ECG
 * crosses Redis only while a page watches the unit), and one dashboard page per process (so the
 * fleet relay and the alert stream run). After a warm-up, Redis' own counters (INFO stats) are
 * read over `--seconds` and divided by units and seconds; the unit snapshots' size is read back.
 * Everything on that Redis counts: MQTT routing and heartbeats (aedes), fleet updates, unit
 * snapshots, the roster, sessions. Prints one JSON line.
 *
 *   node --import tsx loadtest/cluster-redis-cost.ts --units 20 --seconds 20
 */
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { liveFeed, login, startCluster, TestDevice } from '../testkit/cluster.js'

const { values } = parseArgs({ options: { units: { type: 'string', default: '20' }, seconds: { type: 'string', default: '20' }, warmup: { type: 'string', default: '8' } } })
const UNITS = Number(values.units)
const SECONDS = Number(values.seconds)
const WARMUP = Number(values.warmup)

/** Typical vitals (VitalSign numbers, decoders/vitals.ts), NEWS2 0: HR, SpO2, SBP, RR, temperature, ACVPU, O2. */
const VITALS: Record<number, number> = { 1: 72, 3: 97, 4: 125, 7: 16, 9: 36.8, 11: 0, 10: 0 }

const cluster = await startCluster({ prefix: 'ambulink-redis-cost-' })
const rc = new Redis(cluster.redis.url)
try {
  const password = await cluster.addUser('bench')
  const devices: TestDevice[] = []
  for (let i = 0; i < UNITS; i++) devices.push(new TestDevice(`AMB-${String(i).padStart(3, '0')}`, await cluster.addDevice(`AMB-${String(i).padStart(3, '0')}`)))
  const gws = [await cluster.start('a'), await cluster.start('b')]
  for (const [i, d] of devices.entries()) await d.connect(gws[i % 2]!.ports.mqtt!)
  const pages = []
  for (const gw of gws) pages.push(await liveFeed(gw.ports.http!, (await login(gw.ports.http!, 'bench', password)).cookie))

  const stats = async (): Promise<Record<string, number>> => {
    const text = await rc.info('stats')
    const out: Record<string, number> = {}
    for (const line of text.split('\r\n')) { const [k, v] = line.split(':'); if (v !== undefined && /^\d+$/.test(v)) out[k!] = Number(v) }
    return out
  }
  let t = Math.floor(Date.now() / 1000) * 1000
  const second = async (): Promise<void> => {
    const started = Date.now()
    await Promise.all(devices.map(async d => { await d.send(t, VITALS) }))
    t += 1000
    const rest = 1000 - (Date.now() - started)
    if (rest > 0) await new Promise(resolve => setTimeout(resolve, rest))
  }
  for (let s = 0; s < WARMUP; s++) await second()
  const before = await stats()
  const from = Date.now()
  for (let s = 0; s < SECONDS; s++) await second()
  const after = await stats()
  const elapsed = (Date.now() - from) / 1000
  const per = (k: string): number => Math.round((after[k]! - before[k]!) / UNITS / elapsed)
  const snaps = await rc.mget(devices.map(d => `ambulink:state:${d.unit}`))
  const sizes = snaps.map(s => s?.length ?? 0)
  // Of which the rule windows and link gaps (what lets a condition go on after a failover).
  const windowBytes = snaps.map(s => {
    const p = s === null ? {} : JSON.parse(s) as Record<string, unknown>
    return JSON.stringify({ windows: p.windows, news2Window: p.news2Window, linkGaps: p.linkGaps }).length
  })
  const result = {
    units: UNITS,
    seconds: Math.round(elapsed * 10) / 10,
    per_unit_per_second: {
      redis_in_bytes: per('total_net_input_bytes'),
      redis_out_bytes: per('total_net_output_bytes'),
      redis_commands: Math.round((after.total_commands_processed! - before.total_commands_processed!) / UNITS / elapsed * 10) / 10
    },
    unit_snapshot_bytes: { mean: Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length), max: Math.max(...sizes), windows_mean: Math.round(windowBytes.reduce((a, b) => a + b, 0) / windowBytes.length) }
  }
  process.stdout.write(JSON.stringify(result) + '\n')
  for (const p of pages) p.ws.terminate()
  for (const d of devices) await d.close()
} finally {
  rc.disconnect()
  await cluster.stop()
}
