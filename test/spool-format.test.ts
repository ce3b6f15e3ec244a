// The compact spool (issue 12, goal 5): ingest spools the validated frame (a frame record) and
// the line protocol is written when the spool drains. These tests prove that the line protocol
// that reaches InfluxDB is byte for byte what the spool held before, that a spool written by the
// previous version (record format v0: line protocol) still drains after the upgrade, alone and
// followed by frame records, that a frame refused when draining goes to the dead letters, and
// the size on disk.
import { cp, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { FrameDecoder, encodeFrame } from '../decoders/index.js'
import {
  countFrameLines, DeadLetterStore, frameRecord, frameRecordHead, FrameRecordExpander, frameToLines, LineBuffer, Spool,
  SPOOL_RECORD_FRAME, spoolFrameExpander, writeFrameLines, type SpoolBatch
} from '../streams/index.js'
import { testFrame } from '../testkit/frames.js'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway } from '../testkit/gateway.js'
import { waitFor } from '../testkit/proc.js'

const FIXTURE = join(import.meta.dirname, 'fixtures', 'spool-v0')
/** The fixture's frames, as make-v0.ts.txt built them (fixed times, so the lines are fixed). */
function fixtureFrame (seq: number): Uint8Array {
  return testFrame({ unit: 'fixture-1', seq, capturedAtMs: 1_795_000_000_000 + seq * 250, encounter: seq < 4 ? 'enc-a' : '', leads: seq === 5 ? 3 : 12, extra: seq === 6 ? { waveforms: [{ lead: 1, sampleRateHz: 500, microvoltsPerLsb: 2.5, offsetMs: 0, samples: [1, -2, 3, 4] }, { lead: 2, sampleRateHz: 250, microvoltsPerLsb: 1, offsetMs: 0, samples: [5, 6] }] } : {} })
}
const decoder = new FrameDecoder()
const decodeFixture = (bytes: Uint8Array): ReturnType<FrameDecoder['decode']> => decoder.decode(bytes, 'fixture-1', 1_795_000_100_000)

const dirs: string[] = []
async function tempDir (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ambulink-spool-format-'))
  dirs.push(d)
  return d
}
afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }) })

async function readAll (spool: Spool): Promise<{ text: string, points: number, records: number }> {
  let text = ''
  let points = 0
  let records = 0
  for (let b: SpoolBatch | null; (b = await spool.read(64 * 1024, 5000)) !== null;) {
    text += b.data.toString('latin1')
    points += b.points
    records += b.records
    await spool.commit(b.end)
  }
  return { text, points, records }
}

async function appendFrame (spool: Spool, unit: string, bytes: Uint8Array): Promise<void> {
  const f = decoder.decode(bytes, unit, 1_795_000_100_000)
  await spool.appendRecord(frameRecord(unit, bytes), countFrameLines(f).points, SPOOL_RECORD_FRAME)
}

