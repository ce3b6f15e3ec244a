// The ST analysis runs at each unit's own phase (issue 12, goal 2): units whose tracings start
// together are no longer all analysed in the same 250 ms (100 of them blocked the gateway's event
// loop for 100+ ms every 10 s), and each unit is still analysed on its last 10 s at least every
// 10 s — the first analysis as soon as 10 s are in, never later than before. Sample time is the
// clock here (device captured_at), so the frames drive it: no timers, no sleeps.
import { describe, expect, it } from 'vitest'
import { FrameDecoder } from '../decoders/index.js'
import { UnitFrameSource } from '../simulator/frame-source.js'
import { EcgStemiWatch, phaseOf } from '../streams/alerts/ecg-stemi.js'

const START = Date.UTC(2026, 0, 5, 9, 0, 0)
const WINDOW_MS = 10_000
const FRAME_MS = 250
const decoder = new FrameDecoder()

/** Device times (ms after START) at the end of each analysed 10 s, streaming `seconds` of 250 ms frames; frames in `drop` are never sent. */
function analyses (unit: string, seconds: number, drop: ReadonlySet<number> = new Set()): number[] {
  const watch = new EcgStemiWatch(null, err => { throw err })
  const src = new UnitFrameSource({ unitId: unit, startMs: START, profile: 'healthy', seed: 3 })
  const out: number[] = []
  for (let i = 0; i < seconds * 1000 / FRAME_MS; i++) {
    const bytes = src.nextFrame().bytes
    if (drop.has(i)) continue
    watch.onFrame(decoder.decode(bytes, unit, START + (i + 1) * FRAME_MS))
    const at = watch.lastAnalysisEndMs(unit)
    if (at !== null && at - START !== out.at(-1)) out.push(at - START)
  }
  return out
}

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `amb-${String(i + 1).padStart(4, '0')}`)
/** The 250 ms slot (of 40 in 10 s) a device time falls in. */
const slot = (ms: number): number => Math.floor((((ms % WINDOW_MS) + WINDOW_MS) % WINDOW_MS) / FRAME_MS)

describe('ST analysis phase', () => {
  it('analyses a unit as soon as 10 s are in, then at its phase, at least every 10 s', () => {
    for (const unit of ids(8)) {
      const at = analyses(unit, 45)
      expect(at[0], unit).toBe(WINDOW_MS)
      const gaps = at.slice(1).map((t, i) => t - at[i]!)
      for (const g of gaps) {
        expect(g, `${unit}: ${at.join(', ')}`).toBeGreaterThan(0)
        expect(g, `${unit}: ${at.join(', ')}`).toBeLessThanOrEqual(WINDOW_MS)
      }
      // From the second analysis on, exactly every 10 s (as before), and at the unit's phase.
      for (const g of gaps.slice(1)) expect(g, unit).toBe(WINDOW_MS)
      expect(at.length, unit).toBeGreaterThanOrEqual(4)
      expect(slot(at[1]! + phaseOf(unit) * WINDOW_MS), unit).toBe(0)
    }
  })

  it('spreads units that started together over the 10 s', () => {
    const second = ids(8).map(unit => slot(analyses(unit, 21)[1]!))
    expect(new Set(second).size).toBeGreaterThanOrEqual(5)
    // 100 units switched on at once: at most 5 analyses in any 250 ms (was 100 in one).
    const perSlot = new Array<number>(40).fill(0)
    for (const unit of ids(100)) {
      const k = Math.floor(phaseOf(unit) * 40)
      perSlot[k] = perSlot[k]! + 1
    }
    expect(Math.max(...perSlot)).toBeLessThanOrEqual(5)
  })

  it('a broken tracing starts its 10 s again: first analysis 10 s after the gap, then its phase again', () => {
    const unit = 'amb-0003'
    // Frames 60–63 (15–16 s) never arrive: the tracing restarts at 16 s.
    const at = analyses(unit, 50, new Set([60, 61, 62, 63]))
    expect(at[0]).toBe(WINDOW_MS)
    const restarted = at.filter(t => t > 16_000)
    expect(restarted[0]).toBe(16_000 + WINDOW_MS)
    const gaps = restarted.slice(1).map((t, i) => t - restarted[i]!)
    for (const g of gaps) expect(g).toBeLessThanOrEqual(WINDOW_MS)
    expect(slot(restarted[1]! - 16_000 + phaseOf(unit) * WINDOW_MS)).toBe(0)
  })
})
