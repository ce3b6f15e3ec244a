/**
 * What the engine knows about one unit: its latest reading of each sign (with its sample time),
 * the run state of each threshold rule, the NEWS2 state and history, and its open alerts by slot
 * (`kind/key`). Everything here is updated in place on the hot path.
 */
import { FrameOrder } from './frame-order.js'
import { PastEncounters } from './past-encounters.js'
import type { StrokeFindings } from './messages.js'
import type { News2Band, News2Result, Reading } from './news2.js'
import { ruleWindow, type ThresholdRule } from './rules.js'
import { StateWindow } from './window.js'
import type { Alert } from './types.js'

/** An alert with the engine's bookkeeping (gateway-clock times, never sent to consumers). */
export interface Entry {
  alert: Alert
  /** Gateway time of the next escalation; NaN when none is due. */
  escalateAt: number
  /** Gateway time an acknowledgement's silence ends (the alert alarms again if still open); NaN when not silenced. */
  ackUntil: number
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
  /** The unit's encounters before this one: a late frame of one of them is the previous patient's. */
  readonly pastEncounters = new PastEncounters()
  bootId = ''
  /** Which frames are new (by seq within a boot) and each one's time on the unit's timeline (frame-order.ts). */
  readonly order = new FrameOrder()
  /**
   * Sample time of the newest frame processed: its captured_at_ms on the unit's timeline (the
   * device clock, plus the shift frame-order.ts adds after the clock was set back).
   */
  lastCapturedAt = -Infinity
  /** Gateway time of the last frame (or of start-up for restored units, or of 'online'). */
  lastSeenGw: number
  /** Latest reading per vital-sign field name. */
  readings: Record<string, Reading> = {}
  /** Persistence window per rule, by rule index. */
  readonly windows: StateWindow[]
  /** NEWS2 level (state = level + 1) per second, for raising and stepping down. */
  readonly news2Window: StateWindow
  /** Open alerts by slot `kind/key`. */
  readonly open = new Map<string, Entry>()
  news2: News2Result | null = null
  /** NEWS2 trigger level the open alert stands at (0 none, 1 single 3, 2 urgent, 3 emergency). */
  news2Level = 0
  history: News2Point[] = []
  /** The crew's findings so far (an assessment field left out of a frame keeps its value). */
  stemi = false
  lamsScore = 0
  fastPositive = false
  lastKnownWellMs = 0
  /** From the assessment; null until sent. Under 16: NEWS2 is not applied (RCP 2017). */
  ageYears: number | null = null
  /** SpO2 scale for NEWS2, set by a clinician for the encounter. */
  spo2Scale: 1 | 2 = 1
  /** Expected arrival (Unix ms) from the route, or null. */
  etaMs: number | null = null
  /** Link: gateway time since which no gap longer than the gap limit occurred. */
  steadySinceGw: number
  /** Link: recent gaps (gateway end time, length ms), oldest first. */
  gaps: Array<{ atGw: number, ms: number }> = []
  /** Gateway time of the last frame with ECG; -Infinity when none in this encounter. */
  lastEcgGw = -Infinity
  /** Device time where the newest ECG received ends: a late frame's older ECG is not "ECG present". */
  latestEcgEndT = -Infinity
  /** Newest numeric sample time (any sign): other numerics continuing while one stops = probe off. */
  latestNumericT = -Infinity
  /** Device alarms: sample time each code last ended or cleared (a resent onset older than that is history). */
  readonly alarmEndT = new Map<string, number>()
  /** Sample time of the newest assessment applied (an older one, resent, changes nothing). */
  assessmentT = -Infinity
  /** Gateway time of the last durable snapshot, and whether state changed since. */
  savedGw = -Infinity
  dirty = false

  constructor (readonly unit: string, rules: readonly ThresholdRule[], nowGw: number, news2RaiseMs: number, news2ClearMs: number) {
    this.lastSeenGw = nowGw
    this.steadySinceGw = nowGw
    this.windows = rules.map(ruleWindow)
    this.news2Window = new StateWindow(Math.max(1, Math.ceil(news2RaiseMs / 1000)), Math.max(1, Math.ceil(news2ClearMs / 1000)), 5)
  }

  /** A new patient (encounter changed): nothing of the previous one may score the next. */
  resetPatient (): void {
    this.readings = {}
    for (const w of this.windows) w.reset()
    this.news2Window.reset()
    this.news2 = null
    this.news2Level = 0
    this.history = []
    this.stemi = false
    this.lamsScore = 0
    this.fastPositive = false
    this.lastKnownWellMs = 0
    this.ageYears = null
    this.spo2Scale = 1
    this.etaMs = null
    this.lastEcgGw = -Infinity
    this.latestEcgEndT = -Infinity
    this.latestNumericT = -Infinity
    this.alarmEndT.clear()
    this.assessmentT = -Infinity
    this.dirty = true
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
