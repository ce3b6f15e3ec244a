// The HTTP side of a real gateway, with plain fetch: probes, Prometheus metrics and who may read
// them, and the telemetry fallback's answers — one stable code per rejection, counted, and kept
// in the dead letters with the original bytes when the decoder refused the frame.
import mqtt from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { Config } from '../gateway/config.js'
import { encodeFrame, type FrameInit } from '../decoders/index.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'

const PROTOBUF = 'application/x-protobuf'

async function gateway (overrides: Partial<Config> = {}): Promise<TestGateway> {
  const tg = await startTestGateway(overrides)
  onTestFinished(() => tg.close())
  return tg
}

function frame (unit: string, over: Partial<FrameInit> = {}): Buffer {
  return Buffer.from(encodeFrame({
    unitId: unit,
    bootId: 'boot-1',
    seq: 1,
    capturedAtMs: Date.now(),
    encounterId: 'enc-1',
    numerics: [{ sign: 1, value: 72, offsetMs: 0 }, { sign: 3, value: 97, offsetMs: 0 }],
    ...over
  }))
}

interface Answer { status: number, body: Record<string, unknown>, headers: Headers }

async function post (tg: TestGateway, unit: string, body: Uint8Array | string, opts: { token?: string, type?: string, authorization?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': opts.type ?? PROTOBUF }
  if (opts.authorization !== undefined) headers.authorization = opts.authorization
  else if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`
  const res = await fetch(`${tg.httpUrl}/api/v1/units/${encodeURIComponent(unit)}/telemetry`, { method: 'POST', headers, body: typeof body === 'string' ? body : new Uint8Array(body) })
  const text = await res.text()
  return { status: res.status, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown>, headers: res.headers }
}

/** What prom-client's counters share (their label names differ). */
interface CounterLike { get: () => Promise<{ values: Array<{ value: number, labels: Partial<Record<string, string | number>> }> }> }

async function count (metric: CounterLike, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get()
  return values
    .filter(v => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((sum, v) => sum + v.value, 0)
}

/** A sample value from Prometheus text, e.g. sample(text, 'ambulink_frames_rejected_total{reason="X"}'). */
function sample (text: string, series: string): number | undefined {
  const line = text.split('\n').find(l => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('probes', () => {
  it('/healthz answers 200; /readyz is 200 with its checks when no InfluxDB is configured', async () => {
    const tg = await gateway()
    const health = await fetch(`${tg.httpUrl}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ status: 'ok' })

    const ready = await fetch(`${tg.httpUrl}/readyz`)
    expect(ready.status).toBe(200)
    const body = await ready.json() as { status: string, checks: Record<string, { ok: boolean, detail?: string }> }
    expect(body.status).toBe('ready')
    expect(body.checks.spool?.ok).toBe(true)
    expect(body.checks.influxdb).toMatchObject({ ok: true })
  })

  it('with InfluxDB unreachable: /readyz is 503 naming influxdb, /healthz stays 200, and devices are still accepted', async () => {
    // Port 1 (tcpmux): nothing listens there. A port that was free a moment ago could be taken
    // meanwhile by a server of a test file running in parallel (an InfluxDB would answer).
    const tg = await gateway({ influxUrl: 'http://127.0.0.1:1', influxApi: 'v1' })

    const ready = await fetch(`${tg.httpUrl}/readyz`)
    expect(ready.status).toBe(503)
    const body = await ready.json() as { status: string, checks: Record<string, { ok: boolean, detail?: string }> }
    expect(body.status).toBe('not ready')
    expect(body.checks.influxdb?.ok).toBe(false)
    expect(body.checks.spool?.ok).toBe(true)
    expect((await fetch(`${tg.httpUrl}/healthz`)).status).toBe(200)

    // The spool is the store of record: frames are acknowledged over HTTP and MQTT alike.
    const token = await tg.addDevice('amb-01')
    const res = await post(tg, 'amb-01', frame('amb-01'), { token })
    expect(res.status).toBe(200)
    const device = await mqtt.connectAsync(tg.mqttUrl, { clientId: 'amb-01', username: 'amb-01', password: token, reconnectPeriod: 0, protocolVersion: 4 })
    onTestFinished(async () => { await device.endAsync(true) })
    await device.publishAsync('units/amb-01/telemetry', frame('amb-01', { seq: 2 }), { qos: 1 })
    const accepted = await tg.gw.metrics.framesAccepted.get()
    expect(Object.fromEntries(accepted.values.map(v => [v.labels.transport, v.value]))).toEqual({ http: 1, mqtt: 1 })
    expect(tg.gw.spool.pendingBytes).toBeGreaterThan(0)
  })
})

