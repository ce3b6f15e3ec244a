// Rule windows follow the unit (issue #15, docs/scale-out.md "Alerts across a failover"): two
// real gateway processes (children) sharing a real redis-server. Two units stream to A:
// - AMB-HOLD: SpO2 88 % (< 90 %, rules.ts) for 8 s of its 15 s window (it raises once ≥ 70 %
//   of the window is beyond the limit: the 11th second), not yet raised;
// - AMB-FLAP: SpO2 flapping 88/88/88/93 % (75 % of the time beyond the limit), started on A.
// A's snapshots (with the windows) are in Redis; A is SIGKILLed; both units reconnect to B and
// go on. The raise/clear events the cluster gives are exactly those one process gives for the
// same frames (an engine in this test is the reference): AMB-HOLD raised on B at the same sample
// time as on one process (within its remaining window, not a whole window later), once; the
// flapping unit raised once, never cleared, never raised again.
import { Redis } from 'ioredis'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AlertEngine, type AlertEvent, type UnitSnapshot } from '../streams/index.js'
import { CLUSTER_START_TIMEOUT_MS, startCluster, TestDevice, type TestCluster } from '../testkit/cluster.js'
import type { GatewayProcess } from '../testkit/gateway-process.js'
import { waitFor } from '../testkit/proc.js'
import { frame } from './alert-harness.js'

const HR = 1
const SPO2 = 3
const RR = 7
/** VitalSign numbers → values scoring 0 in NEWS2 (RCP NEWS2 2017 chart 1) unless overridden. */
const BASE: Readonly<Record<number, number>> = { [RR]: 16, [SPO2]: 97, 11: 0, [HR]: 72, 10: 0, 9: 36.8 }
const FIELD: Readonly<Record<number, string>> = { [HR]: 'heart_rate', [SPO2]: 'spo2', [RR]: 'respiratory_rate', 11: 'consciousness_acvpu', 10: 'supplemental_o2', 9: 'temperature' }

/** Per second i: SpO2 of each unit. */
const hold = (_i: number): number => 88
const flap = (i: number): number => (i % 4 === 3 ? 93 : 88)
const ON_A = 8
const TOTAL = 45

type Key = [string, string, string, number, string]
const key = (e: AlertEvent): Key => [e.type, e.alert.kind, e.alert.key, e.alert.raisedAt, e.type === 'raised' ? e.alert.priority : '']

/** What one process gives for the same frames: raised/cleared events of each unit. */
async function reference (unit: string, spo2: (i: number) => number, t0: number): Promise<Key[]> {
  const engine = await AlertEngine.open({ tickIntervalMs: 0, now: () => t0 })
  const out: Key[] = []
  engine.on('alert', e => { if (e.type === 'raised' || e.type === 'cleared') out.push(key(e)) })
  for (let i = 0; i < TOTAL; i++) {
    const t = t0 + i * 1000
    const numerics: Record<string, number> = {}
    for (const [s, v] of Object.entries({ ...BASE, [SPO2]: spo2(i) })) numerics[FIELD[Number(s)]!] = v
    engine.onFrame(frame({ unit, t, encounter: `enc-${unit}`, numerics }), t)
  }
  await engine.close()
  return out
}

