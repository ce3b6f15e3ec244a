// Transport security (issue #3, item 6): MQTT over TLS with mTLS (client certificate CN = unit id,
// no valid certificate = no connection when TLS_CA is set), MQTT over TLS with tokens when it is
// not, HTTPS (and wss://…/mqtt) on the HTTP port when TLS_CERT/TLS_KEY are set, certificates made
// in the test with openssl. Finally the logs are scanned for every secret the test used.
import { request } from 'node:https'
import { connect } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type IClientOptions } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metricValue } from '../testkit/fault-harness.js'
import { makePki, type TestPki } from '../testkit/certs.js'
import { testFrame } from '../testkit/frames.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'

function httpsGet (port: number, path: string, ca: Buffer): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, ca, method: 'GET', timeout: 5000 }, res => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('error', reject)
    req.end()
  })
}

/** 0 when connected, the CONNACK code when refused, or the transport's error / 'closed'. */
function connectCode (url: string, opts: IClientOptions): Promise<number | string> {
  return new Promise(resolve => {
    // With TLS 1.3 a refused client certificate arrives as an alert after the client's side of
    // the handshake, often as a bare close: mqtt.js' connectAsync would wait for ever.
    const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 20_000, ...opts })
    const done = (v: number | string): void => {
      clearTimeout(timer)
      c.removeAllListeners()
      c.on('error', () => {})
      c.end(true)
      resolve(v)
    }
    const timer = setTimeout(() => { done('timeout') }, 25_000)
    c.once('connect', () => { done(0) })
    c.once('error', (err: Error & { code?: number | string }) => { done(typeof err.code === 'number' ? err.code : (err.code ?? err.message)) })
    c.once('close', () => { done('closed') })
  })
}

