// A full disk under DATA_DIR (a real ENOSPC on a 4 MB tmpfs, far below MAX_SPOOL_BYTES): the
// gateway stops being ready, acknowledges nothing it could not keep, says why with a coded error
// and metrics, and takes frames again by itself once space returns. InfluxDB afterwards holds
// every acknowledged frame, exactly once, and nothing else.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startInfluxDB, type InfluxServer } from '../testkit/influxdb.js'
import { startTestGateway } from '../testkit/gateway.js'
import { testFrame } from '../testkit/frames.js'
import { readMetrics, waitForDrain } from '../testkit/stored.js'
import { mountTmpfs } from '../testkit/tmpfs.js'

let influx: InfluxServer
beforeAll(async () => { influx = await startInfluxDB() })
afterAll(async () => { await influx?.stop() })

/** Polls `check` until it holds: waits for a state the gateway reports, bounded. */
async function until (what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe('full disk under DATA_DIR', () => {
  it('is not ready while full, acknowledges nothing unkept, resumes by itself, and InfluxDB holds every acknowledged frame', async () => {
    const fs = await mountTmpfs(4 * 1024 * 1024)
    const cleanup: Array<() => Promise<void>> = [() => fs.unmount()]
    try {
      const db = 'diskfull'
      const tg = await startTestGateway({ influxUrl: influx.url, influxApi: 'v1', influxDb: db, spoolSegmentBytes: 64 * 1024 }, { dataDir: fs.dir })
      cleanup.push(() => tg.close())
      const token = await tg.addDevice('full-1')
      const post = async (seq: number): Promise<{ status: number, code?: string }> => {
        const res = await fetch(`${tg.httpUrl}/api/v1/units/full-1/telemetry`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-protobuf' },
          body: Buffer.from(testFrame({ unit: 'full-1', seq }))
        })
        const body = await res.json() as { code?: string }
        return { status: res.status, code: body.code }
      }
      const ready = async (): Promise<{ status: number, text: string }> => {
        const res = await fetch(`${tg.httpUrl}/readyz`)
        return { status: res.status, text: await res.text() }
      }
      expect((await ready()).status).toBe(200)

      const acked: number[] = []
      let seq = 1
      for (; seq <= 5; seq++) { expect((await post(seq)).status).toBe(200); acked.push(seq) }
      // Fill the disk, then keep sending until the gateway refuses.
      let refusal: { status: number, code?: string } | null = null
      while (refusal === null && seq < 500) {
        await fs.fill(0)
        const r = await post(seq)
        if (r.status === 200) acked.push(seq)
        else refusal = r
        seq++
      }
      expect(refusal).toEqual({ status: 503, code: 'AMB_ERR_DISK_FULL' })
      const r1 = await ready()
      expect(r1.status).toBe(503)
      expect(r1.text).toContain('AMB_ERR_DISK_FULL')
      // Still full: refused again, at once, and counted.
      expect(await post(seq++)).toEqual({ status: 503, code: 'AMB_ERR_DISK_FULL' })
      const m = await readMetrics(tg.httpUrl)
      expect(m.get('ambulink_spool_fault')).toBe(1)
      expect(m.get('ambulink_spool_refused_total{reason="AMB_ERR_DISK_FULL"}')).toBeGreaterThanOrEqual(2)
      expect(tg.logs()).toContain('AMB_ERR_DISK_FULL')

      // Space returns: the gateway is ready again without a restart, and takes frames.
      await fs.free()
      await until('/readyz 200 after space returned', async () => (await ready()).status === 200)
      for (let k = 0; k < 5; k++, seq++) { expect((await post(seq)).status).toBe(200); acked.push(seq) }
      expect((await readMetrics(tg.httpUrl)).get('ambulink_spool_fault')).toBe(0)

      await waitForDrain([tg.httpUrl], 30_000)
      // Every acknowledged frame is stored, exactly once (125 ECG instants and one vitals point
      // each), and no refused frame was stored.
      expect(await influx.count(db, 'vitals', 'heart_rate')).toBe(acked.length)
      expect(await influx.count(db, 'ecg', 'ii')).toBe(acked.length * 125)
    } finally {
      for (const c of cleanup.reverse()) await c()
    }
  }, 120_000)
})
