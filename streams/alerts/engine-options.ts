/**
 * The alert engine's options and their defaults (the one table; gateway/config.ts maps the
 * operator's settings onto it).
 */
import type { HospitalSite } from './eta.js'
import { NEWS2_STALENESS_DEFAULTS, type News2Staleness } from './news2.js'
import { DEFAULT_RULES, type ThresholdRule } from './rules.js'
import type { AlertStateStore } from './state-store.js'
import type { AlertPriority } from './types.js'

export interface AlertEngineOptions {
  /** Folder of the journal (DATA_DIR/alerts); null keeps alerts in memory only. */
  dir: string | null
  rules: readonly ThresholdRule[]
  /** NEWS2 staleness per parameter, ms. */
  news2Staleness: News2Staleness
  /** NEWS2 raise window (sample time, ms): a trigger level present for ≥ 70 % of it raises (artefact filter). */
  news2MinDurationMs: number
  /** NEWS2 clear window (sample time, ms): ≥ 90 % of it below the alert's level steps down or clears. */
  news2ClearMs: number
  /** No frame for this long (gateway ms) from a unit with an active encounter: signal loss. */
  signalLossMs: number
  /** A gap between frames longer than this (gateway ms) counts as a gap of the link. */
  linkGapMs: number
  /** This many gaps within linkWindowMs raise signal loss (degraded link) before any long silence. */
  linkDegradedGaps: number
  linkWindowMs: number
  /** Signal loss clears only once the link has run this long without a gap (gateway ms). */
  linkSteadyMs: number
  /** One stream (ECG, or a continuous numeric) absent this long while others continue: stream loss (ms). */
  streamLossMs: number
  /** A high-priority alert unacknowledged this long (ms) escalates, and again every such period. */
  escalateAfterMs: number
  /**
   * An acknowledgement silences an alert whose condition persists for this long (ms, per
   * priority), then it alarms again (IEC 60601-1-8 "audio paused" is time-limited).
   */
  ackSilenceMs: Readonly<Record<AlertPriority, number>>
  /**
   * A medium or low device alarm not repeated for this long (gateway ms) clears (devices report
   * onsets). A high one stays until the device says it ended, or until acknowledged and then not
   * repeated for this long.
   */
  deviceAlarmHoldMs: number
  /** Durable per-unit state (roster, readings); default: a journal in `dir` (none when dir is null). */
  stateStore: AlertStateStore | null
  /** How often a changed unit's state is saved (gateway ms). */
  snapshotIntervalMs: number
  /** Least time (gateway ms) between `updated` events that change only value or message; priority changes go out at once. */
  updateIntervalMs: number
  /** Cleared alerts stay retrievable (and in the journal) this long, ms. */
  retainClearedMs: number
  /** NEWS2 trend kept per unit, ms, and its resolution. */
  news2HistoryMs: number
  news2HistoryStepMs: number
  /** Journal size that triggers compaction, bytes. */
  compactBytes: number
  /** Period of the timer driving tick(), ms; 0 = no timer (tests call tick). */
  tickIntervalMs: number
  /**
   * The receiving hospital: with it, each frame's position gives the unit's expected arrival, and
   * the stroke alert shows the time left in each window at arrival. null: no ETA from positions.
   */
  hospital: HospitalSite | null
  /** Gateway clock. */
  now: () => number
  /** Journal failures and listener exceptions; the engine keeps running. */
  onError: (err: Error) => void
}

export const ALERT_ENGINE_DEFAULTS = Object.freeze({
  dir: null,
  rules: DEFAULT_RULES,
  news2Staleness: NEWS2_STALENESS_DEFAULTS,
  news2MinDurationMs: 10_000,
  news2ClearMs: 30_000,
  // Technical alarm conditions (IEC 60601-1-8 classes signal and lead loss as technical alarms and
  // leaves their delay to the manufacturer): 10 s, within the 10–15 s alarm delays shown to cut
  // false alarms without missing events (Welch J, Biomed Instrum Technol 2011), as the raise windows.
  signalLossMs: 10_000,
  linkGapMs: 5_000,
  linkDegradedGaps: 3,
  linkWindowMs: 120_000,
  linkSteadyMs: 60_000,
  // Lead or probe off (a technical alarm condition, IEC 60601-1-8): the same 10 s delay (Welch 2011).
  streamLossMs: 10_000,
  escalateAfterMs: 60_000,
  // IEC 60601-1-8 leaves the audio-paused interval to the manufacturer; 2 min for high priority
  // is the common monitor default and matches the 60 s escalation: a silenced high alert whose
  // condition persists comes back before a second escalation period passes unnoticed.
  ackSilenceMs: Object.freeze({ high: 120_000, medium: 300_000, low: 900_000 }),
  deviceAlarmHoldMs: 60_000,
  stateStore: null,
  snapshotIntervalMs: 5_000,
  updateIntervalMs: 10_000,
  retainClearedMs: 3_600_000,
  news2HistoryMs: 30 * 60_000,
  news2HistoryStepMs: 5_000,
  compactBytes: 8 * 1024 * 1024,
  tickIntervalMs: 1_000,
  hospital: null
})
