// A resend of an older frame reaching the alert engine (its first copy refused by the spool and
// forgotten, or evaluated before a restart, or arriving while the first copy was in flight: see
// docs/alerts.md, "Alerts before storage") must not change a device alarm the device has since
// escalated: found by an adversarial review of the alert priority path.
import { describe, expect, it } from 'vitest'
import { frame, harness, T0 } from './alert-harness.js'

const alarm = (priority: number): Array<{ code: string, priority: number, text: string }> => [{ code: 'VF', priority, text: 'Ventricular fibrillation' }]

describe('a resent older device-alarm report', () => {
  it('neither downgrades an escalated, acknowledged alarm nor withdraws its acknowledgement', async () => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0, alarms: alarm(2) }), T0) // medium
    h.engine.onFrame(frame({ t: T0 + 1000, alarms: alarm(3) }), T0 + 1000) // escalated to high
    const a = h.engine.openAlerts().find(x => x.kind === 'device_alarm')!
    expect(a.priority).toBe('high')
    h.engine.acknowledge(a.id, 'Dr A')
    const before = h.events.length
    h.engine.onFrame(frame({ t: T0, alarms: alarm(2) }), T0 + 2000) // the resend of the first frame
    h.engine.onFrame(frame({ t: T0 + 3000, alarms: alarm(3) }), T0 + 3000) // the next live report
    const after = h.engine.openAlerts().find(x => x.kind === 'device_alarm')!
    expect(after.priority).toBe('high')
    expect(after.acknowledgedBy).toBe('Dr A')
    expect(h.events.slice(before).map(e => e.type)).toEqual([])
  })

  it('keeps an unacknowledged high alarm latched: no downgrade, so it never times out unacknowledged', async () => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0, alarms: alarm(2) }), T0)
    h.engine.onFrame(frame({ t: T0 + 1000, alarms: alarm(3) }), T0 + 1000)
    h.engine.onFrame(frame({ t: T0, alarms: alarm(2) }), T0 + 2000) // the resend
    const open = h.engine.openAlerts().find(x => x.kind === 'device_alarm')!
    expect(open.priority).toBe('high')
    expect(open.acknowledgedAt).toBeNull()
  })

  it('a newer report with a lower priority still changes it (the device de-escalated)', async () => {
    const h = await harness()
    h.engine.onFrame(frame({ t: T0, alarms: alarm(3) }), T0)
    h.engine.onFrame(frame({ t: T0 + 1000, alarms: alarm(2) }), T0 + 1000)
    expect(h.engine.openAlerts().find(x => x.kind === 'device_alarm')!.priority).toBe('medium')
  })
})