describe('/metrics', () => {
  const REQUIRED = [
    'ambulink_frames_accepted_total',
    'ambulink_frames_rejected_total',
    'ambulink_points_written_total',
    'ambulink_spool_bytes',
    'ambulink_spool_lag_seconds',
    'ambulink_influx_write_duration_seconds'
  ]

  it('answers loopback clients with Prometheus text holding the required names', async () => {
    const tg = await gateway()
    const res = await fetch(`${tg.httpUrl}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await res.text()
    for (const name of REQUIRED) expect(text).toMatch(new RegExp(`^# TYPE ${name} `, 'm'))
    expect(sample(text, 'ambulink_spool_bytes')).toBe(tg.gw.spool.bytes)
    // Every family is ours.
    const families = [...text.matchAll(/^# TYPE (\S+) /gm)].map(m => m[1])
    expect(families.filter(n => n?.startsWith('ambulink_') !== true)).toEqual([])
  })

  it('with metricsToken set, wants it as a Bearer token (even from loopback)', async () => {
    const tg = await gateway({ metricsToken: 'scrape-secret-1' })
    const none = await fetch(`${tg.httpUrl}/metrics`)
    expect(none.status).toBe(401)
    expect(await none.json()).toMatchObject({ code: 'AMB_ERR_UNAUTHENTICATED' })
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/)
    expect((await fetch(`${tg.httpUrl}/metrics`, { headers: { authorization: 'Bearer scrape-secret-2' } })).status).toBe(401)
    expect((await fetch(`${tg.httpUrl}/metrics`, { headers: { authorization: 'scrape-secret-1' } })).status).toBe(401)

    const ok = await fetch(`${tg.httpUrl}/metrics`, { headers: { authorization: 'Bearer scrape-secret-1' } })
    expect(ok.status).toBe(200)
    const text = await ok.text()
    expect(sample(text, 'ambulink_http_refused_total{reason="AMB_ERR_UNAUTHENTICATED"}')).toBe(3)
    expect(tg.logs()).not.toContain('scrape-secret-1')
  })
})

describe('POST /api/v1/units/{unit}/telemetry', () => {
  it('accepts a valid frame and answers its identity, seq as the exact decimal of the uint64', async () => {
    const tg = await gateway()
    const token = await tg.addDevice('amb-01')
    const res = await post(tg, 'amb-01', frame('amb-01', { seq: '18446744073709551615' }), { token })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ accepted: true, unit: 'amb-01', boot_id: 'boot-1', seq: '18446744073709551615', replay: false })
    expect(res.body.points).toBeGreaterThan(0)

    // The same frame again is a replay (the device did not get the answer): accepted, flagged.
    const again = await post(tg, 'amb-01', frame('amb-01', { seq: '18446744073709551615' }), { token })
    expect(again.body).toMatchObject({ accepted: true, replay: true })
    expect(sample(await (await fetch(`${tg.httpUrl}/metrics`)).text(), 'ambulink_frames_accepted_total{transport="http"}')).toBe(2)
  })

  it('answers 401 AMB_ERR_UNAUTHENTICATED without the unit\'s own token, whatever the body, and stores nothing', async () => {
    const tg = await gateway({ maxFrameBytes: 2048 })
    const tokA = await tg.addDevice('amb-01')
    const tokB = await tg.addDevice('amb-02')
    const password = await tg.addUser('dr-lee', 'clinician')
    const body = frame('amb-02')

    const attempts: Array<Parameters<typeof post>[3]> = [
      {}, // no Authorization
      { token: tokB + 'x' }, // wrong token
      { token: tokA }, // unit A's token on unit B's URL
      { authorization: `Basic ${Buffer.from(`amb-02:${tokB}`).toString('base64')}` }, // not a Bearer token
      { authorization: 'Bearer ' } // empty
    ]
    for (const opts of attempts) {
      const res = await post(tg, 'amb-02', body, opts)
      expect(res.status, JSON.stringify(opts)).toBe(401)
      expect(res.body.code).toBe('AMB_ERR_UNAUTHENTICATED')
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/)
    }
    // A user's password is not a device token, even on a URL naming the user.
    expect((await post(tg, 'dr-lee', frame('dr-lee'), { token: password })).status).toBe(401)
    // Strangers learn nothing about the body rules, and their bodies are not read: no 413/415,
    // nothing counted as a rejected frame.
    expect((await post(tg, 'amb-02', Buffer.alloc(4096, 1))).status).toBe(401)
    expect((await post(tg, 'amb-02', '{"hr":', { type: 'application/json' })).status).toBe(401)

    expect(await count(tg.gw.metrics.httpRefused, { reason: 'AMB_ERR_UNAUTHENTICATED' })).toBe(attempts.length + 3)
    expect(await count(tg.gw.metrics.httpRefused, { reason: 'AMB_ERR_UNSUPPORTED_MEDIA' })).toBe(0)
    expect(await count(tg.gw.metrics.framesRejected)).toBe(0)
    expect(await count(tg.gw.metrics.framesAccepted)).toBe(0)
    expect(tg.gw.spool.bytes).toBe(0)
    const logs = tg.logs()
    for (const secret of [tokA, tokB, password]) expect(logs).not.toContain(secret)
  })

  it('refuses each bad request with its code, counts it by reason, dead-letters decoder rejections with the original bytes, and accepts the next valid frame', async () => {
    const tg = await gateway({ maxFrameBytes: 2048 })
    const token = await tg.addDevice('amb-01')
    const garbage = Buffer.from('definitely not a protobuf frame \x00\xff\xfe')
    const outOfRange = frame('amb-01', { seq: 2, numerics: [{ sign: 1, value: 900, offsetMs: 0 }] })
    const mismatch = frame('amb-02', { seq: 3 })

    const cases: Array<{ what: string, body: Uint8Array | string, type?: string, status: number, code: string, dead: boolean }> = [
      { what: 'text/plain', body: 'heart rate 72', type: 'text/plain', status: 415, code: 'AMB_ERR_UNSUPPORTED_MEDIA', dead: false },
      { what: 'JSON', body: '{"hr":72}', type: 'application/json', status: 415, code: 'AMB_ERR_UNSUPPORTED_MEDIA', dead: false },
      { what: 'broken JSON', body: '{"hr":', type: 'application/json', status: 415, code: 'AMB_ERR_UNSUPPORTED_MEDIA', dead: false },
      { what: 'an unknown type', body: frame('amb-01'), type: 'image/png', status: 415, code: 'AMB_ERR_UNSUPPORTED_MEDIA', dead: false },
      { what: 'too large', body: Buffer.alloc(4096, 0x0a), status: 413, code: 'AMB_ERR_FRAME_TOO_LARGE', dead: false },
      { what: 'garbage', body: garbage, status: 400, code: 'AMB_ERR_FRAME_MALFORMED', dead: true },
      { what: 'out of range', body: outOfRange, status: 422, code: 'AMB_ERR_VALUE_OUT_OF_RANGE', dead: true },
      { what: 'another unit\'s frame', body: mismatch, status: 403, code: 'AMB_ERR_UNIT_MISMATCH', dead: true }
    ]
    for (const c of cases) {
      const res = await post(tg, 'amb-01', c.body, { token, type: c.type })
      expect({ what: c.what, status: res.status, code: res.body.code }).toEqual({ what: c.what, status: c.status, code: c.code })
      expect(typeof res.body.message).toBe('string')
    }

    const text = await (await fetch(`${tg.httpUrl}/metrics`)).text()
    expect(sample(text, 'ambulink_frames_rejected_total{reason="AMB_ERR_FRAME_TOO_LARGE"}')).toBe(1)
    expect(sample(text, 'ambulink_frames_rejected_total{reason="AMB_ERR_FRAME_MALFORMED"}')).toBe(1)
    expect(sample(text, 'ambulink_frames_rejected_total{reason="AMB_ERR_VALUE_OUT_OF_RANGE"}')).toBe(1)
    expect(sample(text, 'ambulink_frames_rejected_total{reason="AMB_ERR_UNIT_MISMATCH"}')).toBe(1)
    // Refused before decoding (not a frame at all): counted apart, by reason.
    expect(sample(text, 'ambulink_http_refused_total{reason="AMB_ERR_UNSUPPORTED_MEDIA"}')).toBe(4)

    const dead = await tg.gw.deadLetters.readAll()
    const decoderCases = cases.filter(c => c.dead)
    expect(dead.map(d => d.code)).toEqual(decoderCases.map(c => c.code))
    for (const [i, d] of dead.entries()) {
      const c = decoderCases[i]!
      expect(d).toMatchObject({ source: 'decoder', unit: 'amb-01', transport: 'http', code: c.code })
      expect(d.reason.length).toBeGreaterThan(0)
      expect(Buffer.from(d.payload ?? '', 'base64')).toEqual(Buffer.from(c.body))
    }
    expect(dead[1]?.reason).toMatch(/heart_rate 900/)
    expect(dead[2]?.reason).toMatch(/amb-02/)

    // Nothing refused disturbed the unit: the next valid frame goes through.
    expect(await count(tg.gw.metrics.framesAccepted)).toBe(0)
    const ok = await post(tg, 'amb-01', frame('amb-01', { seq: 4 }), { token })
    expect(ok.status).toBe(200)
    expect(ok.body).toMatchObject({ accepted: true, seq: '4' })
  })

  it('takes media type parameters and any case of the Bearer scheme (RFC 9110)', async () => {
    const tg = await gateway()
    const token = await tg.addDevice('amb-01')
    const a = await post(tg, 'amb-01', frame('amb-01', { seq: 1 }), { token, type: 'Application/X-Protobuf; proto=ambulink.v1.TelemetryFrame' })
    expect(a.status).toBe(200)
    const b = await post(tg, 'amb-01', frame('amb-01', { seq: 2 }), { authorization: `bearer ${token}`, type: 'application/octet-stream' })
    expect(b.status).toBe(200)
  })

  it('answers 400 AMB_ERR_FRAME_EMPTY for an empty protobuf body, and dead-letters it', async () => {
    const tg = await gateway()
    const token = await tg.addDevice('amb-01')
    const res = await post(tg, 'amb-01', new Uint8Array(0), { token })
    expect({ status: res.status, code: res.body.code }).toEqual({ status: 400, code: 'AMB_ERR_FRAME_EMPTY' })
    expect(await count(tg.gw.metrics.framesRejected, { reason: 'AMB_ERR_FRAME_EMPTY' })).toBe(1)
    expect((await tg.gw.deadLetters.readAll()).map(d => d.code)).toEqual(['AMB_ERR_FRAME_EMPTY'])
  })
})
