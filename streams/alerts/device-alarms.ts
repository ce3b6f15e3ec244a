/**
 * Device alarms passed through (IEC 60601-1-8 priorities): onset, the device's "ended" (contract
 * v1.1), and expiry of medium/low alarms a device stopped repeating.
 */
import type { WireAlarm } from '../../decoders/schema.js'
import { slotOf } from './book.js'
import type { EngineCore } from './engine-core.js'
import { deviceAlarmMessage } from './messages.js'
import type { AlertPriority } from './types.js'
import type { Entry, UnitState } from './unit-state.js'

/** IEC 60601-1-8 priority of a DeviceAlarm (AlarmPriority 1/2/3); unspecified counts as medium. */
const ALARM_PRIORITY: readonly AlertPriority[] = ['medium', 'low', 'medium', 'high']

export function deviceAlarm (c: EngineCore, u: UnitState, a: WireAlarm, t: number, nowGw: number): void {
  const slot = slotOf('device_alarm', a.code)
  const open = u.open.get(slot)
  const endT = u.alarmEndT.get(a.code)
  // A late or resent report from before the condition ended is history, not a new onset.
  if (endT !== undefined && t <= endT) return
  if (a.ended === true) {
    // Contract v1.1: the device says the condition ended.
    u.alarmEndT.set(a.code, t)
    if (open !== undefined) c.book.clear(u, slot, open, t, nowGw)
    return
  }
  const priority = ALARM_PRIORITY[a.priority] ?? 'medium'
  const message = deviceAlarmMessage(a.code, a.text)
  if (open === undefined) {
    c.book.raise(u, 'device_alarm', a.code, slot, priority, message, null, t, nowGw)
  } else {
    open.touchedGw = nowGw
    // A report older than what the alert already shows (a resent or late frame: the device has
    // since escalated or changed it) is history: it keeps the alarm alive, never changes it. Else
    // a resend would downgrade a latched high alarm (IEC 60601-1-8: it stays until acknowledged),
    // let it time out unacknowledged, or withdraw an acknowledgement when the next live report
    // "raises" it again.
    if (t < open.alert.updatedAt) return
    c.book.update(open, priority, message, null, t, nowGw, true)
  }
}

/**
 * Clears a device alarm not repeated for deviceAlarmHoldMs: medium/low alarms time out; a high
 * one only once acknowledged (it latches until then). Returns whether it was due.
 */
export function expireDeviceAlarm (c: EngineCore, u: UnitState | undefined, e: Entry, nowMs: number): boolean {
  const a = e.alert
  if (a.kind !== 'device_alarm' || (a.priority === 'high' && a.acknowledgedAt === null) || nowMs - e.touchedGw < c.options.deviceAlarmHoldMs) return false
  if (u !== undefined) {
    u.alarmEndT.set(a.key, u.lastCapturedAt)
    c.book.clear(u, slotOf(a.kind, a.key), e, nowMs, nowMs)
  }
  return true
}
