// The simulated ambulance fleet: the ECG's physiology, frames the decoder accepts for every
// patient profile over ten minutes of device time, the device's protobuf encoder against the
// reference one, store-and-forward bookkeeping, and the fleet over real MQTT (an in-process
// aedes broker that delays PUBACKs and drops a connection mid-run).
import net from 'node:net'
import { Aedes, type Client } from 'aedes'
import { afterEach, describe, expect, it } from 'vitest'
import protobuf from 'protobufjs'
import { FrameDecoder, PROTO_PATH, encodeFrame, type Frame } from '../decoders/index.js'
import { EcgSynth, type StemiKind } from '../simulator/ecg.js'
import { SimulatorError } from '../simulator/errors.js'
import { UnitFrameSource, type FrameMeta } from '../simulator/frame-source.js'
import { writeFrame, type FrameFields } from '../simulator/frame-writer.js'
import { OutboundQueue } from '../simulator/outbound-queue.js'
import { HOSPITAL_KIRCHBERG, distanceM } from '../simulator/route.js'
import { Fleet, type UnitReport } from '../simulator/fleet.js'
import { PATIENT_PROFILES, SIGN } from '../simulator/vitals.js'
import { waitFor } from '../testkit/proc.js'

const FS = 500
// Lead enum order, index = enum value − 1.
const I = 0, II = 1, III = 2, AVR = 3, AVL = 4, AVF = 5, V1 = 6, V2 = 7, V3 = 8, V4 = 9

/** R peaks: local maxima above 60 % of the lead's maximum, at least 250 ms apart. */
function rPeaks (x: ArrayLike<number>, fs = FS): number[] {
  let max = 0
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!)
  const peaks: number[] = []
  for (let i = 1; i < x.length - 1; i++) {
    if (x[i]! < 0.6 * max || x[i]! < x[i - 1]! || x[i]! <= x[i + 1]!) continue
    const last = peaks[peaks.length - 1]
    if (last !== undefined && i - last < 0.25 * fs) {
      if (x[i]! > x[last]!) peaks[peaks.length - 1] = i
      continue
    }
    peaks.push(i)
  }
  return peaks
}

function bpmFromPeaks (peaks: number[], fs = FS): number {
  return 60 * (peaks.length - 1) / ((peaks[peaks.length - 1]! - peaks[0]!) / fs)
}

/** Mean ST level, µV: 80 ms after R against the PR segment 80 ms before R. */
function stLevel (x: ArrayLike<number>, peaks: number[], fs = FS): number {
  const after = Math.round(0.08 * fs)
  let sum = 0
  let n = 0
  for (const r of peaks) {
    if (r - after < 0 || r + after >= x.length) continue
    sum += x[r + after]! - x[r - after]!
    n++
  }
  return sum / n
}

function concat (chunks: Int32Array[]): Int32Array {
  const out = new Int32Array(chunks.reduce((n, c) => n + c.length, 0))
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}

