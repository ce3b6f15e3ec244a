// Dashboard sessions against a real gateway, over plain HTTP and WebSocket: who may log in, what
// the cookie says, CSRF on every state change, login guessing slowed but never locking anyone out, the Origin check, and
// sockets closed when the session ends.
import { describe, expect, it, onTestFinished } from 'vitest'
import WebSocket from 'ws'
import type { Config } from '../gateway/config.js'
import { revokeUser } from '../gateway/credentials.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'

async function gateway (overrides: Partial<Config> = {}): Promise<TestGateway> {
  const tg = await startTestGateway(overrides)
  onTestFinished(() => tg.close())
  return tg
}

interface Login { status: number, cookie: string, setCookie: string, csrf: string, body: Record<string, unknown> }

async function login (tg: TestGateway, name: string, password: string, headers: Record<string, string> = {}): Promise<Login> {
  const res = await fetch(`${tg.httpUrl}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name, password }) })
  const body = await res.json() as Record<string, unknown>
  const setCookie = res.headers.get('set-cookie') ?? ''
  return { status: res.status, setCookie, cookie: setCookie.split(';')[0]!, csrf: String(body.csrfToken ?? ''), body }
}

/** Opens the live socket; resolves the HTTP status of a refused upgrade, or the open socket. */
function openLive (tg: TestGateway, headers: Record<string, string>): Promise<number | WebSocket> {
  return new Promise(resolve => {
    const ws = new WebSocket(`${tg.httpUrl.replace('http', 'ws')}/api/v1/live`, { headers })
    ws.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
    ws.once('open', () => { resolve(ws) })
    ws.once('error', () => {})
    onTestFinished(() => { ws.terminate() })
  })
}

describe('dashboard sessions', () => {
  it('the page loads without a session; the API and the live socket do not', async () => {
    const tg = await gateway()
    const page = await fetch(tg.httpUrl + '/')
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('<script type="module" src="/app.js">')
    // Offline page: nothing but our own origin may be loaded.
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'")
    const js = await fetch(tg.httpUrl + '/app.js')
    expect(js.status).toBe(200)
    expect(js.headers.get('content-type')).toContain('javascript')
    expect((await js.text()).length).toBeGreaterThan(10_000)

    expect((await fetch(`${tg.httpUrl}/api/v1/session`)).status).toBe(401)
    expect(await openLive(tg, { origin: tg.httpUrl })).toBe(401)
    expect((await fetch(`${tg.httpUrl}/api/v1/alerts/x/ack`, { method: 'POST' })).status).toBe(401)
  })

  it('clinicians and admins get a session; researchers 403; wrong passwords 401', async () => {
    const tg = await gateway()
    const pw = { c: await tg.addUser('cora', 'clinician'), a: await tg.addUser('adam', 'admin'), r: await tg.addUser('rita', 'researcher') }
    expect((await login(tg, 'cora', 'nope')).status).toBe(401)
    expect((await login(tg, 'nobody', 'nope')).status).toBe(401)
    expect((await login(tg, 'rita', pw.r)).status).toBe(403)
    expect((await login(tg, 'adam', pw.a)).status).toBe(200)
    const ok = await login(tg, 'cora', pw.c)
    expect(ok.status).toBe(200)
    expect(ok.body).toMatchObject({ user: 'cora', role: 'clinician' })
    expect(ok.setCookie).toMatch(/^ambulink_session=[\w-]{43};/)
    expect(ok.setCookie).toContain('HttpOnly')
    expect(ok.setCookie).toContain('SameSite=Strict')
    expect(ok.setCookie).not.toContain('Secure') // plain http here
    const me = await fetch(`${tg.httpUrl}/api/v1/session`, { headers: { cookie: ok.cookie } })
    expect(me.status).toBe(200)
    expect(await me.json()).toMatchObject({ user: 'cora', role: 'clinician' })
    expect(tg.logs()).not.toContain(pw.c)
  })

  it('Secure cookies: a client claiming https through X-Forwarded-Proto is believed only with TRUST_PROXY', async () => {
    const plain = await gateway()
    const p1 = await plain.addUser('cora', 'clinician')
    expect((await login(plain, 'cora', p1, { 'x-forwarded-proto': 'https' })).setCookie).not.toContain('Secure')
    const proxied = await gateway({ trustProxy: '127.0.0.1' })
    const p2 = await proxied.addUser('cora', 'clinician')
    expect((await login(proxied, 'cora', p2, { 'x-forwarded-proto': 'https' })).setCookie).toContain('Secure')
  })

  it('CSRF: ack and logout need the token; login needs JSON from our own origin', async () => {
    const tg = await gateway()
    const pw = await tg.addUser('cora', 'clinician')
    const s = await login(tg, 'cora', pw)
    const post = (path: string, headers: Record<string, string>, method = 'POST'): Promise<Response> => fetch(tg.httpUrl + path, { method, headers: { cookie: s.cookie, ...headers } })
    expect((await post('/api/v1/alerts/x/ack', {})).status).toBe(403)
    expect((await post('/api/v1/alerts/x/ack', { 'x-csrf-token': 'forged' })).status).toBe(403)
    expect((await post('/api/v1/alerts/x/ack', { 'x-csrf-token': s.csrf })).status).toBe(404) // allowed; no such alert
    expect((await post('/api/v1/session', {}, 'DELETE')).status).toBe(403)

    const form = await fetch(`${tg.httpUrl}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `name=cora&password=${pw}` })
    expect(form.status).toBe(415)
    expect((await login(tg, 'cora', pw, { origin: 'https://evil.example' })).status).toBe(403)
    expect((await login(tg, 'cora', pw, { origin: tg.httpUrl })).status).toBe(200)

    // Logout with the token ends the session: the cookie is worthless afterwards.
    expect((await post('/api/v1/session', { 'x-csrf-token': s.csrf }, 'DELETE')).status).toBe(204)
    expect((await fetch(`${tg.httpUrl}/api/v1/session`, { headers: { cookie: s.cookie } })).status).toBe(401)
  })

  it('wrong logins from an address never lock out the right password, and never tell which names exist (issue #10, item 11)', async () => {
    const tg = await gateway({ loginMaxFailuresPerIp: 3 })
    const pw = await tg.addUser('cora', 'clinician')
    const raw = async (name: string, password: string): Promise<{ status: number, body: string, headers: string[] }> => {
      const res = await fetch(`${tg.httpUrl}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, password }) })
      return { status: res.status, body: await res.text(), headers: [...res.headers.keys()].filter(h => h !== 'date').sort() }
    }
    // Before any budget is used: an unknown name and a known one answer alike.
    const unknownFirst = await raw('nobody', 'guess')
    const knownFirst = await raw('cora', 'guess')
    expect(knownFirst).toEqual(unknownFirst)
    expect(knownFirst.status).toBe(401)

    // 50 wrong passwords for the clinician's name from her own address (everything here is
    // 127.0.0.1), half of them in flight together; the budget is 3.
    const wrong = await Promise.all(Array.from({ length: 25 }, (_, i) => raw('cora', `wrong-${i}`)))
    for (let i = 25; i < 50; i++) wrong.push(await raw(i % 2 === 0 ? 'cora' : 'nobody', `wrong-${i}`))
    expect(new Set(wrong.map(r => r.status))).toEqual(new Set([401]))
    expect(new Set(wrong.map(r => r.body)).size).toBe(1)

    // The right password gets a session at once: no 429, no Retry-After.
    const ok = await login(tg, 'cora', pw)
    expect(ok.status).toBe(200)
    expect(ok.body).toMatchObject({ user: 'cora', role: 'clinician' })

    // Past the budget, known and unknown names still answer alike, and nothing answers 429.
    expect(await raw('cora', 'again')).toEqual(await raw('nobody', 'again'))
    const metrics = await (await fetch(`${tg.httpUrl}/metrics`)).text()
    expect(metrics).toMatch(/ambulink_dashboard_logins_total\{outcome="refused"\} 54\n/)
  })

  it('the right password gets through while a flood of wrong ones from the same address is still in flight', async () => {
    const tg = await gateway({ loginMaxFailuresPerIp: 2 })
    const pw = await tg.addUser('cora', 'clinician')
    const flood = Array.from({ length: 20 }, (_, i) => login(tg, 'cora', `wrong-${i}`))
    const ok = login(tg, 'cora', pw)
    const more = Array.from({ length: 10 }, (_, i) => login(tg, 'cora', `late-${i}`))
    expect((await ok).status).toBe(200)
    const codes = (await Promise.all([...flood, ...more])).map(r => r.status)
    expect(new Set(codes)).toEqual(new Set([401]))
  })

  it('the live socket checks the Origin, and closes (4001) when the user is revoked or logs out', async () => {
    const tg = await gateway()
    const pw = await tg.addUser('cora', 'clinician')
    const s = await login(tg, 'cora', pw)
    expect(await openLive(tg, { cookie: s.cookie, origin: 'https://evil.example' })).toBe(403)
    const ws = await openLive(tg, { cookie: s.cookie, origin: tg.httpUrl })
    if (typeof ws === 'number') throw new Error(`refused: ${ws}`)
    const first = new Promise<string>(resolve => { ws.once('message', d => { resolve(String(d)) }) })
    ws.send(JSON.stringify({ type: 'hello', watch: [], resume: {} }))
    expect(JSON.parse(await first)).toMatchObject({ type: 'snapshot', user: { name: 'cora', role: 'clinician' } })
    const closed = new Promise<number>(resolve => { ws.once('close', code => { resolve(code) }) })
    await revokeUser(tg.dataDir, 'cora')
    expect(await closed).toBe(4001)
    expect((await fetch(`${tg.httpUrl}/api/v1/session`, { headers: { cookie: s.cookie } })).status).toBe(401)
  })

  it('a malformed client message closes the socket (1008)', async () => {
    const tg = await gateway()
    const s = await login(tg, 'cora', await tg.addUser('cora', 'clinician'))
    const ws = await openLive(tg, { cookie: s.cookie })
    if (typeof ws === 'number') throw new Error(`refused: ${ws}`)
    const closed = new Promise<number>(resolve => { ws.once('close', code => { resolve(code) }) })
    ws.send(JSON.stringify({ type: 'watch', unit: '../../etc' }))
    expect(await closed).toBe(1008)
  })
})
