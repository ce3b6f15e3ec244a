/**
 * Acknowledge-and-assign across a cluster: how long after the taking process answers does the
 * assignment reach a page on another process (docs/scale-out.md: "on every page within 1 s")?
 * Two real gateway processes (children) share a real redis-server, as test/cluster-assign.test.ts
 * runs them; a unit streams to A; a clinician's live socket (the page's feed) is open on A; a
 * clinician on B assigns the unit `--rounds` times, alternating two actions, one at a time. Each
 * latency runs from B's HTTP answer to the assignment message on A's socket (negative when it got
 * there first). The timing claim lives here, not in the test, which a loaded machine would fail.
 * Prints progress on stderr and JSON on stdout.
 *
 *   node --import tsx loadtest/cluster-assign-latency.ts [--rounds 50] [--interval-ms 200]
 */
import { parseArgs } from 'node:util'
import type { RawData } from 'ws'
import type { ServerMessage } from '../streams/index.js'
import { liveFeed, login, startCluster, TestDevice } from '../testkit/cluster.js'

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '50' },
    'interval-ms': { type: 'string', default: '200' }
  }
})
const rounds = Number(values.rounds)
const intervalMs = Number(values['interval-ms'])
const UNIT = 'AMB-LAT'
const ACTIONS = ['cath_lab_activated', 'resus_ready'] as const

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return Math.round(s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]! * 100) / 100
}

const cluster = await startCluster({ prefix: 'ambulink-assign-latency-' })
const device = new TestDevice(UNIT, await cluster.addDevice(UNIT))
try {
  const pw = { ana: await cluster.addUser('dr-ana'), ben: await cluster.addUser('dr-ben') }
  const a = await cluster.start('a')
  const b = await cluster.start('b')
  await device.connect(a.ports.mqtt!)
  const t0 = Date.now()
  for (let i = 0; i < 3; i++) await device.send(t0 + i * 1000, { 1: 80, 3: 97 })
  const pageA = await liveFeed(a.ports.http!, (await login(a.ports.http!, 'dr-ana', pw.ana)).cookie)
  const ben = await login(b.ports.http!, 'dr-ben', pw.ben)
  const pageB = await liveFeed(b.ports.http!, ben.cookie)
  // B knows the unit from A's fleet updates before it can assign it.
  await pageB.until('the unit on B\'s board', (m): m is ServerMessage => (m.type === 'unit' && m.unit.unit === UNIT) || (m.type === 'snapshot' && m.units.some(u => u.unit === UNIT)), 0, 60_000)

  const latencies: number[] = []
  let lost = 0
  for (let i = 1; i <= rounds; i++) {
    const action = ACTIONS[i % 2]!
    const seen = new Promise<number | null>(resolve => {
      const timer = setTimeout(() => { pageA.ws.off('message', on); resolve(null) }, 10_000)
      function on (data: RawData, isBinary: boolean): void {
        if (isBinary) return
        const m = JSON.parse(data.toString()) as ServerMessage
        if (m.type !== 'assignment' || m.assignment.unit !== UNIT || m.assignment.action !== action) return
        clearTimeout(timer)
        pageA.ws.off('message', on)
        resolve(performance.now())
      }
      pageA.ws.on('message', on)
    })
    const res = await fetch(`http://127.0.0.1:${b.ports.http}/api/v1/incoming/${UNIT}/assign`, {
      method: 'POST',
      headers: { cookie: ben.cookie, 'x-csrf-token': ben.csrf, 'content-type': 'application/json' },
      body: JSON.stringify({ action })
    })
    const answered = performance.now()
    await res.arrayBuffer()
    if (res.status !== 200) throw new Error(`assign on B: HTTP ${res.status}`)
    const at = await seen
    if (at === null) lost++
    else latencies.push(at - answered)
    if (i % 10 === 0) process.stderr.write(`cluster-assign-latency: ${i}/${rounds}, p50 ${pct(latencies, 50)} ms p99 ${pct(latencies, 99)} ms\n`)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  pageA.ws.terminate()
  pageB.ws.terminate()
  process.stdout.write(JSON.stringify({
    rounds,
    lost,
    answer_to_other_page_p50_ms: pct(latencies, 50),
    answer_to_other_page_p99_ms: pct(latencies, 99),
    answer_to_other_page_max_ms: pct(latencies, 100),
    within_1s_share: latencies.filter(ms => ms < 1000).length / rounds
  }) + '\n')
} finally {
  await device.close()
  await cluster.stop()
}
