// Attacks on seq ordering within a boot (frame-order.ts; docs/alerts.md "A device clock set back"),
// as a clinical safety reviewer: each replays frames through the real engine on an injected clock
// and checks that no alert is missed or delayed, and no false one raised.
import { describe, expect, it, onTestFinished } from 'vitest'
import { FrameDecoder } from '../decoders/index.js'
import { UnitFrameSource } from '../simulator/frame-source.js'
import { AlertEngine } from '../streams/alerts/index.js'
import { FrameOrder, REBOOT_QUIET_MS } from '../streams/alerts/frame-order.js'
import { frame, harness, NORMAL, T0, tempDir } from './alert-harness.js'

const S = 1000
const STEP = 180_000
const decoder = new FrameDecoder()

describe('attacks on seq ordering', () => {
  it('two devices on one unit (a monitor and a defibrillator, each its own boot, the defibrillator\'s clock 30 s behind) streaming at once: the defibrillator\'s 12-lead STEMI is still raised', async () => {
    const START = Date.UTC(2026, 0, 5, 9, 0, 0)
    const src = new UnitFrameSource({ unitId: 'amb-9', startMs: START, profile: 'stemi', seed: 7, stemi: 'inferior' })
    const engine = await AlertEngine.open({ dir: null, tickIntervalMs: 0, now: () => START })
    onTestFinished(async () => { await engine.close() })
    let raised = -1
    let i = 0
    engine.on('alert', e => { if (e.type === 'raised' && e.alert.kind === 'stemi' && e.alert.key === 'ecg' && raised < 0) raised = i })
    const first = decoder.decode(src.nextFrame().bytes, 'amb-9', START)
    const enc = first.encounterId
    // The monitor (boot "mon", clock right) streams vitals each second from before the
    // defibrillator, for the same encounter (the crew's patient).
    for (let k = 0; k < 5; k++) engine.onFrame(frame({ unit: 'amb-9', boot: 'mon', encounter: enc, seq: k + 1, t: START - 5 * S + k * S, numerics: NORMAL }), START - 5 * S + k * S)
    for (; i < 14 * 4; i++) {
      const gw = START + (i + 1) * 250
      const d = decoder.decode(src.nextFrame().bytes, 'amb-9', gw)
      engine.onFrame({ ...d, bootId: 'defib', capturedAtMs: d.capturedAtMs - 30 * S, interpretation: null }, gw)
      if (i % 4 === 3) engine.onFrame(frame({ unit: 'amb-9', boot: 'mon', encounter: enc, seq: 6 + (i >> 2), t: gw, numerics: NORMAL }), gw)
    }
    expect(raised).toBeGreaterThan(0)
  })

  it('a blood pressure taken while the link was down, after a clock step back during the outage, is evaluated when the backlog arrives after the live frames', async () => {
    // Frames 1-30 live (clock right); link down for frames 31-90, the clock set back 3 min at 60;
    // frame 91 on arrives live first, then the backlog 31-90. Frame 75 (in the backlog, after the
    // step) carries the only blood pressure: systolic 70 (< 80 high, NEWS2 ≤ 90 scores 3, RCP 2017).
    const run = async (step: number): Promise<string[]> => {
      const h = await harness()
      const deviceT = (k: number): number => T0 + k * S - (k >= 60 ? step : 0)
      const { nibp_systolic: _, ...noBp } = NORMAL
      const f = (k: number, gw: number): void => {
        h.clock.now = gw
        const numerics = k === 75 ? { ...noBp, nibp_systolic: 70 } : k === 1 ? NORMAL : noBp
        h.engine.onFrame(frame({ seq: k, t: deviceT(k), numerics }), gw)
        h.engine.tick(gw)
      }
      for (let k = 1; k <= 30; k++) f(k, T0 + k * S)
      f(91, T0 + 91 * S)
      for (let k = 31; k <= 90; k++) f(k, T0 + 91 * S + (k - 30) * 10)
      for (let k = 92; k <= 100; k++) f(k, T0 + k * S)
      return h.of('threshold', 'raised').map(e => `${e.alert.key} ${e.alert.raisedAt - T0}`)
    }
    const plain = await run(0)
    expect(plain.some(s => s.startsWith('nibp_systolic '))).toBe(true)
    expect(await run(STEP)).toEqual(plain)
  })

  it('NTP oscillating (set back 3 min every 20 s, 30 times: 90 min behind): the shift follows the real elapsed time, SpO2 falling at the end alerts as without the steps', async () => {
    const run = async (step: number): Promise<number | undefined> => {
      const h = await harness()
      let back = 0
      for (let k = 1; k <= 700; k++) {
        if (k % 20 === 0 && k <= 600) back += step
        const gw = T0 + k * S
        h.clock.now = gw
        h.engine.onFrame(frame({ seq: k, t: gw - back, numerics: k > 650 ? { ...NORMAL, spo2: 84 } : NORMAL }), gw)
        h.engine.tick(gw)
      }
      return h.of('threshold', 'raised').find(e => e.alert.key === 'spo2')?.alert.raisedAt
    }
    const plain = await run(0)
    const stepped = await run(STEP)
    expect(plain).toBeDefined()
    // raisedAt on the timeline: the gateway time of the frame, as without the steps (no drift).
    expect(stepped).toBe(plain)
  })

  it('firmware restarting seq at 1 without a new boot id (clock right): the frames after are new, SpO2 84 % alerts', async () => {
    const h = await harness()
    for (let k = 1; k <= 100; k++) { h.clock.now = T0 + k * S; h.engine.onFrame(frame({ seq: k, t: T0 + k * S, numerics: NORMAL }), T0 + k * S) }
    for (let k = 1; k <= 40; k++) {
      const gw = T0 + (100 + k) * S
      h.clock.now = gw
      h.engine.onFrame(frame({ seq: k, t: gw, numerics: { ...NORMAL, spo2: 84 } }), gw)
      h.engine.tick(gw)
    }
    expect(h.of('threshold', 'raised').map(e => e.alert.key)).toContain('spo2')
  })

  it('a seq jumping by 10^14 and seqs near 2^53 neither stop nor reorder the stream', () => {
    const o = new FrameOrder()
    const late: boolean[] = []
    const seqs = [1, 2, 3, 1e14, 1e14 + 1, 999_999_999_999_998, 999_999_999_999_999]
    seqs.forEach((s, k) => { o.place(frame({ seq: s, t: T0 + k * S, numerics: {} }), T0 + k * S); late.push(o.late) })
    // 16 digits: no longer compared by seq (not exact), ordered by capture time.
    o.place({ ...frame({ t: T0 + 10 * S, numerics: {} }), seq: '9007199254740993' }, T0 + 10 * S); late.push(o.late)
    o.place({ ...frame({ t: T0 + 11 * S, numerics: {} }), seq: '9007199254740992' }, T0 + 11 * S); late.push(o.late)
    expect(late).toEqual(seqs.map(() => false).concat([false, false]))
  })

  it('a fast reboot (new boot 1 s after the last frame, clock 3 min behind) withholds readings at most REBOOT_QUIET_MS after the old boot\'s last frame', () => {
    const o = new FrameOrder()
    for (let k = 1; k <= 10; k++) o.place(frame({ boot: 'a', seq: k, t: T0 + k * S, numerics: {} }), T0 + k * S)
    const lateAt: number[] = []
    for (let k = 11; k <= 20; k++) {
      o.place(frame({ boot: 'b', seq: k - 10, t: T0 + k * S - STEP, numerics: {} }), T0 + k * S)
      if (o.late) lateAt.push(k)
    }
    expect(Math.max(...lateAt) * S).toBeLessThan(10 * S + REBOOT_QUIET_MS)
  })
  it('a gateway restart while the link and the gateway were down 60 s after a step: the first live frame keeps the boot\'s shift, the redelivered backlog stays late, SpO2 80 % alerts as without the step', async () => {
    const run = async (step: number): Promise<string[]> => {
      const dir = await tempDir()
      const send = (engine: AlertEngine, k: number, gw: number, spo2: number): void => {
        engine.onFrame(frame({ seq: k, t: T0 + k * S - (k > 30 ? step : 0), numerics: { ...NORMAL, spo2 } }), gw)
        engine.tick(gw)
      }
      const a = await AlertEngine.open({ dir, tickIntervalMs: 0, now: () => T0 + 50 * S })
      for (let k = 1; k <= 50; k++) send(a, k, T0 + k * S, 97)
      await a.close()
      // Down from 51 to 110 s; the device spools 51-110 (SpO2 97) and sends live 111 (SpO2 80)
      // first, then the spool (redelivered QoS 1), then live again.
      const b = await AlertEngine.open({ dir, tickIntervalMs: 0, now: () => T0 + 111 * S })
      onTestFinished(async () => { await b.close() })
      const out: string[] = []
      b.on('alert', e => { if (e.type === 'raised' || e.type === 'cleared') out.push(`${e.type} ${e.alert.kind}/${e.alert.key} ${e.alert.raisedAt - T0}`) })
      send(b, 111, T0 + 111 * S, 80)
      for (let k = 51; k <= 110; k++) send(b, k, T0 + 111 * S + (k - 50) * 10, 97)
      for (let k = 112; k <= 150; k++) send(b, k, T0 + k * S, 80)
      return out
    }
    const plain = await run(0)
    expect(plain.some(s => s.startsWith('raised threshold/spo2 '))).toBe(true)
    expect(await run(STEP)).toEqual(plain)
  })
  it('a gateway restart mid-shift, the gateway down 60 s: a blood pressure in the first live frame after it is not replaced by an older one of the redelivered backlog', async () => {
    const run = async (step: number): Promise<string[]> => {
      const dir = await tempDir()
      const { nibp_systolic: _, ...noBp } = NORMAL
      const send = (engine: AlertEngine, k: number, gw: number, numerics: Record<string, number>): void => {
        engine.onFrame(frame({ seq: k, t: T0 + k * S - (k > 30 ? step : 0), numerics }), gw)
        engine.tick(gw)
      }
      const a = await AlertEngine.open({ dir, tickIntervalMs: 0, now: () => T0 + 50 * S })
      for (let k = 1; k <= 50; k++) send(a, k, T0 + k * S, k === 1 ? NORMAL : noBp)
      await a.close()
      // Spooled while the gateway was down: 51-110, a blood pressure of 125 at 100 s; the first
      // live frame, 111, has systolic 70 (< 80: high; NEWS2 ≤ 90 scores 3, RCP 2017) and arrives first.
      const b = await AlertEngine.open({ dir, tickIntervalMs: 0, now: () => T0 + 111 * S })
      onTestFinished(async () => { await b.close() })
      const out: string[] = []
      b.on('alert', e => { if (e.alert.kind === 'threshold') out.push(`${e.type} ${e.alert.key} ${e.alert.raisedAt - T0} ${(e.alert.clearedAt ?? null) === null ? '' : 'cleared'}`) })
      send(b, 111, T0 + 111 * S, { ...noBp, nibp_systolic: 70 })
      for (let k = 51; k <= 110; k++) send(b, k, T0 + 111 * S + (k - 50) * 10, k === 100 ? NORMAL : noBp)
      for (let k = 112; k <= 130; k++) send(b, k, T0 + k * S, noBp)
      return out
    }
    const plain = await run(0)
    expect(plain.some(s => s.startsWith('raised nibp_systolic 111000'))).toBe(true)
    expect(plain.some(s => s.startsWith('cleared'))).toBe(false)
    expect(await run(STEP)).toEqual(plain)
  })
  it('known limit: a restart with the clock behind during a link outage, the old boot\'s spool sent beside the new boot\'s live frames: the live frames are new once the spool is sent and REBOOT_QUIET_MS more', () => {
    const o = new FrameOrder()
    for (let k = 1; k <= 30; k++) o.place(frame({ boot: 'A', seq: k, t: T0 + k * S, numerics: {} }), T0 + k * S)
    // Link down 31-90 s; the device restarts (boot B) at 60 s with its clock 3 min behind. From
    // 91 s: A's spool 31-59 at 2 frames/s beside B's live frames, 1/s.
    let a = 31
    let spoolSentGw = 0
    const lateB: number[] = []
    for (let g = 91 * S; g < 130 * S; g += 500) {
      if (a <= 59) { o.place(frame({ boot: 'A', seq: a, t: T0 + a * S, numerics: {} }), T0 + g); a++; spoolSentGw = g }
      if (g % S === 0) { o.place(frame({ boot: 'B', seq: g / S - 60, t: T0 + g - STEP, numerics: {} }), T0 + g); if (o.late) lateB.push(g) }
    }
    expect(lateB[0]).toBe(91 * S)
    expect(Math.max(...lateB)).toBeLessThan(spoolSentGw + REBOOT_QUIET_MS)
    expect(Math.max(...lateB)).toBeGreaterThanOrEqual(spoolSentGw + REBOOT_QUIET_MS - S)
  })
})
