// The incoming board's sharing when Redis does not answer (docs/scale-out.md "When Redis
// stops"): two ClusterAssignments ("processes" A and B, each with its own Redis link, live hub
// and journal) on a real redis-server. An assignment taken on A while Redis is down is shown on
// A and journalled there, `share` says false; once Redis is back it is shared (B shows and
// journals it) without anyone asking again. An assignment older than the one Redis holds never
// replaces it.
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ASSIGNMENTS, ClusterAssignments } from '../gateway/cluster/assignments-redis.js'
import { openClusterLink, type ClusterLink } from '../gateway/cluster/redis.js'
import { DashboardJournal } from '../gateway/dashboard/journal.js'
import { LiveHub, type Assignment, type ServerMessage } from '../streams/index.js'
import { makeTempDir, removeTempDir, waitFor } from '../testkit/proc.js'
import { startRedis, type RedisServer } from '../testkit/redis.js'

const log = pino({ level: 'silent' })

interface Side { link: ClusterLink, hub: LiveHub, journal: DashboardJournal, board: ClusterAssignments, seen: Assignment[] }

describe('cluster: an assignment taken while Redis is down', () => {
  let dir: string
  let redis: RedisServer
  const sides: Side[] = []

  beforeAll(async () => {
    dir = await makeTempDir('ambulink-assign-outage-')
    redis = await startRedis()
    for (const name of ['a', 'b']) {
      const link = await openClusterLink(redis.url, log)
      const hub = new LiveHub({ hospital: { name: 'H', latitude: 49.63, longitude: 6.17 } })
      const journal = await DashboardJournal.open(`${dir}/${name}`)
      const board = await ClusterAssignments.open(link, hub, journal, log)
      const seen: Assignment[] = []
      // A page on the hub: what it is told.
      const sub = hub.subscribe({ send: (data, cb) => { if (typeof data === 'string') { const m = JSON.parse(data) as ServerMessage; if (m.type === 'assignment') seen.push(m.assignment) } cb() }, close: () => {}, terminate: () => {} }, { name: 'dr', role: 'clinician' })
      sub.handle({ type: 'hello', watch: [], resume: {} })
      sides.push({ link, hub, journal, board, seen })
    }
  }, 60_000)

  afterAll(async () => {
    for (const s of sides) { await s.board.close(); await s.hub.close(); await s.journal.close(); await s.link.close() }
    await redis?.stop()
    if (dir !== undefined) await removeTempDir(dir)
  })

  it('shown and journalled on its process at once, shared when Redis is back; an older one never replaces a newer one', async () => {
    const [a, b] = sides as [Side, Side]
    await redis.kill()
    const x: Assignment = { unit: 'AMB-9', encounter: 'enc-9', action: 'cath_lab_activated', by: 'dr-ana', at: Date.now() }
    await a.journal.append({ type: 'assign', assignment: x })
    expect(await a.board.share(x)).toBe(false)
    expect(a.seen).toEqual([x])
    expect(a.board.pendingCount).toBe(1)

    await redis.restart()
    await waitFor(async () => b.seen.length > 0, { timeoutMs: 20_000, what: 'B receiving the assignment after the outage' })
    expect(b.seen).toEqual([x])
    // (B may have it from the write ioredis queued during the outage, before A's retry runs.)
    await waitFor(async () => a.board.pendingCount === 0, { timeoutMs: 10_000, what: 'A\'s retry done' })
    expect(b.seen).toEqual([x])
    expect(a.seen).toEqual([x])
    await waitFor(async () => b.journal.assignments.get('AMB-9')?.at === x.at, { timeoutMs: 20_000, what: 'B journalling it' })

    // Older than what Redis holds (a retry after an outage, say): not shared.
    const older: Assignment = { ...x, action: 'stroke_team_standby', by: 'dr-ben', at: x.at - 60_000 }
    expect(await b.board.share(older)).toBe(true)
    expect(JSON.parse((await sides[0]!.link.cmd.hget(ASSIGNMENTS, 'AMB-9'))!)).toEqual(x)
    const newer: Assignment = { ...x, action: 'handed_over', at: x.at + 1000 }
    expect(await a.board.share(newer)).toBe(true)
    await waitFor(async () => b.seen.some(s => s.action === 'handed_over'), { timeoutMs: 20_000, what: 'the newer one on B' })
    const link = sides[0]!.link
    expect(JSON.parse((await link.cmd.hget(ASSIGNMENTS, 'AMB-9'))!)).toEqual(newer)
    expect(a.seen.map(s => s.action)).toEqual(['cath_lab_activated', 'handed_over'])
  }, 60_000)
})
