// SINK_WORKER_NICE (issue 12, goal 2): the InfluxDB sink's worker thread runs that many nice
// levels below the gateway, and only that thread: Linux's own account of each thread
// (/proc/<pid>/task/<tid>/stat) is what is checked, with a real gateway and a real InfluxDB.
// The test may itself run niced (up to 19): the expected value is then capped at 19, with the
// notice the gateway logs.
import { readdirSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../gateway/config.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'

/** The nice value of thread `tid` of this process (field 19 of its stat line). */
function threadNice (tid: number): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8')
  // Fields after the command name, which may hold spaces and parentheses: state is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[19 - 3])
}

describe('the sink worker thread\'s priority', () => {
  let influx: InfluxServer
  const gateways: TestGateway[] = []
  beforeAll(async () => { influx = await startInfluxDB() })
  afterAll(async () => {
    for (const g of gateways) await g.close()
    await influx?.stop()
  })

  const start = async (sinkWorkerNice: number): Promise<TestGateway> => {
    const g = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: `nice${sinkWorkerNice}`, sinkWorkerNice })
    gateways.push(g)
    await g.gw.sink!.whenReady()
    return g
  }

  it('SINK_WORKER_NICE=4: the worker thread, not the main thread, runs 4 levels lower (capped at 19); elsewhere than Linux a notice', async () => {
    const g = await start(4)
    const p = g.gw.sink!.workerPriority!
    if (process.platform !== 'linux') {
      expect(p).toMatchObject({ tid: null, nice: null, notice: expect.stringMatching(/not supported here/) as unknown })
      expect(g.logs()).toMatch(/InfluxDB sink worker thread priority: thread priorities are not supported here/)
      return
    }
    const base = threadNice(process.pid)
    expect(p.tid).not.toBeNull()
    expect(p.tid).not.toBe(process.pid)
    expect(readdirSync(`/proc/${process.pid}/task`)).toContain(String(p.tid))
    const want = Math.min(19, base + 4)
    expect(threadNice(p.tid!)).toBe(want)
    expect(p).toMatchObject({ niceBefore: base, nice: want })
    // The main thread (MQTT, alerts) keeps its priority.
    expect(threadNice(process.pid)).toBe(base)
    if (base + 4 > 19) {
      expect(p.notice).toMatch(/capped at 19/)
      expect(g.logs()).toMatch(/InfluxDB sink worker thread priority: the sink worker's nice value is capped at 19/)
    } else {
      expect(p.notice).toBeNull()
      expect(g.logs()).toMatch(/"nice":\d+.*InfluxDB sink worker thread started/)
    }
  }, 120_000)

  it('SINK_WORKER_NICE=0: the worker thread keeps the gateway\'s priority, with no notice', async () => {
    const p = (await start(0)).gw.sink!.workerPriority!
    expect(p.notice).toBeNull()
    if (process.platform !== 'linux') return
    const base = threadNice(process.pid)
    expect(threadNice(p.tid!)).toBe(base)
    expect(p).toMatchObject({ niceBefore: base, nice: base })
  }, 120_000)

  it('SINK_WORKER_NICE must be within 0..19', () => {
    expect(loadConfig({}, { SINK_WORKER_NICE: '19' }).sinkWorkerNice).toBe(19)
    expect(loadConfig({}, {}).sinkWorkerNice).toBe(0)
    expect(() => loadConfig({}, { SINK_WORKER_NICE: '20' })).toThrow(/SINK_WORKER_NICE must be within 0\.\.19, got 20/)
    expect(() => loadConfig({}, { SINK_WORKER_NICE: '-1' })).toThrow(/SINK_WORKER_NICE must be a whole number/)
  })
})