describe('cluster: rule windows follow the unit to the surviving process', () => {
  let cluster: TestCluster
  let rc: Redis
  let a: GatewayProcess
  let b: GatewayProcess
  let clinician: MqttClient | null = null
  const devices: TestDevice[] = []
  const heard: Array<{ at: number, ev: AlertEvent }> = []

  beforeAll(async () => {
    cluster = await startCluster({ prefix: 'ambulink-cluster-windows-' })
    rc = new Redis(cluster.redis.url)
    const password = await cluster.addUser('dr-lee')
    for (const u of ['AMB-HOLD', 'AMB-FLAP']) devices.push(new TestDevice(u, await cluster.addDevice(u)))
    a = await cluster.start('a')
    b = await cluster.start('b')
    clinician = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.ports.mqtt!}`, { username: 'dr-lee', password, clientId: 'dr-lee', reconnectPeriod: 0 })
    clinician.on('message', (_topic, payload) => { heard.push({ at: Date.now(), ev: JSON.parse(payload.toString()) as AlertEvent }) })
    await clinician.subscribeAsync('alerts/#', { qos: 1 })
  }, 2 * CLUSTER_START_TIMEOUT_MS + 60_000)

  afterAll(async () => {
    for (const d of devices) await d.close()
    await clinician?.endAsync(true)
    rc?.disconnect()
    await cluster?.stop()
  })

  const of = (unit: string): Key[] => heard.map(h => h.ev).filter(e => e.alert.unit === unit && (e.type === 'raised' || e.type === 'cleared')).map(key)

  it('a condition part-way through its window raises on the survivor when one process would, once; a flapping value raises once', async () => {
    const [dHold, dFlap] = devices as [TestDevice, TestDevice]
    const spo2Of = [hold, flap]
    const t0 = Math.floor(Date.now() / 1000) * 1000 - 120_000
    const want = await Promise.all(devices.map(async (d, k) => await reference(d.unit, spo2Of[k]!, t0)))
    // The reference itself: AMB-HOLD's SpO2 raised at its 11th second beyond the limit, the flapping one once and never cleared.
    expect(want[0]!.filter(k => k[2] === 'spo2')).toEqual([['raised', 'threshold', 'spo2', t0 + 10_000, 'medium']])
    expect(want[1]!.filter(k => k[2] === 'spo2').map(k => k[0])).toEqual(['raised'])
    const lastOnA = t0 + (ON_A - 1) * 1000
    for (const k of want.flat()) if (k[2] === 'spo2') expect(k[3], 'the test needs the SpO2 raises on the survivor').toBeGreaterThan(lastOnA)

    for (const d of devices) await d.connect(a.ports.mqtt!)
    for (let i = 0; i < ON_A; i++) for (let k = 0; k < 2; k++) await devices[k]!.send(t0 + i * 1000, { ...BASE, [SPO2]: spo2Of[k]!(i) })
    const sentAt = Date.now()
    // A's snapshots hold the windows up to its last frame (written within about a second).
    for (const d of devices) {
      const snap = await waitFor(async () => {
        const s = await rc.get(`ambulink:state:${d.unit}`)
        const p = s === null ? null : JSON.parse(s) as UnitSnapshot
        return p !== null && p.lastCapturedAt >= lastOnA ? p : undefined
      }, { timeoutMs: 15_000, what: `${d.unit}'s snapshot in Redis` })
      expect(snap.windows?.spo2?.s).toBe(lastOnA / 1000)
    }
    const snapshotLagMs = Date.now() - sentAt
    // What one process raises before A's death (NEWS2 of a single 3, RCP 2017) was heard from A.
    for (const [k, d] of devices.entries()) {
      const before = want[k]!.filter(x => x[3] <= lastOnA)
      await waitFor(async () => of(d.unit).length >= before.length, { timeoutMs: 15_000, what: `${d.unit}'s alerts raised on A` })
      expect(of(d.unit)).toEqual(before)
    }

    await a.kill()
    const killedAt = Date.now()
    for (const d of devices) await d.connect(b.ports.mqtt!)
    let raisedAfterMs = -1
    for (let i = ON_A; i < TOTAL; i++) {
      for (let k = 0; k < 2; k++) await devices[k]!.send(t0 + i * 1000, { ...BASE, [SPO2]: spo2Of[k]!(i) })
      if (raisedAfterMs < 0 && of(dHold.unit).some(x => x[2] === 'spo2')) raisedAfterMs = Date.now() - killedAt
    }
    // The last frame's events are in (the clinician is on B, where they are raised).
    for (const [k, d] of devices.entries()) {
      await waitFor(async () => of(d.unit).length >= want[k]!.length, { timeoutMs: 15_000, what: `${d.unit}'s alerts on B` })
    }
    // B has also found A dead (death detection, roster.ts): nothing of that raises anything again.
    await waitFor(async () => (await b.logs()).includes('gateway process found dead'), { timeoutMs: 30_000, what: 'B finding A dead' })
    expect(of(dHold.unit), 'AMB-HOLD: the same alerts at the same sample times as one process').toEqual(want[0])
    expect(of(dFlap.unit), 'AMB-FLAP: raised once, never cleared, never raised again').toEqual(want[1])
    const took = (await b.logs()).split('\n').filter(l => l.includes('"unit taken over"')).map(l => JSON.parse(l) as { unit: string, snapshot: boolean })
    expect(took.filter(x => x.snapshot).map(x => x.unit).sort()).toEqual(['AMB-FLAP', 'AMB-HOLD'])
    console.log(JSON.stringify({ windows: { snapshotInRedisMsAfterLastFrame: snapshotLagMs, holdRaisedOnSurvivorMsAfterKill: raisedAfterMs } }))
  }, 150_000)
})