describe('compact spool: frame records', () => {
  it('countFrameLines() counts exactly the points writeFrameLines() writes (uniform, merged, scaled, no ECG, assessment)', () => {
    const frames = [1, 2, 3, 4, 5, 6].map(s => decodeFixture(fixtureFrame(s)))
    frames.push(decodeFixture(testFrame({ unit: 'fixture-1', seq: 9, capturedAtMs: 1_795_000_002_000, ecgSamples: 0 })))
    frames.push(decodeFixture(testFrame({ unit: 'fixture-1', seq: 10, capturedAtMs: 1_795_000_003_000, numerics: false, position: false, extra: { assessment: { stemiSuspected: true, lamsScore: 4 } } })))
    frames.push(decodeFixture(encodeFrame({ unitId: 'fixture-1', bootId: 'b', seq: 11, capturedAtMs: 1_795_000_004_000, numerics: [{ sign: 1, value: 80, offsetMs: 0 }, { sign: 3, value: 95, offsetMs: 500 }, { sign: 7, value: 14, offsetMs: 500 }] })))
    for (const f of frames) {
      const out = new LineBuffer(1024)
      const written = writeFrameLines(f, out)
      expect(countFrameLines(f)).toEqual(written)
      expect(out.toString().split('\n').length - 1).toBe(written.points)
    }
  })

  it('drains frame records into exactly the line protocol ingest wrote before, at ≤ 1.5 bytes on disk per frame byte', async () => {
    const dir = await tempDir()
    const spool = await Spool.open({ dir, expandFrame: p => new FrameRecordExpander().expand(p) })
    let expected = ''
    let frameBytes = 0
    for (let seq = 1; seq <= 6; seq++) {
      const bytes = fixtureFrame(seq)
      frameBytes += bytes.length
      expected += frameToLines(decodeFixture(bytes)).text
      await appendFrame(spool, 'fixture-1', bytes)
    }
    // 12-lead frames as the fleet sends them, for the size on disk.
    for (let seq = 1; seq <= 40; seq++) {
      const bytes = testFrame({ unit: 'amb-7', seq, capturedAtMs: 1_795_000_000_000 + seq * 250 })
      frameBytes += bytes.length
      expected += frameToLines(decoder.decode(bytes, 'amb-7', 1_795_000_100_000)).text
      await appendFrame(spool, 'amb-7', bytes)
    }
    expect(spool.bytes / frameBytes).toBeLessThanOrEqual(1.5)
    const got = await readAll(spool)
    await spool.close()
    expect(got.text).toBe(expected)
    expect(got.points).toBe(expected.split('\n').length - 1)
    expect(got.records).toBe(46)
  })

  it('a frame record appended as its head and the frame\'s own bytes (ingest: no copy) is the same on disk, checksum included', async () => {
    // Same clock for both spools: the header holds the receive time.
    const now = (): number => 1_795_000_100_000
    const whole = await Spool.open({ dir: await tempDir(), now })
    const split = await Spool.open({ dir: await tempDir(), now, expandFrame: p => new FrameRecordExpander().expand(p) })
    const frames = Array.from({ length: 30 }, (_, i) => testFrame({ unit: 'amb-8', seq: i + 1, capturedAtMs: 1_795_000_000_000 + i * 250 }))
    // Appended together (one group commit) and one by one, into each spool.
    await Promise.all(frames.slice(0, 20).map(b => whole.appendRecord(frameRecord('amb-8', b), 127, SPOOL_RECORD_FRAME)))
    await Promise.all(frames.slice(0, 20).map(b => split.appendRecord(frameRecordHead('amb-8'), 127, SPOOL_RECORD_FRAME, b)))
    for (const b of frames.slice(20)) {
      await whole.appendRecord(frameRecord('amb-8', b), 127, SPOOL_RECORD_FRAME)
      await split.appendRecord(frameRecordHead('amb-8'), 127, SPOOL_RECORD_FRAME, b)
    }
    expect(split.bytes).toBe(whole.bytes)
    await whole.close()
    await split.close()
    const segment = async (s: Spool): Promise<Buffer> => {
      const name = (await readdir(s.options.dir)).find(n => n.startsWith('seg-'))!
      return await readFile(join(s.options.dir, name))
    }
    expect((await segment(split)).equals(await segment(whole))).toBe(true)
    // Reopened, every record passes its checksum (nothing truncated) and drains.
    const again = await Spool.open({ dir: split.options.dir, expandFrame: p => new FrameRecordExpander().expand(p) })
    expect(again.bytes).toBe(whole.bytes)
    const got = await readAll(again)
    await again.close()
    expect(got.records).toBe(30)
    expect(got.text).toBe(frames.map(b => frameToLines(decoder.decode(b, 'amb-8', 1_795_000_100_000)).text).join(''))
  })

  it('drains a spool written by the previous version (record format v0) unchanged, then the frame records appended after the upgrade', async () => {
    const dir = await tempDir()
    await cp(FIXTURE, dir, { recursive: true })
    const v0 = await readFile(join(FIXTURE, 'expected.lp'), 'latin1')
    // The fixture holds what it says: six frames' lines and one alert line.
    expect(v0.split('\n').length - 1).toBe(v0.split('\n').filter(l => l !== '').length)
    const v0Size = (await stat(join(dir, 'seg-000000000001.log'))).size
    const spool = await Spool.open({ dir, expandFrame: p => new FrameRecordExpander().expand(p) })
    expect(spool.bytes).toBe(v0Size)
    let after = ''
    for (let seq = 1; seq <= 6; seq++) {
      const bytes = fixtureFrame(seq)
      after += frameToLines(decodeFixture(bytes)).text
      await appendFrame(spool, 'fixture-1', bytes)
    }
    // The same frames written as frame records give the same lines the old records hold.
    expect(after).toBe(v0.slice(0, v0.lastIndexOf('alert,')))
    const got = await readAll(spool)
    expect(got.text).toBe(v0 + after)
    expect(got.records).toBe(7 + 6)
    await spool.close()
  })

  it('without an expander, a frame record stops the reader (AMB_ERR_SPOOL_UNDECODABLE) and stays spooled', async () => {
    const dir = await tempDir()
    const writer = await Spool.open({ dir })
    await appendFrame(writer, 'fixture-1', fixtureFrame(1))
    await expect(writer.read(64 * 1024)).rejects.toMatchObject({ code: 'AMB_ERR_SPOOL_UNDECODABLE' })
    await writer.close()
    const reader = await Spool.open({ dir, expandFrame: p => new FrameRecordExpander().expand(p) })
    const got = await readAll(reader)
    await reader.close()
    expect(got.text).toBe(frameToLines(decodeFixture(fixtureFrame(1))).text)
  })

  it('a frame acknowledged long ago still drains: the time limits do not apply when draining', async () => {
    const old = testFrame({ unit: 'amb-1', seq: 1, capturedAtMs: Date.now() - 30 * 24 * 3_600_000 })
    // Refused today at ingest (older than maxPastAgeMs), as it would be when InfluxDB comes back
    // after a long outage; it was valid when it was received and acknowledged.
    expect(() => decoder.decode(old, 'amb-1')).toThrow(/old/)
    const payload = frameRecord('amb-1', old).subarray(20)
    const lines = new FrameRecordExpander().expand(payload).toString()
    expect(lines).toBe(frameToLines(decoder.decode(old, 'amb-1', Date.now() - 30 * 24 * 3_600_000)).text)
  })

  it('a frame refused when draining goes to the dead letters with its bytes, and the drain goes on', async () => {
    const dir = await tempDir()
    const deadLetters = await DeadLetterStore.open({ dir: join(dir, 'dead') })
    const refused: string[] = []
    const spool = await Spool.open({ dir: join(dir, 'spool'), expandFrame: spoolFrameExpander(deadLetters, err => { refused.push(err.code) }) })
    // A frame whose unit_id is not the unit it is filed under (a record no ingest writes; the
    // decoder of a later version refusing a frame is the case this stands for).
    const foreign = fixtureFrame(2)
    await spool.appendRecord(frameRecord('other-unit', foreign), 127, SPOOL_RECORD_FRAME)
    await appendFrame(spool, 'fixture-1', fixtureFrame(3))
    const got = await readAll(spool)
    await spool.close()
    await deadLetters.close()
    expect(got.text).toBe(frameToLines(decodeFixture(fixtureFrame(3))).text)
    expect(refused).toEqual(['AMB_ERR_SPOOL_UNDECODABLE'])
    const files = await readdir(join(dir, 'dead'))
    const entries = (await Promise.all(files.map(f => readFile(join(dir, 'dead', f), 'utf8')))).join('').trim().split('\n').map(l => JSON.parse(l) as { source: string, code: string, unit: string, payload: string })
    expect(entries).toHaveLength(1)
    expect(entries[0]).toMatchObject({ source: 'spool', code: 'AMB_ERR_SPOOL_UNDECODABLE', unit: 'other-unit' })
    expect(Buffer.from(entries[0]!.payload, 'base64').equals(Buffer.from(foreign))).toBe(true)
  })
})