describe('EcgSynth', () => {
  it.each([
    ['none', 1], ['inferior', 1], ['anterior', 2.5]
  ] as Array<[StemiKind, number]>)('limb leads obey Einthoven and Goldberger (stemi %s, %s µV/LSB)', (stemi, lsb) => {
    const ecg = new EcgSynth({ stemi, microvoltsPerLsb: lsb, seed: 3 })
    const violations: string[] = [] // collected, not expect()ed per sample: 60,000 samples
    let peak = 0
    for (const n of [125, 1, 333, 4541]) {
      const l = ecg.next(n)
      expect(l).toHaveLength(12)
      for (let i = 0; i < n; i++) {
        const [a, b, c, r, L, f] = [l[I]![i]!, l[II]![i]!, l[III]![i]!, l[AVR]![i]!, l[AVL]![i]!, l[AVF]![i]!]
        if (c !== b - a) violations.push(`III ${c} ≠ II ${b} − I ${a}`)
        if (Math.abs(r + L + f) > 1) violations.push(`aVR+aVL+aVF = ${r + L + f}`)
        if (Math.abs(r + (a + b) / 2) > 0.5) violations.push(`aVR ${r} ≠ −(I+II)/2`)
        for (const lead of l) peak = Math.max(peak, Math.abs(lead[i]!))
      }
    }
    expect(violations.slice(0, 5)).toEqual([])
    expect(peak).toBeLessThanOrEqual(32_000 / lsb)
    expect(peak * lsb).toBeGreaterThan(800) // a QRS is there at all
  })

  it.each([40, 60, 75, 110, 150, 180])('produces %i bpm (R peaks in lead II over 10 s)', (bpm) => {
    const ecg = new EcgSynth({ heartRateBpm: bpm, seed: bpm })
    const ii = ecg.next(10 * FS)[II]!
    const measured = bpmFromPeaks(rPeaks(ii))
    expect(Math.abs(measured - bpm)).toBeLessThan(5)
    expect(Math.abs(ecg.heartRateBpm - bpm)).toBeLessThan(5)
  })

  it('follows a change of heart rate', () => {
    const ecg = new EcgSynth({ heartRateBpm: 60, seed: 9 })
    ecg.next(5 * FS)
    ecg.setHeartRate(120)
    ecg.next(3 * FS)
    const ii = ecg.next(10 * FS)[II]!
    expect(Math.abs(bpmFromPeaks(rPeaks(ii)) - 120)).toBeLessThan(5)
  })

  it('renders the same signal however the samples are requested', () => {
    const whole = new EcgSynth({ seed: 5, heartRateBpm: 140 }).next(3000).map(l => Int32Array.from(l))
    const chunked = new EcgSynth({ seed: 5, heartRateBpm: 140 })
    const parts: Int32Array[][] = []
    for (const n of [7, 125, 1, 600, 267, 2000]) parts.push(chunked.next(n).map(l => Int32Array.from(l)))
    // Equal up to an LSB of rounding (the wander's phase accumulates per sample either way).
    for (let lead = 0; lead < 12; lead++) {
      const joined = concat(parts.map(p => p[lead]!))
      expect(joined.length).toBe(3000)
      let maxDiff = 0
      for (let i = 0; i < 3000; i++) maxDiff = Math.max(maxDiff, Math.abs(joined[i]! - whole[lead]![i]!))
      expect(maxDiff).toBeLessThanOrEqual(1)
    }
  })

  it('renders the same lead II in 1-lead monitoring mode', () => {
    const twelve = new EcgSynth({ seed: 8, stemi: 'inferior' }).next(2000)
    const one = new EcgSynth({ seed: 8, stemi: 'inferior', leadSet: 1 }).next(2000)
    expect(one[II]).toEqual(twelve[II])
    expect(one[V2]!.every(v => v === 0)).toBe(true)
  })

  it.each([
    // [stemi, leads that must show ≥ 100 µV elevation, leads with reciprocal depression ≤ −30 µV]
    ['inferior', [II, III, AVF], [AVL, I]],
    ['anterior', [V1, V2, V3, V4], [III, AVF]],
    ['none', [], []]
  ] as Array<[StemiKind, number[], number[]]>)('shows the ST changes of a %s infarct', (stemi, up, down) => {
    const l = new EcgSynth({ stemi, seed: 11, heartRateBpm: 70 }).next(10 * FS).map(x => Int32Array.from(x))
    const peaks = rPeaks(l[II]!)
    const st = l.map(x => stLevel(x, peaks))
    for (const lead of up) expect(st[lead]).toBeGreaterThanOrEqual(100)
    for (const lead of down) expect(st[lead]).toBeLessThanOrEqual(-30)
    if (stemi === 'none') for (const s of st) expect(Math.abs(s)).toBeLessThan(40)
  })
})