describe('TLS', () => {
  let dir: string
  let pki: TestPki
  let mtls: TestGateway
  let tokens: TestGateway
  const secrets: string[] = []
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ambulink-pki-'))
    pki = await makePki(dir)
    const tls = { mqttsPort: 0, tlsCert: pki.server.certFile, tlsKey: pki.server.keyFile }
    mtls = await startTestGateway({ ...tls, tlsCa: pki.ca.certFile, metricsToken: 'metrics-secret-' + 'x'.repeat(20) })
    tokens = await startTestGateway(tls)
    secrets.push(mtls.gw.config.metricsToken!)
  })
  afterAll(async () => {
    await mtls?.close()
    await tokens?.close()
    await rm(dir, { recursive: true, force: true })
  })

  const mqtts = (tg: TestGateway): string => `mqtts://127.0.0.1:${tg.gw.ports.mqtts}`

  it('mTLS: a unit with a certificate whose CN is its id connects without a token and publishes', async () => {
    const token = await mtls.addDevice('tls-01')
    secrets.push(token)
    const id = await pki.client('tls-01')
    const c = await mqtt.connectAsync(mqtts(mtls), { ca: pki.ca.cert, cert: id.cert, key: id.key, clientId: 'tls-01', reconnectPeriod: 0 })
    await c.publishAsync('units/tls-01/telemetry', Buffer.from(testFrame({ unit: 'tls-01', seq: 1 })), { qos: 1 })
    await c.endAsync()
    expect(metricValue(await mtls.gw.metrics.registry.metrics(), 'ambulink_frames_accepted_total', 'transport="mqtt"')).toBe(1)
  })

  it('mTLS: no certificate, or one from another CA, is refused at the handshake and counted', async () => {
    await mtls.addDevice('tls-02').then(t => secrets.push(t))
    expect(await connectCode(mqtts(mtls), { ca: pki.ca.cert, clientId: 'tls-02', username: 'tls-02', password: secrets[secrets.length - 1] })).not.toBe(0)
    const rogue = await pki.client('tls-02', { rogue: true })
    expect(await connectCode(mqtts(mtls), { ca: pki.ca.cert, cert: rogue.cert, key: rogue.key, clientId: 'tls-02' })).not.toBe(0)
    expect(metricValue(await mtls.gw.metrics.registry.metrics(), 'ambulink_mqtt_refused_total', 'reason="AMB_ERR_TLS_HANDSHAKE"')).toBeGreaterThanOrEqual(2)
    expect(mtls.logs()).toMatch(/mqtts handshake refused/)
  })

  it('mTLS: a valid certificate for an unregistered unit, or used under another unit\'s name, gets CONNACK 4', async () => {
    const stranger = await pki.client('tls-unknown')
    expect(await connectCode(mqtts(mtls), { ca: pki.ca.cert, cert: stranger.cert, key: stranger.key, clientId: 'tls-unknown' })).toBe(4)
    const id = await pki.client('tls-01')
    expect(await connectCode(mqtts(mtls), { ca: pki.ca.cert, cert: id.cert, key: id.key, clientId: 'tls-02', username: 'tls-02' })).toBe(4)
  })

  it('TLS without TLS_CA: devices use their token over mqtts; the server certificate verifies', async () => {
    const token = await tokens.addDevice('tls-03')
    secrets.push(token)
    const c = await mqtt.connectAsync(mqtts(tokens), { ca: pki.ca.cert, username: 'tls-03', password: token, clientId: 'tls-03', reconnectPeriod: 0 })
    await c.publishAsync('units/tls-03/telemetry', Buffer.from(testFrame({ unit: 'tls-03', seq: 1 })), { qos: 1 })
    await c.endAsync()
    expect(await connectCode(mqtts(tokens), { ca: pki.ca.cert, username: 'tls-03', password: 'amb_wrong-token-value', clientId: 'tls-03' })).toBe(4)
    secrets.push('amb_wrong-token-value')
  })

  it('HTTPS on the HTTP port (API, probes, wss://…/mqtt); plain HTTP gets no answer there', async () => {
    const port = tokens.gw.ports.http!
    expect((await httpsGet(port, '/healthz', pki.ca.cert)).status).toBe(200)
    const plain = await new Promise<string>(resolve => {
      const s = connect(port, '127.0.0.1', () => { s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n') })
      let got = ''
      s.on('data', (d: Buffer) => { got += d.toString('latin1') })
      s.on('error', () => {})
      s.on('close', () => { resolve(got) })
      setTimeout(() => { s.destroy() }, 2000)
    })
    expect(plain).not.toMatch(/^HTTP\/1\.1 200/)
    const token = await tokens.addDevice('tls-04')
    secrets.push(token)
    const c = await mqtt.connectAsync(`wss://127.0.0.1:${port}/mqtt`, { ca: pki.ca.cert, username: 'tls-04', password: token, clientId: 'tls-04', reconnectPeriod: 0 })
    await c.publishAsync('units/tls-04/telemetry', Buffer.from(testFrame({ unit: 'tls-04', seq: 1 })), { qos: 1 })
    await c.endAsync()
    const metrics = await httpsGet(port, '/metrics', pki.ca.cert)
    expect(metrics.body).toMatch(/ambulink_frames_accepted_total\{transport="mqtt"\} 2/)
  })

  it('no token, password or key appears in either gateway\'s logs', async () => {
    // A secret typed into the user-name field must not be logged either.
    await connectCode(mqtts(tokens), { ca: pki.ca.cert, username: secrets[1]!, password: 'x', clientId: 'tls-05' })
    const logs = mtls.logs() + tokens.logs()
    expect(logs.length).toBeGreaterThan(1000)
    expect(secrets.length).toBeGreaterThanOrEqual(5)
    for (const s of secrets) expect(logs.includes(s), `secret ${s.slice(0, 6)}… found in logs`).toBe(false)
    const keyBody = pki.server.key.toString().split('\n')[1]!
    expect(logs.includes(keyBody)).toBe(false)
  })
})