describe('upgrade: a v0 spool drains into InfluxDB through the gateway', () => {
  let influx: InfluxServer
  beforeAll(async () => { influx = await startInfluxDB() })
  afterAll(async () => { await influx?.stop() })

  it('every line of the old records is stored, exactly once', async () => {
    const dataDir = await tempDir()
    await cp(FIXTURE, join(dataDir, 'spool'), { recursive: true })
    const v0 = await readFile(join(FIXTURE, 'expected.lp'), 'latin1')
    const ecg = v0.split('\n').filter(l => l.startsWith('ecg,')).length
    const vitals = v0.split('\n').filter(l => l.startsWith('vitals,')).length
    const tg = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: 'upgrade' }, { dataDir })
    try {
      await waitFor(async () => (await influx.count('upgrade', 'ecg')) >= ecg ? true : undefined, { timeoutMs: 30_000, intervalMs: 100, what: `${ecg} ecg points` })
      await waitFor(async () => tg.gw.spool.pendingBytes === 0 ? true : undefined, { timeoutMs: 30_000, intervalMs: 50, what: 'spool drained' })
      expect(await influx.count('upgrade', 'ecg')).toBe(ecg)
      expect(await influx.count('upgrade', 'vitals')).toBe(vitals)
      expect(await influx.count('upgrade', 'alert')).toBe(1)
    } finally {
      await tg.close()
    }
  })
})
