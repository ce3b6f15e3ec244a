/**
 * What the engine knows about one unit: its latest reading of each sign (with its sample time),
 * the run state of each threshold rule, the NEWS2 state and history, and its open alerts by slot
 * (`kind/key`). Everything here is updated in place on the hot path.
 */
import type { StrokeFindings } from './messages.js'
import type { News2Band, News2Result, Reading } from './news2.js'
import type { RuleRun } from './rules.js'
import type { Alert } from './types.js'

/** An alert with the engine's bookkeeping (gateway-clock times, never sent to consumers). */
export interface Entry {
  alert: Alert
  /** Gateway time of the next escalation; NaN when none is due. */
  escalateAt: number
  /** Gateway time of the last value/message-only update sent (throttle). */
  lastEmitGw: number
  /** Gateway time the condition was last confirmed (device alarms expire from here). */
  touchedGw: number
  /** Gateway time it was cleared (retention of cleared alerts). */
  clearedGw: number
  /** Threshold alerts: the limit the value is (or last was) beyond. */
  side: 'low' | 'high' | null
  /** Stroke alerts: the findings, to re-render the message as the windows pass. */
  stroke: StrokeFindings | null
  /** Stroke alerts: reperfusion-window state last reported (see messages.strokeWindow). */
  window: number
}

/** One point of the NEWS2 trend. */
export interface News2Point {
  /** Sample time, Unix ms. */
  atMs: number
  total: number | null
  partialTotal: number
  complete: boolean
  band: News2Band | null
}

export class UnitState {
  encounter = ''
  bootId = ''
  /** Device time of the newest frame processed (captured_at_ms). */
  lastCapturedAt = -Infinity
  /** Gateway time of the last frame (or of start-up for restored units, or of 'online'). */
  lastSeenGw: number
  /** Latest reading per vital-sign field name. */
  readings: Record<string, Reading> = {}
  /** Run state per rule, by rule index. */
  runs: RuleRun[]
  /** Open alerts by slot `kind/key`. */
  readonly open = new Map<string, Entry>()
  news2: News2Result | null = null
  /** NEWS2 trigger level the open alert stands at (0 none, 1 single 3, 2 urgent, 3 emergency). */
  news2Level = 0
  /** Sample time a trigger first held while no alert was open (minimum duration). */
  news2Since = NaN
  /** Sample time the level first fell below news2Level (hysteresis). */
  news2DownSince = NaN
  history: News2Point[] = []

  constructor (readonly unit: string, ruleCount: number, nowGw: number) {
    this.lastSeenGw = nowGw
    this.runs = Array.from({ length: ruleCount }, () => ({ outSince: NaN, inSince: NaN }))
  }

  /** A new patient (encounter changed): nothing of the previous one may score the next. */
  resetPatient (): void {
    this.readings = {}
    for (const r of this.runs) { r.outSince = NaN; r.inSince = NaN }
    this.news2 = null
    this.news2Level = 0
    this.news2Since = NaN
    this.news2DownSince = NaN
    this.history = []
  }

  /**
   * Adds a NEWS2 result to the trend: a point per change, at most one per `stepMs` bucket (the
   * latest wins), and one per minute while unchanged; points older than `keepMs` are dropped.
   */
  recordNews2 (r: News2Result, atMs: number, keepMs: number, stepMs: number): void {
    const h = this.history
    const last = h[h.length - 1]
    const same = last !== undefined && last.partialTotal === r.partialTotal && last.complete === r.complete && last.band === r.band
    if (last !== undefined && atMs < last.atMs) return
    if (same && atMs - last.atMs < 60_000) return
    const point: News2Point = { atMs, total: r.total, partialTotal: r.partialTotal, complete: r.complete, band: r.band }
    if (last !== undefined && !same && Math.floor(last.atMs / stepMs) === Math.floor(atMs / stepMs) && h.length > 1) {
      h[h.length - 1] = point
    } else {
      h.push(point)
    }
    let drop = 0
    while (drop < h.length && h[drop]!.atMs < atMs - keepMs) drop++
    if (drop > 0) h.splice(0, drop)
  }
}