describe('frame writer', () => {
  const full: FrameFields = {
    unitId: 'amb-042',
    bootId: 'b00t.1:x_y-z',
    seq: 2 ** 40 + 3,
    capturedAtMs: 1_750_000_000_123,
    encounterId: 'enc-9f3a',
    numerics: [
      { sign: SIGN.heartRate, value: 72, offsetMs: 10 },
      { sign: SIGN.temperature, value: 37.25, offsetMs: 125 },
      { sign: SIGN.supplementalO2, value: 1, offsetMs: -5 }
    ],
    waveforms: [
      { lead: 1, sampleRateHz: 500, microvoltsPerLsb: 2.5, offsetMs: 2, samples: Int32Array.from([0, 1, -1, 63, -64, 64, 8191, -8192, 32000, -32000, 2 ** 20, -(2 ** 27), 2 ** 30]) },
      { lead: 12, sampleRateHz: 1000, microvoltsPerLsb: 0.1, offsetMs: 3, samples: Int32Array.from([5]) }
    ],
    position: { latitude: 45.744, longitude: 4.9055, speedMps: 12.5, headingDeg: 271.25, offsetMs: 1 },
    alarms: [{ code: 'SPO2_LOW', priority: 3, text: 'SpO₂ 84 % — bas', offsetMs: 250 }],
    assessment: { stemiSuspected: true, lamsScore: 4, fastPositive: true, lastKnownWellMs: 1_749_999_000_000, ageYears: 81, sex: 'female' }
  }
  const bare: FrameFields = {
    unitId: 'u', bootId: 'b', seq: 1, capturedAtMs: 1, encounterId: '', numerics: [{ sign: 0, value: 0, offsetMs: 0 }],
    waveforms: [], position: { latitude: 0, longitude: 0, speedMps: 0, headingDeg: 0, offsetMs: 0 }, alarms: [], assessment: null
  }

  /** Decoded, with defaults filled in, so an omitted zero equals an explicit one. */
  const TelemetryFrame = protobuf.loadSync(PROTO_PATH).lookupType('ambulink.v1.TelemetryFrame')
  const canonical = (bytes: Uint8Array): Record<string, unknown> =>
    TelemetryFrame.toObject(TelemetryFrame.decode(bytes), { defaults: true, longs: String, arrays: true })

  it.each([['a frame using every field', full], ['a frame of defaults', bare]])('encodes %s as protobufjs does', (_name, f) => {
    const reference = encodeFrame({
      ...f,
      numerics: [...f.numerics],
      alarms: [...f.alarms],
      waveforms: f.waveforms.map(w => ({ ...w, samples: Array.from(w.samples) })),
      position: f.position ?? undefined,
      assessment: f.assessment ?? undefined
    })
    const mine = writeFrame(f)
    expect(canonical(mine)).toEqual(canonical(reference))
    // Without zero-valued fields (protobufjs writes those explicitly, proto3 omits them) the
    // bytes are identical too.
    if (f === full) expect(mine.equals(Buffer.from(reference))).toBe(true)
  })
})

