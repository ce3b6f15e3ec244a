// Dashboard sessions against a real gateway, over plain HTTP and WebSocket: who may log in, what
// the cookie says, CSRF on every state change, the rate limit on login, the Origin check, and
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

  it('login is rate-limited per address', async () => {
    const tg = await gateway({ loginRateMax: 3 })
    const codes: number[] = []
    for (let i = 0; i < 5; i++) codes.push((await login(tg, 'x', 'y')).status)
    expect(codes).toEqual([401, 401, 401, 429, 429])
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
