// The refusal log's arithmetic (issue #10, item 12) with an injected clock: per reason, at most
// `burst` lines an interval, then one "suppressed N similar" line; strings capped.
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { cap, createLogger, LOG_STRING_MAX, RefusalLog } from '../gateway/logger.js'

function capture (): { log: ReturnType<typeof createLogger>, lines: () => Array<Record<string, unknown>> } {
  let text = ''
  const sink = new Writable({ write (c: Buffer, _e, cb) { text += c.toString(); cb() } })
  return { log: createLogger('debug', sink), lines: () => text.split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Record<string, unknown>) }
}

describe('RefusalLog', () => {
  it('logs 5 per reason per interval, summarises the rest once the interval ends, and counts reasons apart', () => {
    const { log, lines } = capture()
    let t = 0
    const r = new RefusalLog(log, { burst: 5, intervalMs: 10_000, now: () => t })
    for (let i = 0; i < 1000; i++) r.warn('AMB_ERR_FORBIDDEN_SUBSCRIBE', { detail: 'x' }, 'mqtt refused')
    for (let i = 0; i < 3; i++) r.warn('AMB_ERR_UNAUTHENTICATED', {}, 'mqtt refused')
    expect(lines().length).toBe(8)
    t = 10_000
    r.warn('AMB_ERR_FORBIDDEN_SUBSCRIBE', {}, 'mqtt refused')
    const all = lines()
    expect(all[8]).toMatchObject({ reason: 'AMB_ERR_FORBIDDEN_SUBSCRIBE', suppressed: 995, msg: 'suppressed 995 similar' })
    expect(all[9]).toMatchObject({ reason: 'AMB_ERR_FORBIDDEN_SUBSCRIBE', msg: 'mqtt refused' })
    r.close()
    expect(lines().length).toBe(10) // nothing left to summarise
  })

  it('caps every string field at LOG_STRING_MAX characters and says how much was cut', () => {
    const { log, lines } = capture()
    const r = new RefusalLog(log)
    r.warn('AMB_ERR_CLIENT_ID', { clientId: 'X'.repeat(60 * 1024), n: 3 }, 'mqtt refused')
    r.close()
    const [line] = lines()
    expect(line!.clientId).toBe('X'.repeat(LOG_STRING_MAX) + `…(+${60 * 1024 - LOG_STRING_MAX} chars)`)
    expect(line!.n).toBe(3)
    expect(cap('short')).toBe('short')
    expect(cap(undefined)).toBeUndefined()
  })
})
