// Security of the MQTT side, against a real gateway: who may connect (CONNACK codes), what a
// device may publish (only under its own units/{unit}/, acknowledged only once spooled), that
// devices subscribe to nothing, what users may see, wills, live credential changes, and that no
// secret ever reaches the logs. Clients: mqtt.js over TCP and WebSocket, and Debian's
// mosquitto_pub as a client written by others.
import mqtt, { ErrorWithReasonCode, type IClientOptions, type MqttClient, type Packet } from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { encodeFrame, type FrameInit } from '../decoders/index.js'
import { revokeDevice, revokeUser } from '../gateway/credentials.js'
import { startTestGateway, type TestGateway } from '../testkit/gateway.js'
import { mosquittoPub } from '../testkit/mosquitto.js'
import { waitFor } from '../testkit/proc.js'

type Transport = 'tcp' | 'ws'
const TRANSPORTS: readonly Transport[] = ['tcp', 'ws']

// No reconnects: a refused or cut connection must stay visible to the test.
const BASE: IClientOptions = { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5_000, clean: true }

async function gateway (): Promise<TestGateway> {
  const tg = await startTestGateway()
  onTestFinished(() => tg.close())
  return tg
}

function urlOf (tg: TestGateway, t: Transport): string {
  return t === 'tcp' ? tg.mqttUrl : tg.wsUrl
}

/** Connects (CONNACK 0 expected) and ends the client when the test finishes. */
async function connect (url: string, opts: IClientOptions): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { ...BASE, ...opts })
  onTestFinished(async () => { await client.endAsync(true) })
  return client
}