describe('UnitFrameSource', () => {
  const START = Date.UTC(2025, 5, 1, 8, 0, 0)
  const TEN_MINUTES = 2400 // frames of 250 ms

  it.each(PATIENT_PROFILES)('emits ten minutes of valid frames for a %s patient', (profile) => {
    const decoder = new FrameDecoder()
    const source = new UnitFrameSource({ unitId: 'amb-007', startMs: START, profile, seed: 42 })
    // Decoded frames without their waveforms (3.6 M samples would only feed the GC), plus the
    // last minute of lead II for the heart-rate check.
    const frames: Array<Omit<Frame, 'waveforms'>> = []
    const lastMinuteII: Int32Array[] = []
    const wrong: string[] = [] // collected: 2,400 frames × several checks
    const leadsOk = JSON.stringify(Array.from({ length: 12 }, (_, l) => [l + 1, 125, 500, 0]))
    for (let i = 0; i < TEN_MINUTES; i++) {
      const { bytes, meta } = source.nextFrame()
      // Decoding throws on anything the gateway would reject.
      const f = decoder.decode(bytes, 'amb-007', START + (i + 1) * 250)
      if (f.seq !== String(i + 1)) wrong.push(`frame ${i}: seq ${f.seq}`)
      if (f.capturedAtMs !== START + i * 250) wrong.push(`frame ${i}: captured_at_ms ${f.capturedAtMs}`) // exactly frameMs apart
      if (f.bootId !== source.bootId || f.encounterId !== source.encounterId) wrong.push(`frame ${i}: ids`)
      if (JSON.stringify(f.waveforms.map(w => [w.lead, w.samples.length, w.sampleRateHz, w.offsetMs])) !== leadsOk) wrong.push(`frame ${i}: waveforms`)
      if (meta.seq !== i + 1 || meta.capturedAtMs !== f.capturedAtMs || meta.bytes !== bytes.length || meta.ecgPoints !== 125 ||
        meta.ecgSamples !== 1500 || meta.numerics !== f.numerics.length || meta.hasPosition !== (f.position !== null)) wrong.push(`frame ${i}: meta`)
      const { waveforms, ...rest } = f
      frames.push(rest)
      if (i >= TEN_MINUTES - 240) lastMinuteII.push(Int32Array.from(waveforms[II]!.samples))
    }
    expect(wrong.slice(0, 5)).toEqual([])
    expect(source.encounterId).toMatch(/^enc-[0-9a-f]{12}$/)

    const count = (sign: number): number => frames.reduce((n, f) => n + f.numerics.filter(x => x.sign === sign).length, 0)
    expect(frames.every((f, i) => (f.numerics.length > 0) === (i % 4 === 0))).toBe(true) // once per second
    expect(frames.every((f, i) => (f.position !== null) === (i % 4 === 0))).toBe(true)
    expect(count(SIGN.heartRate)).toBe(600)
    expect(count(SIGN.spo2)).toBe(600)
    expect(count(SIGN.nibpSystolic)).toBe(2) // the cuff: at start and after 5 minutes
    expect(count(SIGN.nibpMean)).toBe(2)
    expect(count(SIGN.temperature)).toBe(10) // once a minute
    expect(frames.filter(f => f.assessment !== null).map(f => f.seq)).toEqual(['1'])

    const a = frames[0]!.assessment!
    if (profile === 'stemi') expect(a.stemiSuspected).toBe(true)
    if (profile === 'stroke') {
      expect(a.fastPositive).toBe(true)
      expect(a.lamsScore).toBeGreaterThanOrEqual(2)
      expect(a.lastKnownWellMs).toBeLessThan(START)
      expect(a.lastKnownWellMs).toBeGreaterThan(START - 3 * 3_600_000)
    }

    // The ambulance gets closer to the hospital, at urban speeds.
    const fixes = frames.flatMap(f => f.position === null ? [] : [f.position])
    const dist = (p: { latitude: number, longitude: number }): number => distanceM(p, HOSPITAL_KIRCHBERG)
    expect(dist(fixes[fixes.length - 1]!)).toBeLessThan(dist(fixes[0]!))
    expect(Math.max(...fixes.map(p => p.speedMps))).toBeLessThanOrEqual(22)

    // HR numerics agree with the R peaks of the last minute's lead II.
    const lastMinute = frames.slice(-240)
    const ii = concat(lastMinuteII)
    const hrs = lastMinute.flatMap(f => f.numerics.filter(n => n.sign === SIGN.heartRate).map(n => n.value))
    const meanHr = hrs.reduce((s, v) => s + v, 0) / hrs.length
    expect(Math.abs(bpmFromPeaks(rPeaks(ii)) - meanHr)).toBeLessThan(5)

    const alarms = frames.flatMap(f => f.alarms)
    if (profile === 'deteriorating') {
      expect(alarms.length).toBeGreaterThan(0)
      const spo2 = frames.flatMap(f => f.numerics.filter(n => n.sign === SIGN.spo2).map(n => n.value))
      expect(spo2[spo2.length - 1]!).toBeLessThan(spo2[0]!)
    } else {
      expect(alarms).toEqual([])
    }
  })

  it.each([[1, [2]], [0, []]] as const)('sends %i-lead frames', (leads, expected) => {
    const decoder = new FrameDecoder()
    const source = new UnitFrameSource({ unitId: 'amb-1', startMs: START, profile: 'healthy', seed: 1, leads })
    for (let i = 0; i < 40; i++) {
      const { bytes, meta } = source.nextFrame()
      const f = decoder.decode(bytes, 'amb-1', START + 60_000)
      expect(f.waveforms.map(w => w.lead)).toEqual(expected)
      expect(meta.ecgSamples).toBe(expected.length * 125)
    }
  })

  it('rejects a frame length that is not a whole number of samples', () => {
    const make = (): UnitFrameSource => new UnitFrameSource({ unitId: 'a', startMs: START, profile: 'healthy', seed: 1, frameMs: 250, ecgHz: 333 })
    expect(make).toThrow(SimulatorError)
    expect(make).toThrow(/whole number of samples/)
  })
})

