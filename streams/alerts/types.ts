/**
 * The alert contract shared by the alert engine (producer) and its consumers: InfluxDB
 * `alerts` measurement, MQTT `alerts/{unit}` (JSON), the live dashboard and the dataspace feed.
 */

/** What raised the alert. Stable strings: stored as the `kind` tag and matched by clients. */
export type AlertKind =
  | 'threshold'        // a vital sign outside its limits for its minimum duration (see `sign`)
  | 'news2'            // NEWS2 aggregate trigger (urgent ≥ 5, emergency ≥ 7, or a single 3)
  | 'device_alarm'     // passed through from the device (IEC 60601-1-8 priority)
  | 'stemi'            // paramedic suspects STEMI: cath-lab pre-notification
  | 'stroke'           // LAMS ≥ 4 (suspected LVO) or FAST positive: stroke-team pre-notification
  | 'signal_loss'      // no frame for signalLossMs from a unit with an active encounter, a degraded link, or its will
  | 'stream_loss'      // one stream stops while the unit's others continue: key 'ecg' (lead-off) or a numeric field (probe-off)

/** IEC 60601-1-8 style priority; `high` must be impossible to miss on the dashboard. */
export type AlertPriority = 'low' | 'medium' | 'high'

export interface Alert {
  /** Stable id (unique per raised alert; an update keeps it). */
  id: string
  unit: string
  /** Pseudonymous encounter id ('' before assignment). */
  encounter: string
  kind: AlertKind
  /** Sub-key that makes (unit, kind, key) the dedupe identity, e.g. the sign for thresholds or the device alarm code. '' when the kind has one alert per unit. */
  key: string
  priority: AlertPriority
  /** Human-readable, without patient identifiers. */
  message: string
  /** The value that triggered or last updated it (NEWS2 total, the sign's value, LAMS…); null when none. */
  value: number | null
  /** Unix ms. */
  raisedAt: number
  /** Last change (value/priority/message), Unix ms. */
  updatedAt: number
  /** Unix ms when the condition ended; null while open. */
  clearedAt: number | null
  /** Acknowledgement by a named clinician. */
  acknowledgedAt: number | null
  acknowledgedBy: string | null
  /**
   * Times an acknowledgement was withdrawn: by a worsening (priority or NEWS2 response band rose)
   * or because the silence period ran out while the condition persisted (IEC 60601-1-8 "audio
   * paused" is time-limited). A consumer sounds again whenever this grows.
   */
  realarms: number
  /** Sample time (Unix ms) of `value`; null when none. The age of the reading is now - valueAt. */
  valueAt: number | null
  /** Times it was escalated because it stayed unacknowledged at high priority. */
  escalations: number
  /** Unix ms of the latest escalation; null before the first. */
  escalatedAt: number | null
}

/** What happened to an alert. Consumers receive the whole alert after the change. */
export type AlertEventType = 'raised' | 'updated' | 'escalated' | 'acknowledged' | 'cleared'

export interface AlertEvent {
  type: AlertEventType
  alert: Alert
}
