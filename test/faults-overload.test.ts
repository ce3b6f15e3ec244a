// Overload at the spool's bound (issue #3, item 3): with a tiny MAX_SPOOL_BYTES and no InfluxDB
// to drain into, the gateway acknowledges frames until the spool is full, then refuses the next
// one without a PUBACK (the device is disconnected, with the reason logged), keeps refusing
// after the device reconnects, and every frame that was acknowledged is in the spool — the
// store of record — exactly once. The RSS-under-2×-load measurement is `loadtest/overload.ts`.
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { describe, expect, it } from 'vitest'
import { FrameRecordExpander, Spool } from '../streams/index.js'
import { T0, testFrame } from '../testkit/frames.js'
import { startTestGateway } from '../testkit/gateway.js'

/** Publishes seq 1.. one at a time until the connection drops; returns the acknowledged seqs. */
async function publishUntilRefused (c: MqttClient, unit: string, from: number, max: number): Promise<{ acked: number[], refusedSeq: number | null }> {
  const acked: number[] = []
  let closed = false
  c.once('close', () => { closed = true })
  for (let seq = from; seq < from + max; seq++) {
    const ok = await new Promise<boolean>(resolve => {
      const onClose = (): void => { resolve(false) }
      c.once('close', onClose)
      c.publish(`units/${unit}/telemetry`, Buffer.from(testFrame({ unit, seq })), { qos: 1 }, err => {
        c.off('close', onClose)
        resolve(err === undefined || err === null)
      })
    })
    if (!ok || closed) return { acked, refusedSeq: seq }
    acked.push(seq)
  }
  return { acked, refusedSeq: null }
}

describe('spool at its bound', () => {
  it('refuses the frame that does not fit (no PUBACK, device disconnected, reason logged) and keeps every acknowledged one', async () => {
    const tg = await startTestGateway({ maxSpoolBytes: 256 * 1024, spoolSegmentBytes: 32 * 1024 })
    try {
      const unit = 'ovl-1'
      const token = await tg.addDevice(unit)
      const opts = { username: unit, password: token, clientId: unit, reconnectPeriod: 0, clean: true }
      const c1 = await mqtt.connectAsync(tg.mqttUrl, opts)
      const first = await publishUntilRefused(c1, unit, 1, 200)
      await c1.endAsync(true)
      // The spool keeps the frame itself (~1.4 KB here): about 180 fit in 256 KiB, then the refusal.
      expect(first.acked.length).toBeGreaterThan(10)
      expect(first.refusedSeq).toBe(first.acked.length + 1)
      expect(tg.logs()).toMatch(/AMB_ERR_SPOOL_FULL.*frame not spooled; disconnecting device|frame not spooled; disconnecting device.*AMB_ERR_SPOOL_FULL/)
      // The device comes back and resends: still no room, still no PUBACK.
      const c2 = await mqtt.connectAsync(tg.mqttUrl, opts)
      const again = await publishUntilRefused(c2, unit, first.refusedSeq!, 5)
      await c2.endAsync(true)
      expect(again.acked).toEqual([])
      const ready = await fetch(`${tg.httpUrl}/readyz`)
      expect(ready.status).toBe(503)

      await tg.stop()
      // The spool holds exactly the acknowledged frames: one vitals point each, at its seq's time.
      const spool = await Spool.open({ dir: join(tg.dataDir, 'spool'), maxSpoolBytes: 256 * 1024, expandFrame: p => new FrameRecordExpander().expand(p) })
      try {
        let text = ''
        for (let b = await spool.read(1 << 20); b !== null; b = await spool.read(1 << 20)) text += b.data.toString()
        const lines = text.split('\n')
        const seqs = lines.filter(l => l.startsWith(`vitals,unit=${unit}`)).map(l => (Number(l.slice(l.lastIndexOf(' ') + 1)) / 1000 - T0) / 250)
        expect(seqs).toEqual(first.acked)
        expect(lines.filter(l => l.startsWith(`ecg,unit=${unit}`)).length).toBe(first.acked.length * 125)
      } finally {
        await spool.close()
      }
    } finally {
      await tg.close()
    }
  })
})