describe('OutboundQueue', () => {
  const frame = (seq: number): { bytes: Buffer, meta: FrameMeta } => ({
    bytes: Buffer.alloc(1),
    meta: { unitId: 'u', bootId: 'b', seq, capturedAtMs: seq, bytes: 1, ecgPoints: 0, ecgSamples: 0, numerics: 0, hasPosition: false, alarms: 0, hasAssessment: false }
  })

  it('caps frames in flight, survives out-of-order acks and resends failures first', () => {
    const q = new OutboundQueue(3, 10)
    for (let s = 1; s <= 6; s++) q.push(frame(s))
    const [a, b, c] = [q.take(0)!, q.take(0)!, q.take(0)!]
    expect(q.take(0)).toBeUndefined() // window full: backpressure
    expect([a, b, c].map(e => e.meta.seq)).toEqual([1, 2, 3])
    q.ack(b)
    q.fail(c) // connection closed before frame 3 reached the socket
    expect(q.pending).toBe(5)
    expect([q.take(0)!.meta.seq, q.take(0)!.meta.seq]).toEqual([3, 4]) // 3 again, before 4
    q.ack(a)
    expect(q.pending).toBe(4)
    expect(q.take(0)!.meta.seq).toBe(5) // 1 and 2 acked: room for one more
    expect(q.take(0)).toBeUndefined()
  })

  it('drops the oldest unsent frame when full, never one in flight', () => {
    const q = new OutboundQueue(2, 4)
    for (let s = 1; s <= 4; s++) q.push(frame(s))
    q.take(0)
    q.take(0)
    expect(q.push(frame(5))?.meta.seq).toBe(3)
    expect(q.dropped).toBe(1)
    expect(q.pending).toBe(4)
  })
})

