// Acknowledge-and-assign on the incoming board, cluster-wide (issue #15, docs/scale-out.md):
// real gateway processes (children) sharing a real redis-server, pages on the dashboard's live
// WebSocket (the protocol the page speaks). AMB-IN streams to A. A clinician on B assigns it
// (B does not hold the unit): the page on A shows it (how soon, against the 1 s of
// docs/scale-out.md, is loadtest/cluster-assign-latency.ts' to measure: a loaded test machine
// can stall any of the processes for longer than that). A clinician on A assigns it
// again; A is SIGKILLed: B's page keeps it, a new page on B and a page on C (started after A
// died) open with it; B's and C's journals record who and when.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Assignment, ServerMessage } from '../streams/index.js'
import { CLUSTER_START_TIMEOUT_MS, liveFeed, login, startCluster, TestDevice, type LiveFeed, type TestCluster } from '../testkit/cluster.js'
import type { GatewayProcess } from '../testkit/gateway-process.js'
import { waitFor } from '../testkit/proc.js'

const UNIT = 'AMB-IN'
type AssignMsg = Extract<ServerMessage, { type: 'assignment' }>
type SnapshotMsg = Extract<ServerMessage, { type: 'snapshot' }>
const isAssign = (action: string) => (m: ServerMessage): m is AssignMsg => m.type === 'assignment' && m.assignment.unit === UNIT && m.assignment.action === action
const isSnapshot = (m: ServerMessage): m is SnapshotMsg => m.type === 'snapshot'

async function assign (httpPort: number, cookie: string, csrf: string, action: string): Promise<{ status: number, body: { assignment: Assignment, shared?: boolean } }> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/incoming/${UNIT}/assign`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: JSON.stringify({ action }) })
  return { status: res.status, body: await res.json() as { assignment: Assignment, shared?: boolean } }
}

async function journalled (gw: GatewayProcess): Promise<Assignment[]> {
  const text = await readFile(join(gw.dataDir, 'dashboard', 'journal.log'), 'utf8').catch(() => '')
  return text.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { type: string, assignment?: Assignment }).flatMap(r => r.type === 'assign' ? [r.assignment!] : [])
}

describe('cluster: the incoming board\'s assignments on every process', () => {
  let cluster: TestCluster
  let a: GatewayProcess
  let b: GatewayProcess
  let device: TestDevice
  const feeds: LiveFeed[] = []
  const pw: Record<string, string> = {}

  beforeAll(async () => {
    cluster = await startCluster({ prefix: 'ambulink-cluster-assign-' })
    for (const u of ['dr-ana', 'dr-ben']) pw[u] = await cluster.addUser(u)
    device = new TestDevice(UNIT, await cluster.addDevice(UNIT))
    a = await cluster.start('a')
    b = await cluster.start('b')
  }, 2 * CLUSTER_START_TIMEOUT_MS + 60_000)

  afterAll(async () => {
    for (const f of feeds) f.ws.terminate()
    await device?.close()
    await cluster?.stop()
  })

  const open = async (gw: GatewayProcess, user: string): Promise<LiveFeed> => {
    const s = await login(gw.ports.http!, user, pw[user]!)
    const f = await liveFeed(gw.ports.http!, s.cookie)
    feeds.push(f)
    return f
  }

  it('taken on B (the unit is on A), shown on A; after A dies it is on B and on a new process; journalled with who and when', async () => {
    await device.connect(a.ports.mqtt!)
    const t0 = Date.now()
    for (let i = 0; i < 3; i++) await device.send(t0 + i * 1000, { 1: 80, 3: 97 })
    const pageA = await open(a, 'dr-ana')
    const ben = await login(b.ports.http!, 'dr-ben', pw['dr-ben']!)
    const pageB = await liveFeed(b.ports.http!, ben.cookie)
    feeds.push(pageB)
    // B knows the unit from A's fleet updates (live-relay.ts).
    await pageB.until('AMB-IN on B\'s board', (m): m is ServerMessage => (m.type === 'unit' && m.unit.unit === UNIT) || (m.type === 'snapshot' && m.units.some(u => u.unit === UNIT)))

    const r1 = await assign(b.ports.http!, ben.cookie, ben.csrf, 'cath_lab_activated')
    const answeredAt = Date.now()
    expect(r1.status).toBe(200)
    expect(r1.body).toMatchObject({ shared: true, assignment: { unit: UNIT, encounter: `enc-${UNIT}`, action: 'cath_lab_activated', by: 'dr-ben' } })
    const onA = await pageA.until('the assignment on A\'s page', isAssign('cath_lab_activated'), 0, 30_000)
    const latencyMs = Date.now() - answeredAt
    // Carried there by Redis, the very assignment B answered with (timing: see the header).
    expect(onA.assignment).toEqual(r1.body.assignment)
    // Shown once on each page (the taker's own announcement is not shown twice).
    await pageB.until('the assignment on B\'s page', isAssign('cath_lab_activated'))

    // Taken on A, which then dies.
    const ana = await login(a.ports.http!, 'dr-ana', pw['dr-ana']!)
    const r2 = await assign(a.ports.http!, ana.cookie, ana.csrf, 'resus_ready')
    expect(r2.body.shared).toBe(true)
    await pageB.until('A\'s assignment on B\'s page', isAssign('resus_ready'))
    await a.kill()
    await device.close()

    const again = await open(b, 'dr-ben')
    const snapB = await again.until('a new page on B', isSnapshot)
    expect(snapB.assignments.filter(x => x.unit === UNIT)).toEqual([r2.body.assignment])
    const c = await cluster.start('c')
    const pageC = await open(c, 'dr-ana')
    const snapC = await pageC.until('a page on C', isSnapshot)
    expect(snapC.assignments.filter(x => x.unit === UNIT)).toEqual([r2.body.assignment])
    expect(pageB.messages.filter(isAssign('cath_lab_activated'))).toHaveLength(1)
    expect(pageB.messages.filter(isAssign('resus_ready'))).toHaveLength(1)

    // Journalled with who and when: B took one and received the other; C received the board at start.
    await waitFor(async () => (await journalled(b)).length >= 2, { timeoutMs: 10_000, what: 'B\'s journal' })
    expect(await journalled(b)).toEqual([r1.body.assignment, r2.body.assignment])
    await waitFor(async () => (await journalled(c)).length >= 1, { timeoutMs: 10_000, what: 'C\'s journal' })
    expect(await journalled(c)).toEqual([r2.body.assignment])
    console.log(JSON.stringify({ assign: { otherProcessPageMs: latencyMs } }))
  }, CLUSTER_START_TIMEOUT_MS + 150_000)
})
