// The sink's worker writes each batch's line protocol into one buffer and reuses that buffer for
// a later batch once every post of the first has completed (issue 12, CPU per point). What
// InfluxDB receives must be exactly each batch's lines, also when a batch is held for a retry
// while later batches are prepared and stored. The bodies are checked byte for byte, which a
// real InfluxDB cannot show: a small fake server records them and fails one write on demand.
import { crc32 } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FrameRecordExpander, frameRecord } from '../streams/storage/frame-record.js'
import { SinkJobs } from '../streams/storage/sink-job.js'
import { SPOOL_RECORD_FRAME, SPOOL_RECORD_HEADER } from '../streams/storage/spool-records.js'
import { startFakeInflux, type FakeInflux } from '../testkit/fake-influx.js'
import { testFrame } from '../testkit/frames.js'

/** A batch of whole spool records (header as Spool.appendRecord writes it) and its expected lines. */
function batch (unit: string, firstSeq: number, frames: number): { bytes: Uint8Array, lines: string } {
  const expander = new FrameRecordExpander()
  const recs: Buffer[] = []
  let lines = ''
  for (let seq = firstSeq; seq < firstSeq + frames; seq++) {
    const r = frameRecord(unit, testFrame({ unit, seq }))
    r.writeUInt32LE(r.length - SPOOL_RECORD_HEADER, 0)
    r.writeDoubleLE(Date.now(), 8)
    r.writeUInt32LE((SPOOL_RECORD_FRAME << 28) | 127, 16)
    r.writeUInt32LE(crc32(r.subarray(8)), 4)
    recs.push(r)
    lines += expander.expand(r.subarray(SPOOL_RECORD_HEADER)).toString('latin1')
  }
  return { bytes: new Uint8Array(Buffer.concat(recs)), lines }
}

describe('sink jobs reuse their line buffers without mixing batches', () => {
  let fake: FakeInflux
  let failUnit: string | null = null
  beforeAll(async () => {
    fake = await startFakeInflux((_req, body) => failUnit !== null && body.includes(`unit=${failUnit},`) ? { status: 500, body: '{"error":"engine: cache full"}' } : undefined)
  })
  afterAll(async () => { await fake?.close() })

  it('posts exactly each batch, a retried one too, while later batches reuse stored ones\' buffers', async () => {
    const jobs = new SinkJobs({ url: fake.url, api: 'v1', db: 'buffers', timeoutMs: 10_000 })
    try {
      const a = batch('bu-a', 1, 40)
      const b = batch('bu-b', 1, 6)
      const c = batch('bu-c', 1, 25)
      const d = batch('bu-d', 1, 3)
      expect(await jobs.run({ id: 1, segment: 0, offset: 0, bytes: a.bytes })).toMatchObject({ ok: true, points: 40 * 127 })
      // b is refused for now: the worker keeps it (and its buffer) for the retry.
      failUnit = 'bu-b'
      expect(await jobs.run({ id: 2, segment: 0, offset: a.bytes.length, bytes: b.bytes })).toMatchObject({ ok: false, kind: 'retry' })
      failUnit = null
      // c takes a's buffer (a is stored); d a fresh or stored one, never b's.
      expect(await jobs.run({ id: 3, segment: 0, offset: 0, bytes: c.bytes })).toMatchObject({ ok: true, points: 25 * 127 })
      expect(await jobs.run({ id: 4, segment: 0, offset: 0, bytes: d.bytes })).toMatchObject({ ok: true, points: 3 * 127 })
      // The retry sends no bytes: the worker still holds b's line protocol, unchanged.
      expect(await jobs.run({ id: 2, segment: 0, offset: a.bytes.length })).toMatchObject({ ok: true, points: 6 * 127 })
      expect(fake.accepted).toEqual([a.lines, c.lines, d.lines, b.lines])
      expect(fake.writes.filter(w => w.status === 500).map(w => w.body)).toEqual([b.lines])
    } finally {
      jobs.close()
    }
  })
})