describe('Fleet over MQTT', () => {
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  interface TestBroker {
    url: string
    /** Telemetry seqs per unit, in the order the broker received them (resends included). */
    received: Map<string, number[]>
    /** captured_at_ms of each received frame, per unit and seq. */
    capturedAt: Map<string, Map<number, number>>
    statuses: Map<string, string[]>
    decodeErrors: string[]
    clients: Map<string, Client>
    /** Units whose PUBACKs are withheld (callbacks kept, never called). */
    stalled: Set<string>
  }

  async function startBroker (tokens: ReadonlyMap<string, string>): Promise<TestBroker> {
    const decoder = new FrameDecoder()
    const t: TestBroker = { url: '', received: new Map(), capturedAt: new Map(), statuses: new Map(), decodeErrors: [], clients: new Map(), stalled: new Set() }
    let n = 0
    const broker = await Aedes.createBroker({
      authenticate: (_client, username, password, done) => {
        done(null, username !== undefined && tokens.get(username) === password?.toString())
      },
      authorizePublish: (client, packet, done) => {
        const unit = client?.id ?? ''
        if (packet.topic === `units/${unit}/status`) return done(null)
        if (packet.topic !== `units/${unit}/telemetry`) return done(new Error(`unit ${unit} may not publish to ${packet.topic}`))
        try {
          const f = decoder.decode(packet.payload as Buffer, unit)
          const seq = Number(f.seq)
          if (!t.received.has(unit)) t.received.set(unit, [])
          t.received.get(unit)!.push(seq)
          if (!t.capturedAt.has(unit)) t.capturedAt.set(unit, new Map())
          t.capturedAt.get(unit)!.set(seq, f.capturedAtMs)
        } catch (err) {
          t.decodeErrors.push((err as Error).message)
        }
        if (t.stalled.has(unit)) return // PUBACK withheld: a gateway stuck mid-write
        // Every 5th PUBACK comes 20-120 ms late, which also lets later ones overtake it.
        if (++n % 5 === 0) setTimeout(() => done(null), 20 + (n * 37) % 100)
        else done(null)
      },
      authorizeSubscribe: (_client, _sub, done) => done(new Error('devices may not subscribe'))
    })
    broker.on('clientReady', c => t.clients.set(c.id, c))
    broker.on('publish', (packet) => {
      const m = /^units\/([^/]+)\/status$/.exec(packet.topic)
      if (m === null) return
      if (!t.statuses.has(m[1]!)) t.statuses.set(m[1]!, [])
      t.statuses.get(m[1]!)!.push(packet.payload.toString())
    })
    const server = net.createServer(broker.handle)
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    cleanups.push(async () => {
      await new Promise<void>(resolve => broker.close(() => resolve()))
      await new Promise<void>(resolve => server.close(() => resolve()))
    })
    t.url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`
    return t
  }

  const creds = (n: number): Array<{ unitId: string, token: string }> =>
    Array.from({ length: n }, (_, i) => ({ unitId: `amb-${i + 1}`, token: `token-${i + 1}-secret` }))

  it('delivers every frame in order through delayed PUBACKs and a dropped connection', async () => {
    const units = creds(3)
    const broker = await startBroker(new Map(units.map(u => [u.unitId, u.token])))
    const log: string[] = []
    const fleet = new Fleet({
      url: broker.url,
      units,
      frameMs: 50,
      inflightWindow: 8,
      reconnectPeriodMs: 200,
      recordAckedFrames: true,
      seed: 1,
      log: m => log.push(m)
    })
    cleanups.push(() => fleet.close())
    await fleet.start()
    const report = (unit: string): UnitReport => fleet.unitReports().find(r => r.unitId === unit)!
    const until = (what: string, check: () => boolean): Promise<true> => waitFor(async () => check(), { timeoutMs: 30_000, intervalMs: 10, what })

    await until('12 frames acknowledged per unit', () => fleet.unitReports().every(r => r.acked >= 12))
    // The gateway stops acknowledging amb-2, then its connection dies with frames in flight:
    // once its window of 8 is full and more frames wait in the queue behind it.
    const ackedBeforeStall = report('amb-2').acked
    broker.stalled.add('amb-2')
    await until('amb-2 to fill its window and queue frames', () => report('amb-2').generated >= ackedBeforeStall + 8 + 4 && report('amb-2').inFlightPeak === 8)
    broker.clients.get('amb-2')!.conn.destroy()
    broker.stalled.delete('amb-2')
    // Caught up after the reconnect: everything generated before it is acknowledged, and a few
    // more frames have gone through on the new connection.
    const generatedAtCut = report('amb-2').generated
    await until('amb-2 to reconnect and catch up', () => report('amb-2').connects === 2 && report('amb-2').acked >= generatedAtCut + 4)
    await until('more than 30 frames per unit', () => fleet.unitReports().every(r => r.generated > 30))
    const stats = await fleet.stop({ drain: true, timeoutMs: 30_000 })

    expect(broker.decodeErrors).toEqual([])
    expect(stats.pending).toBe(0)
    expect(stats.dropped).toBe(0)
    const reports = fleet.unitReports()
    for (const r of reports) {
      const got = broker.received.get(r.unitId) ?? []
      const unique = new Set(got)
      // Nothing lost: the broker saw 1..n, and exactly what it saw was acknowledged.
      expect(r.generated).toBeGreaterThan(30)
      expect(r.acked).toBe(r.generated)
      expect(r.ackedSeqRanges).toEqual([[1, r.generated]])
      expect(unique.size).toBe(r.acked)
      expect(Math.max(...unique)).toBe(r.generated)
      // In order, no gaps: a seq is at most one past the highest seen (lower ones are resends).
      let highest = 0
      for (const seq of got) {
        expect(seq).toBeLessThanOrEqual(highest + 1)
        highest = Math.max(highest, seq)
      }
      // Device clock: each frame starts exactly frameMs after the previous one.
      for (const [seq, at] of broker.capturedAt.get(r.unitId)!) expect(at).toBe(fleet.startedAtMs + (seq - 1) * 50)
      expect(r.inFlightPeak).toBeLessThanOrEqual(8)
      // Retained status: online at each connect, offline (DISCONNECT, not the will) at the end.
      const statuses = broker.statuses.get(r.unitId)!
      expect(statuses.filter(s => s === 'online')).toHaveLength(r.connects)
      expect(statuses[statuses.length - 1]).toBe('offline')
    }
    const amb2 = reports.find(r => r.unitId === 'amb-2')!
    expect(amb2.connects).toBe(2)
    expect(amb2.inFlightPeak).toBe(8) // the stall filled the window; the rest waited in the queue
    expect(broker.received.get('amb-2')!.length).toBeGreaterThan(amb2.acked) // withheld frames were resent
    expect(broker.statuses.get('amb-2')).toEqual(['online', 'offline', 'online', 'offline']) // the will fired once
    expect(broker.statuses.get('amb-1')).toEqual(['online', 'offline']) // clean stop: no will
    expect(log.some(m => m.includes('amb-2: reconnected'))).toBe(true)

    expect(stats.framesAcked).toBe(reports.reduce((n, r) => n + r.generated, 0))
    const acked = fleet.ackedFrames()
    expect(acked).toHaveLength(stats.framesAcked)
    expect(stats.ecgPointsAcked).toBe(acked.length * 25) // 50 ms at 500 Hz
    expect(stats.ecgSamplesAcked).toBe(acked.length * 25 * 12)
    expect(stats.positionsAcked).toBe(acked.filter(a => a.hasPosition).length)
    expect(stats.ackLatencyMs.count).toBe(stats.framesAcked)
  }, 15_000)

  it('catches up after the clock jumps, on the same timestamp grid, and stops at maxFrames', async () => {
    const units = creds(2)
    const broker = await startBroker(new Map(units.map(u => [u.unitId, u.token])))
    // An injected clock that moves only when the test moves it.
    const t0 = Date.now()
    let skewMs = 0
    const fleet = new Fleet({ url: broker.url, units, frameMs: 50, leads: 1, maxFrames: 40, now: () => t0 + skewMs })
    cleanups.push(() => fleet.close())
    await fleet.start()
    expect(fleet.stats().framesGenerated).toBe(0)
    skewMs = 1_000 // as if the process had been frozen for a second: 20 frames are due at once
    await waitFor(async () => fleet.stats().framesGenerated >= 2 * 20, { timeoutMs: 30_000, intervalMs: 10, what: '20 frames per unit' })
    expect(fleet.stats().framesGenerated).toBe(2 * 20) // exactly what is due, not one more
    skewMs = 2_000 // the rest (frames 21..40) falls due: maxFrames stops it
    await fleet.whenGenerated()
    const stats = await fleet.stop({ drain: true, timeoutMs: 30_000 })
    expect(stats.framesGenerated).toBe(80)
    expect(stats.framesAcked).toBe(80)
    for (const u of units) {
      const seen = broker.capturedAt.get(u.unitId)!
      expect([...seen.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
      for (const [seq, at] of seen) expect(at).toBe(fleet.startedAtMs + (seq - 1) * 50)
    }
  })

  it('fails start() with the refused unit named', async () => {
    const units = creds(3)
    const broker = await startBroker(new Map(units.map(u => [u.unitId, u.token])))
    const fleet = new Fleet({ url: broker.url, units: [...units.slice(0, 2), { unitId: 'amb-3', token: 'wrong' }] })
    cleanups.push(() => fleet.close())
    const err = await fleet.start().then(() => null, (e: unknown) => e)
    expect(err).toBeInstanceOf(SimulatorError)
    expect(err).toMatchObject({ code: 'AMB_ERR_SIM_CONNECT_REFUSED', unitId: 'amb-3', mqttReturnCode: 5 })
    expect((err as Error).message).toMatch(/amb-3.*Not authorized/)
    expect(fleet.stats().connected).toBe(0) // the units that did connect were closed again
  })

  it('fails start() after startTimeoutMs when nothing listens', async () => {
    const server = net.createServer()
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as net.AddressInfo).port
    await new Promise<void>(resolve => server.close(() => resolve()))
    const fleet = new Fleet({ url: `mqtt://127.0.0.1:${port}`, units: creds(2), startTimeoutMs: 400, reconnectPeriodMs: 100 })
    cleanups.push(() => fleet.close())
    await expect(fleet.start()).rejects.toMatchObject({ code: 'AMB_ERR_SIM_CONNECT_TIMEOUT', message: expect.stringMatching(/2 of 2 units.*ECONNREFUSED/) })
  })
})
