/**
 * AlertEvent → one InfluxDB line for the `alerts` measurement (DESIGN.md storage contract): tags
 * `unit`, `encounter` (omitted when ''), `kind`, `priority`, plus `key` (omitted when '') so that
 * two alerts of one kind raised at the same instant (HR and SpO2 thresholds from one frame) are
 * different series and never overwrite each other; fields `message`, `value` (omitted when null),
 * `event`, `id`, `escalations`, and `acknowledged_by` once acknowledged.
 *
 * Idempotent: the timestamp is a pure function of the event, never the time of conversion. It is
 * the event's own time in the alert (raisedAt, updatedAt, escalatedAt, acknowledgedAt or
 * clearedAt, in ms) times 1000, plus the event type's slot (0–4) in the microseconds: a replayed
 * event (spool replay after a crash, a re-append) writes the same point, while a raise and an
 * acknowledgement in the same millisecond stay two points.
 */
import type { AlertEvent, AlertEventType } from './types.js'

const SLOT: Readonly<Record<AlertEventType, number>> = { raised: 0, updated: 1, escalated: 2, acknowledged: 3, cleared: 4 }

/** The time an event happened, Unix ms (from the alert it carries). */
export function eventTimeMs (ev: AlertEvent): number {
  const a = ev.alert
  switch (ev.type) {
    case 'raised': return a.raisedAt
    case 'updated': return a.updatedAt
    case 'escalated': return a.escalatedAt ?? a.updatedAt
    case 'acknowledged': return a.acknowledgedAt ?? a.updatedAt
    case 'cleared': return a.clearedAt ?? a.updatedAt
  }
}

/** Point timestamp in µs: event ms × 1000 + the event type's slot. */
export function eventTimeUs (ev: AlertEvent): number {
  return Math.round(eventTimeMs(ev)) * 1000 + SLOT[ev.type]
}

/**
 * Tag values: unit and encounter match the decoder's tag-safe id pattern; kind and priority are
 * fixed words. A device alarm code is free text, so the `key` tag keeps only tag-safe characters
 * (others become '_'); the message carries the code verbatim.
 */
function tagSafe (s: string): string {
  return s.replace(/[^A-Za-z0-9_.:/@+-]/g, '_')
}

/** String field: escape `\` and `"`; line protocol has no newline inside a field, so use spaces. */
function str (s: string): string {
  return '"' + s.replace(/[\\"]/g, '\\$&').replace(/[\r\n]+/g, ' ') + '"'
}

/** One newline-terminated line. */
export function alertEventToLine (ev: AlertEvent): string {
  const a = ev.alert
  let line = 'alerts,unit=' + a.unit
  if (a.encounter !== '') line += ',encounter=' + a.encounter
  line += ',kind=' + a.kind
  if (a.key !== '') line += ',key=' + tagSafe(a.key)
  line += ',priority=' + a.priority
  line += ' event=' + str(ev.type) + ',id=' + str(a.id) + ',message=' + str(a.message)
  if (a.value !== null && Number.isFinite(a.value)) line += ',value=' + String(a.value)
  line += ',escalations=' + String(a.escalations) + 'i'
  if (a.acknowledgedBy !== null) line += ',acknowledged_by=' + str(a.acknowledgedBy)
  return line + ' ' + String(eventTimeUs(ev)) + '\n'
}