/** Connects expecting a refusal; resolves with the CONNACK return code mqtt.js reports. */
async function refusedWith (url: string, opts: IClientOptions): Promise<number> {
  let client: MqttClient
  try {
    client = await mqtt.connectAsync(url, { ...BASE, ...opts })
  } catch (err) {
    if (err instanceof ErrorWithReasonCode) return err.code
    throw err
  }
  await client.endAsync(true)
  throw new Error(`connection as ${String(opts.username)} was accepted`)
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

/** What prom-client's counters share (their label names differ). */
interface CounterLike { get: () => Promise<{ values: Array<{ value: number, labels: Partial<Record<string, string | number>> }> }> }

/** Sum of a counter's series whose labels include `labels`. */
async function count (metric: CounterLike, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get()
  return values
    .filter(v => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((sum, v) => sum + v.value, 0)
}

/** Resolves with the next packet of type `cmd` the client receives. */
function nextPacket<C extends Packet['cmd']> (client: MqttClient, cmd: C): Promise<Extract<Packet, { cmd: C }>> {
  return new Promise(resolve => {
    const on = (p: Packet): void => {
      if (p.cmd !== cmd) return
      client.off('packetreceive', on)
      resolve(p as Extract<Packet, { cmd: C }>)
    }
    client.on('packetreceive', on)
  })
}

function closed (client: MqttClient): Promise<void> {
  return new Promise(resolve => { client.once('close', () => { resolve() }) })
}

/** SUBACK return codes for one SUBSCRIBE of `topics` (QoS 1 asked). */
async function subscribeCodes (client: MqttClient, topics: string[]): Promise<number[]> {
  const suback = nextPacket(client, 'suback')
  client.subscribe(topics, { qos: 1 }, () => {})
  const { granted } = await suback
  return granted.map(g => typeof g === 'number' ? g : -1)
}

/** Collects messages a client receives (topic, payload as text, retain flag). */
function collect (client: MqttClient): Array<{ topic: string, payload: string, retain: boolean }> {
  const got: Array<{ topic: string, payload: string, retain: boolean }> = []
  client.on('message', (topic, payload, packet) => { got.push({ topic, payload: payload.toString(), retain: packet.retain }) })
  return got
}

describe.each(TRANSPORTS)('device over %s', transport => {
  it('connects with its token; a telemetry frame is acknowledged only once spooled, and counted', async () => {
    const tg = await gateway()
    const token = await tg.addDevice('amb-01')
    const c = await connect(urlOf(tg, transport), { clientId: 'amb-01', username: 'amb-01', password: token })
    const before = await count(tg.gw.metrics.framesAccepted, { transport: 'mqtt' })
    const spoolBefore = tg.gw.spool.bytes

    const puback = nextPacket(c, 'puback')
    const sent = await c.publishAsync('units/amb-01/telemetry', frame('amb-01'), { qos: 1 })
    expect((await puback).messageId).toBe(sent?.messageId)
    expect(await count(tg.gw.metrics.framesAccepted, { transport: 'mqtt' })).toBe(before + 1)
    expect(tg.gw.spool.bytes).toBeGreaterThan(spoolBefore)

    // The same counter as Prometheus text on /metrics (loopback needs no token).
    const text = await (await fetch(`${tg.httpUrl}/metrics`)).text()
    expect(text).toMatch(/^ambulink_frames_accepted_total\{transport="mqtt"\} 1$/m)
  })

  it('is refused at CONNACK for a wrong token, an unknown unit, no credentials, or a client id it does not own', async () => {
    const tg = await gateway()
    const token = await tg.addDevice('amb-01')
    await tg.addDevice('amb-02')
    const url = urlOf(tg, transport)

    // MQTT 3.1.1 §3.2.2.3: 4 = bad user name or password, 2 = identifier rejected.
    expect(await refusedWith(url, { clientId: 'amb-01', username: 'amb-01', password: token + 'x' })).toBe(4)
    expect(await refusedWith(url, { clientId: 'amb-99', username: 'amb-99', password: token })).toBe(4)
    expect(await refusedWith(url, { clientId: 'amb-01' })).toBe(4)
    expect(await refusedWith(url, { clientId: 'amb-01', username: 'amb-01' })).toBe(4)
    // Right credentials, but amb-02's session id: no one may take over another unit's session.
    expect(await refusedWith(url, { clientId: 'amb-02', username: 'amb-01', password: token })).toBe(2)
    expect(await refusedWith(url, { clientId: 'amb-0', username: 'amb-01', password: token })).toBe(2)
    expect(await refusedWith(url, { clientId: '', username: 'amb-01', password: token })).toBe(2)

    expect(await count(tg.gw.metrics.mqttRefused, { reason: 'AMB_ERR_UNAUTHENTICATED' })).toBe(4)
    expect(await count(tg.gw.metrics.mqttRefused, { reason: 'AMB_ERR_CLIENT_ID' })).toBe(3)
    expect(tg.gw.broker.connectedClients).toBe(0)

    // "<unit>:<suffix>" client ids are the unit's own (a second connection of the same device).
    const c = await connect(url, { clientId: 'amb-01:backup', username: 'amb-01', password: token })
    expect(c.connected).toBe(true)
  })

  it.each([
    ['another unit\'s telemetry', 'units/amb-02/telemetry'],
    ['another unit\'s status', 'units/amb-02/status'],
    ['$SYS', '$SYS/broker/uptime'],
    ['a topic outside units/{unit}/', 'hospital/orders'],
    ['a prefix look-alike', 'units/amb-01x/telemetry'],
    ['its own unit, a topic outside the contract', 'units/amb-01/debug']
  ])('is disconnected for publishing to %s, the refusal is counted and nothing is stored', async (_what, topic) => {
    const tg = await gateway()
    const token = await tg.addDevice('amb-01')
    const url = urlOf(tg, transport)
    const c = await connect(url, { clientId: 'amb-01', username: 'amb-01', password: token })
    const spoolBefore = tg.gw.spool.bytes

    const acks: Packet[] = []
    c.on('packetreceive', p => { if (p.cmd === 'puback') acks.push(p) })
    const gone = closed(c)
    // MQTT 3.1.1 has no negative PUBACK: the broker closes the connection instead.
    c.publish(topic, frame('amb-02'), { qos: 1, retain: true }, () => {})
    await gone

    expect(acks).toEqual([])
    expect(await count(tg.gw.metrics.mqttRefused, { reason: 'AMB_ERR_FORBIDDEN_TOPIC' })).toBe(1)
    expect(await count(tg.gw.metrics.framesAccepted)).toBe(0)
    expect(await count(tg.gw.metrics.framesRejected)).toBe(0)
    expect(tg.gw.spool.bytes).toBe(spoolBefore)
    expect(await tg.gw.deadLetters.readAll()).toEqual([])

    // Nothing was retained either: a clinician subscribing to everything it may see gets only a
    // marker retained after the attempt (aedes sends retained messages in the order they were
    // kept, so the marker's arrival means anything kept before it has arrived too).
    const markerToken = await tg.addDevice('amb-03')
    const marker = await connect(url, { clientId: 'amb-03', username: 'amb-03', password: markerToken })
    await marker.publishAsync('units/amb-03/status', 'online', { qos: 1, retain: true })
    const password = await tg.addUser('dr-watts', 'clinician')
    const watcher = await connect(url, { clientId: 'dr-watts', username: 'dr-watts', password })
    const seen = collect(watcher)
    await watcher.subscribeAsync(['units/+/status', 'alerts/#'], { qos: 1 })
    await waitFor(async () => seen.some(m => m.topic === 'units/amb-03/status'), { timeoutMs: 10_000, what: 'the retained marker' })
    expect(seen).toEqual([{ topic: 'units/amb-03/status', payload: 'online', retain: true }])
  })

  it('gets SUBACK 128 for any subscription, its own topics included', async () => {
    const tg = await gateway()
    const token = await tg.addDevice('amb-01')
    const c = await connect(urlOf(tg, transport), { clientId: 'amb-01', username: 'amb-01', password: token })

    const topics = ['#', 'units/amb-02/telemetry', 'units/amb-01/telemetry', 'units/amb-01/status', 'units/+/status', 'alerts/#']
    expect(await subscribeCodes(c, topics)).toEqual(topics.map(() => 128))
    expect(await count(tg.gw.metrics.mqttRefused, { reason: 'AMB_ERR_FORBIDDEN_SUBSCRIBE' })).toBe(topics.length)
    // A refused subscription is not a protocol error: the session stays up.
    expect(c.connected).toBe(true)
    await c.publishAsync('units/amb-01/telemetry', frame('amb-01'), { qos: 1 })
    expect(await count(tg.gw.metrics.framesAccepted, { transport: 'mqtt' })).toBe(1)
  })
})

describe('sessions', () => {
  it('a unit cannot take over the session of a unit whose id extends its own ("amb-01" vs "amb-01:2")', async () => {
    const tg = await gateway()
    const tok1 = await tg.addDevice('amb-01')
    const tok2 = await tg.addDevice('amb-01:2')
    const victim = await connect(tg.mqttUrl, { clientId: 'amb-01:2', username: 'amb-01:2', password: tok2 })
    let victimClosed = false
    victim.on('close', () => { victimClosed = true })

    // aedes would close the victim's connection to hand its client id over.
    expect(await refusedWith(tg.mqttUrl, { clientId: 'amb-01:2', username: 'amb-01', password: tok1 })).toBe(2)
    expect(await refusedWith(tg.mqttUrl, { clientId: 'amb-01:2:x', username: 'amb-01', password: tok1 })).toBe(2)
    await connect(tg.mqttUrl, { clientId: 'amb-01:spare', username: 'amb-01', password: tok1 })
    await victim.publishAsync('units/amb-01:2/telemetry', frame('amb-01:2'), { qos: 1 })
    expect(victimClosed).toBe(false)
    expect(await count(tg.gw.metrics.framesAccepted)).toBe(1)
  })
})

describe('a client written by others (mosquitto_pub)', () => {
  it('publishes a frame with the device token (QoS 1, exit 0) and fails with a wrong token', async () => {
    const tg = await gateway()
    const token = await tg.addDevice('amb-03')
    const port = tg.gw.ports.mqtt!

    const ok = await mosquittoPub({ port, id: 'amb-03', username: 'amb-03', password: token, topic: 'units/amb-03/telemetry', message: frame('amb-03'), qos: 1 })
    expect(ok.code, ok.stderr).toBe(0)
    expect(await count(tg.gw.metrics.framesAccepted, { transport: 'mqtt' })).toBe(1)

    const bad = await mosquittoPub({ port, id: 'amb-03', username: 'amb-03', password: 'amb_' + 'A'.repeat(43), topic: 'units/amb-03/telemetry', message: frame('amb-03', { seq: 2 }), qos: 1 })
    expect(bad.code).not.toBe(0)
    expect(bad.stderr + bad.stdout).toMatch(/refused|password|authori/i)

    const foreign = await mosquittoPub({ port, id: 'amb-03', username: 'amb-03', password: token, topic: 'units/amb-04/telemetry', message: frame('amb-04'), qos: 1, timeoutMs: 15_000 })
    expect(foreign.code).not.toBe(0)
    expect(await count(tg.gw.metrics.framesAccepted)).toBe(1)
    expect(await count(tg.gw.metrics.mqttRefused, { reason: 'AMB_ERR_FORBIDDEN_TOPIC' })).toBe(1)
  })
})

describe('users', () => {
  it('a clinician subscribes to unit status and alerts, receives them, but may publish nothing', async () => {
    const tg = await gateway()
    const password = await tg.addUser('dr-lee', 'clinician')
    const c = await connect(tg.mqttUrl, { clientId: 'dr-lee:dashboard', username: 'dr-lee', password })

    expect(await subscribeCodes(c, ['units/+/status', 'alerts/#'])).toEqual([1, 1])
    // Wider or other filters would reach telemetry or other topics: refused.
    expect(await subscribeCodes(c, ['#', 'units/#', 'units/+/telemetry', '$SYS/#'])).toEqual([128, 128, 128, 128])

    const got = collect(c)
    // Alerts are published by the gateway itself (hospital side), not by MQTT clients.
    await new Promise<void>((resolve, reject) => {
      tg.gw.broker.publish({ cmd: 'publish', topic: 'alerts/amb-01', payload: Buffer.from('{"kind":"stemi"}'), qos: 1, retain: false, dup: false }, err => { if (err) reject(err); else resolve() })
    })
    await waitFor(async () => got.length === 1, { timeoutMs: 20_000, what: 'the alert' })
    expect(got[0]).toMatchObject({ topic: 'alerts/amb-01', payload: '{"kind":"stemi"}' })

    const gone = closed(c)
    c.publish('alerts/amb-01', 'fake alert', { qos: 1 }, () => {})
    await gone
    expect(await count(tg.gw.metrics.mqttRefused, { reason: 'AMB_ERR_FORBIDDEN_TOPIC' })).toBe(1)
  })

  it('a clinician cannot publish telemetry, even on a unit\'s topic', async () => {
    const tg = await gateway()
    const password = await tg.addUser('dr-lee', 'clinician')
    const c = await connect(tg.wsUrl, { clientId: 'dr-lee', username: 'dr-lee', password })
    const gone = closed(c)
    c.publish('units/amb-01/telemetry', frame('amb-01'), { qos: 1 }, () => {})
    await gone
    expect(await count(tg.gw.metrics.framesAccepted)).toBe(0)
    expect(await count(tg.gw.metrics.mqttRefused, { reason: 'AMB_ERR_FORBIDDEN_TOPIC' })).toBe(1)
  })

  it('a researcher cannot subscribe to alerts (nor unit status)', async () => {
    const tg = await gateway()
    const password = await tg.addUser('res-1', 'researcher')
    const c = await connect(tg.mqttUrl, { clientId: 'res-1', username: 'res-1', password })
    expect(await subscribeCodes(c, ['alerts/#', 'alerts/+', 'units/+/status', '#'])).toEqual([128, 128, 128, 128])
  })
})

describe('wills', () => {
  it('a device\'s will lands on units/{unit}/status when its socket dies; a will on another unit\'s topic is never delivered', async () => {
    const tg = await gateway()
    const tok1 = await tg.addDevice('amb-01')
    const tok2 = await tg.addDevice('amb-02')
    const password = await tg.addUser('dr-lee', 'clinician')
    const watcher = await connect(tg.mqttUrl, { clientId: 'dr-lee', username: 'dr-lee', password })
    const got = collect(watcher)
    await watcher.subscribeAsync('units/+/status', { qos: 1 })

    // amb-02 claims amb-01's status topic for its will: refused at CONNACK (5, not authorised),
    // since a will may be published later when no client is left to check it against.
    const refusedBefore = await count(tg.gw.metrics.mqttRefused, { reason: 'AMB_ERR_FORBIDDEN_TOPIC' })
    await expect(mqtt.connectAsync(tg.wsUrl, {
      clientId: 'amb-02',
      username: 'amb-02',
      password: tok2,
      reconnectPeriod: 0,
      will: { topic: 'units/amb-01/status', payload: Buffer.from('spoofed'), qos: 1, retain: true }
    })).rejects.toMatchObject({ code: 5 })
    expect(await count(tg.gw.metrics.mqttRefused, { reason: 'AMB_ERR_FORBIDDEN_TOPIC' })).toBe(refusedBefore + 1)

    // A user may not set a will at all: users publish nothing.
    const userPassword = await tg.addUser('nurse-1', 'clinician')
    await expect(mqtt.connectAsync(tg.mqttUrl, {
      clientId: 'nurse-1',
      username: 'nurse-1',
      password: userPassword,
      reconnectPeriod: 0,
      will: { topic: 'units/amb-01/status', payload: Buffer.from('spoofed by a user'), qos: 1, retain: true }
    })).rejects.toMatchObject({ code: 5 })
    expect(await count(tg.gw.metrics.mqttRefused, { reason: 'AMB_ERR_FORBIDDEN_TOPIC' })).toBe(refusedBefore + 2)

    // amb-01's own will, same path: delivered. Messages arrive in order, so once it is here the
    // spoofed one would have been too.
    const device = await connect(tg.mqttUrl, {
      clientId: 'amb-01',
      username: 'amb-01',
      password: tok1,
      will: { topic: 'units/amb-01/status', payload: Buffer.from('offline'), qos: 1, retain: true }
    })
    await device.publishAsync('units/amb-01/status', 'online', { qos: 1, retain: true })
    await waitFor(async () => got.length >= 1, { timeoutMs: 20_000, what: 'online' })
    device.stream.destroy()
    await waitFor(async () => got.length >= 2, { timeoutMs: 20_000, what: 'the will' })
    expect(got).toEqual([
      { topic: 'units/amb-01/status', payload: 'online', retain: false },
      { topic: 'units/amb-01/status', payload: 'offline', retain: false }
    ])

    // The will was retained: a late subscriber learns amb-01 is offline.
    const late = await connect(tg.mqttUrl, { clientId: 'dr-lee:late', username: 'dr-lee', password })
    const lateGot = collect(late)
    await late.subscribeAsync('units/+/status', { qos: 1 })
    await waitFor(async () => lateGot.length >= 1, { timeoutMs: 20_000, what: 'the retained status' })
    expect(lateGot).toEqual([{ topic: 'units/amb-01/status', payload: 'offline', retain: true }])
  })
})

describe('live credential changes', () => {
  it('a device added while the gateway runs connects without a restart; revoking it ends its session and refuses the next login', async () => {
    const tg = await gateway()
    const token = await tg.addDevice('amb-09')
    const opts: IClientOptions = { clientId: 'amb-09', username: 'amb-09', password: token }
    const c = await waitFor(async () => await connect(tg.mqttUrl, opts), { timeoutMs: 10_000, intervalMs: 50, what: 'amb-09 to be accepted' })
    await c.publishAsync('units/amb-09/telemetry', frame('amb-09'), { qos: 1 })

    const gone = closed(c)
    expect(await revokeDevice(tg.dataDir, 'amb-09')).toBe(true)
    await gone
    expect(await refusedWith(tg.mqttUrl, opts)).toBe(4)
    expect(await refusedWith(tg.wsUrl, opts)).toBe(4)
  })

  it('revoking a user ends the user\'s live session', async () => {
    const tg = await gateway()
    const password = await tg.addUser('dr-lee', 'clinician')
    const c = await connect(tg.wsUrl, { clientId: 'dr-lee', username: 'dr-lee', password })
    const gone = closed(c)
    expect(await revokeUser(tg.dataDir, 'dr-lee')).toBe(true)
    await gone
    expect(await refusedWith(tg.wsUrl, { clientId: 'dr-lee', username: 'dr-lee', password })).toBe(4)
  })

  it('a new token for a unit replaces the old one at once: the old token\'s session ends and the old token is refused', async () => {
    const tg = await gateway()
    const oldToken = await tg.addDevice('amb-05')
    const c = await connect(tg.mqttUrl, { clientId: 'amb-05', username: 'amb-05', password: oldToken })
    const gone = closed(c)
    const newToken = await tg.addDevice('amb-05')
    await gone
    expect(await refusedWith(tg.mqttUrl, { clientId: 'amb-05', username: 'amb-05', password: oldToken })).toBe(4)
    const c2 = await connect(tg.mqttUrl, { clientId: 'amb-05', username: 'amb-05', password: newToken })
    expect(c2.connected).toBe(true)
  })
})

describe('secrets and logs', () => {
  it('no token or password appears in the logs, even after failed logins with wrong or misplaced secrets', async () => {
    const tg = await gateway()
    const tok1 = await tg.addDevice('amb-01')
    const tok2 = await tg.addDevice('amb-02')
    const password = await tg.addUser('dr-lee', 'clinician')
    const wrong = 'amb_' + 'Z'.repeat(43)

    // Successful logins, and a forbidden publish (logged with its reason).
    const c = await connect(tg.mqttUrl, { clientId: 'amb-01', username: 'amb-01', password: tok1 })
    const gone = closed(c)
    c.publish('units/amb-02/telemetry', frame('amb-02'), { qos: 1 }, () => {})
    await gone
    await (await connect(tg.wsUrl, { clientId: 'dr-lee', username: 'dr-lee', password })).endAsync()

    // Failed logins: another unit's token, a made-up token, a user's password on a unit, and
    // secrets put in the wrong field (token as user name, as some platforms expect).
    expect(await refusedWith(tg.mqttUrl, { clientId: 'amb-01', username: 'amb-01', password: tok2 })).toBe(4)
    expect(await refusedWith(tg.wsUrl, { clientId: 'amb-02', username: 'amb-02', password: wrong })).toBe(4)
    expect(await refusedWith(tg.mqttUrl, { clientId: 'amb-02', username: 'amb-02', password })).toBe(4)
    expect(await refusedWith(tg.mqttUrl, { clientId: 'amb-01', username: tok1, password: tok1 })).toBe(4)
    expect(await refusedWith(tg.mqttUrl, { clientId: 'amb-02', username: tok2 })).toBe(4)
    const viaCli = await mosquittoPub({ port: tg.gw.ports.mqtt!, id: 'amb-02', username: 'amb-02', password: tok1, topic: 'units/amb-02/telemetry', message: 'x', qos: 1 })
    expect(viaCli.code).not.toBe(0)

    const logs = tg.logs()
    expect(logs).toContain('mqtt refused')
    for (const secret of [tok1, tok2, password, wrong]) expect(logs).not.toContain(secret)
  })
})
