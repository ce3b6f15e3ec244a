// One spooled frame the sink cannot turn into line protocol — because of a bug, not the decoder's
// coded refusal — goes to the dead letters (AMB_ERR_SPOOL_DRAIN_FAILED, counted in
// ambulink_spool_undrainable_total{reason}) and the drain goes on: every other unit's frames reach
// InfluxDB. Before, such an error made the worker's job "fatal" and halted storage for every
// patient. The sink stops (the frame kept in the spool) only when the dead letters cannot keep it.
// A real gateway with its sink in a worker thread, a real spool and a real InfluxDB.
//
// Mock, and why: a frame in the spool was validated at ingest by the same decoder, so no real
// part fails on it when draining; only a bug could, and a test cannot write one into the product.
// The test hook AMBULINK_FAULT_DRAIN_UNIT (streams/storage/drain-fault.ts) makes the
// line-protocol step throw a plain TypeError for one unit's frames, as such a bug would.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { DeadLetterStore, frameRecord, InfluxSink, Spool, SPOOL_RECORD_FRAME } from '../streams/index.js'
import { expectedPoints, testFrame } from '../testkit/frames.js'
import { startInfluxDB, influxCount, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway } from '../testkit/gateway.js'
import { waitFor } from '../testkit/proc.js'

const BUG = 'amb-drain-bug'

/** Sets the hook for what `start` creates (a worker thread copies the environment when it starts). */
async function withFault<T> (start: () => Promise<T> | T): Promise<T> {
  const saved = process.env.AMBULINK_FAULT_DRAIN_UNIT
  process.env.AMBULINK_FAULT_DRAIN_UNIT = BUG
  try {
    return await start()
  } finally {
    if (saved === undefined) delete process.env.AMBULINK_FAULT_DRAIN_UNIT
    else process.env.AMBULINK_FAULT_DRAIN_UNIT = saved
  }
}

let influx: InfluxServer
beforeAll(async () => { influx = await startInfluxDB() }, 180_000) // slow to start on a loaded machine
afterAll(async () => { await influx?.stop() }, 60_000)

describe('a spooled frame the sink cannot drain', () => {
  it('goes to the dead letters with its code and a metric; every other unit\'s frames are stored', async () => {
    const db = 'amb_drainfail'
    const tg = await withFault(async () => await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: db, influxLingerMs: 20 }))
    onTestFinished(async () => { await tg.close() })
    const units = ['amb-drain-a', BUG, 'amb-drain-b']
    const devices = await Promise.all(units.map(async unit => {
      const c = await mqtt.connectAsync(tg.mqttUrl, { username: unit, password: await tg.addDevice(unit), clientId: unit, reconnectPeriod: 0 })
      onTestFinished(async () => { await c.endAsync(true) })
      return c
    }))
    // Interleaved: the failing frames sit in the middle of batches of the other units' frames.
    const FRAMES = 12
    for (let seq = 1; seq <= FRAMES; seq++) {
      await Promise.all(units.map(async (unit, i) => { await devices[i]!.publishAsync(`units/${unit}/telemetry`, Buffer.from(testFrame({ unit, seq })), { qos: 1 }) }))
    }

    const want = expectedPoints()
    for (const unit of ['amb-drain-a', 'amb-drain-b']) {
      await waitFor(async () => (await influxCount(influx.url, db, 'ecg', 'i', `"unit" = '${unit}'`)) >= want.ecg * FRAMES ? true : undefined, { timeoutMs: 60_000, intervalMs: 200, what: `${unit} in InfluxDB` })
      expect(await influxCount(influx.url, db, 'ecg', 'i', `"unit" = '${unit}'`)).toBe(want.ecg * FRAMES)
      expect(await influxCount(influx.url, db, 'vitals', 'heart_rate', `"unit" = '${unit}'`)).toBe(want.vitals * FRAMES)
    }
    await waitFor(async () => tg.gw.spool.pendingBytes === 0 ? true : undefined, { timeoutMs: 60_000, intervalMs: 50, what: 'the spool drained' })
    expect(await influxCount(influx.url, db, 'ecg', 'i', `"unit" = '${BUG}'`)).toBe(0)

    // Every failing frame is in the dead letters, once, with its code and bytes.
    const dead = (await tg.gw.deadLetters.readAll()).filter(d => d.source === 'spool')
    expect(dead).toHaveLength(FRAMES)
    for (const d of dead) expect(d).toMatchObject({ source: 'spool', code: 'AMB_ERR_SPOOL_DRAIN_FAILED', unit: BUG })
    expect(dead[0]!.reason).toMatch(/internal error: TypeError/)
    expect(typeof dead[0]!.payload).toBe('string')
    const metrics = await (await fetch(`${tg.httpUrl}/metrics`)).text()
    expect(metrics).toContain(`ambulink_spool_undrainable_total{reason="AMB_ERR_SPOOL_DRAIN_FAILED"} ${FRAMES}`)
    expect(metrics).toContain(`ambulink_dead_letters_total{source="spool"} ${FRAMES}`)
    // The sink did not stop: it is healthy and /readyz says so.
    expect(tg.gw.sink?.healthy).toBe(true)
    expect((await fetch(`${tg.httpUrl}/readyz`)).status).toBe(200)
    expect(tg.logs()).toContain('spooled frame refused when draining: kept in the dead letters')
  }, 180_000)

  it('the dead letters cannot keep it: the sink stops visibly, the frame stays in the spool', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ambulink-drain-fail-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const spool = await Spool.open({ dir: join(dir, 'spool') })
    onTestFinished(async () => { await spool.close() })
    const deadLetters = await DeadLetterStore.open({ dir: join(dir, 'dead'), maxBytes: 10 }) // full from the start
    onTestFinished(async () => { await deadLetters.close() })
    for (const [unit, seq] of [['amb-ok', 1], [BUG, 1], ['amb-ok', 2]] as const) {
      await spool.appendRecord(frameRecord(unit, testFrame({ unit, seq })), 127, SPOOL_RECORD_FRAME)
    }
    const refused: string[] = []
    const errors: Error[] = []
    const sink = await withFault(() => new InfluxSink({ url: influx.url, api: 'v1', db: 'amb_drainfull', lingerMs: 5 }, spool, deadLetters, {
      onSpoolRefused: (err, kept) => { refused.push(`${err.code} ${kept}`) },
      onError: err => { errors.push(err) }
    }))
    onTestFinished(async () => { await sink.close(0) })
    sink.start()
    await waitFor(async () => !sink.healthy && errors.length > 0 ? true : undefined, { timeoutMs: 60_000, intervalMs: 20, what: 'the sink stopped' })
    expect(refused).toEqual(['AMB_ERR_SPOOL_DRAIN_FAILED false'])
    expect((errors[0] as Error & { code?: string }).code).toBe('AMB_ERR_SPOOL_DRAIN_FAILED')
    // The cursor did not pass the frame nothing keeps: it is still in the spool for the next start.
    expect(spool.pendingBytes).toBeGreaterThan(0)
  }, 120_000)
})
