// Team views (which alerts each team has in its face), the dashboard journal (assignments and
// saved views survive a restart, a torn last line loses nothing else), the admin's default view,
// and the demo's patient mix.
import { execFile } from 'node:child_process'
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { CredentialStore, addUser } from '../gateway/credentials.js'
import { DashboardJournal, journalPath } from '../gateway/dashboard/journal.js'
import { composeFleet, DEMO_PATIENT_MIX } from '../simulator/patient-mix.js'
import { alertInView, parseViewSpec, unitInView, type Alert, type ViewSpec } from '../streams/live/protocol.js'

function alert (kind: string, over: Partial<Alert> = {}): Alert {
  return {
    id: `${kind}-1`, unit: 'U1', encounter: 'E1', kind: kind as Alert['kind'], key: '', priority: 'high', message: 'm', value: null,
    raisedAt: 1, updatedAt: 1, clearedAt: null, acknowledgedAt: null, acknowledgedBy: null, escalations: 0, escalatedAt: null, realarms: 0, valueAt: null, ...over
  }
}
const plain = { cardiac: false, stroke: false }
const cardiac = { cardiac: true, stroke: false }
const strokePt = { cardiac: false, stroke: true }

describe('team views', () => {
  const ED: ViewSpec = { id: 'ed' }
  const CATH: ViewSpec = { id: 'cath' }
  const STROKE: ViewSpec = { id: 'stroke' }
  it.each([
    // [alert, unit context, ED, cath lab, stroke unit]
    [alert('stemi'), cardiac, true, true, false],
    [alert('stemi_device_interpretation'), plain, true, true, false], // a future STEMI kind
    [alert('stroke'), strokePt, true, false, true],
    [alert('news2'), cardiac, true, true, false],
    [alert('news2'), plain, true, false, false],
    [alert('news2'), strokePt, true, false, false],
    [alert('device_alarm', { key: 'VF' }), plain, true, true, false],
    [alert('device_alarm', { key: 'HR_HIGH' }), plain, true, true, false],
    [alert('device_alarm', { key: 'SPO2_LOW' }), plain, true, false, false],
    [alert('device_alarm', { key: 'SPO2_LOW' }), cardiac, true, true, false],
    [alert('threshold', { key: 'heart_rate' }), plain, true, true, false],
    [alert('threshold', { key: 'spo2' }), plain, true, false, false],
    [alert('signal_loss'), cardiac, true, true, false],
    [alert('stream_loss'), plain, true, false, false], // unknown kind: the ED always shows it
    [alert('stream_loss'), cardiac, true, true, false]
  ] as const)('%o with %o: ED %s, cath %s, stroke %s', (a, ctx, ed, cath, stroke) => {
    expect(alertInView(a, ED, ctx)).toBe(ed)
    expect(alertInView(a, CATH, ctx)).toBe(cath)
    expect(alertInView(a, STROKE, ctx)).toBe(stroke)
  })

  it('custom: an exclusion list (kinds added later show), a lowest priority, a unit list', () => {
    const v: ViewSpec = { id: 'custom', excludeKinds: ['stroke'], minPriority: 'medium', units: ['U1', 'U2'] }
    expect(alertInView(alert('stroke'), v, plain)).toBe(false)
    expect(alertInView(alert('stemi'), v, plain)).toBe(true)
    expect(alertInView(alert('brand_new_kind'), v, plain)).toBe(true)
    expect(alertInView(alert('stemi', { priority: 'low' }), v, plain)).toBe(false)
    expect(alertInView(alert('stemi', { unit: 'U3' }), v, plain)).toBe(false)
    expect(unitInView('U3', v, plain)).toBe(false)
    expect(unitInView('U3', { id: 'custom' }, plain)).toBe(true)
    expect(unitInView('U3', CATH, cardiac)).toBe(true)
    expect(unitInView('U3', CATH, strokePt)).toBe(false)
  })

  it('a saved view is validated: unknown ids, extra fields, bad kinds and unit ids are refused', () => {
    expect(parseViewSpec({ id: 'cath' })).toEqual({ id: 'cath' })
    expect(parseViewSpec({ id: 'custom', excludeKinds: ['news2'], minPriority: 'high', units: ['AMB-01'] })).toEqual({ id: 'custom', excludeKinds: ['news2'], minPriority: 'high', units: ['AMB-01'] })
    for (const bad of [null, [], { id: 'icu' }, { id: 'cath', units: [] }, { id: 'custom', excludeKinds: ['<b>'] }, { id: 'custom', minPriority: 'urgent' },
      { id: 'custom', units: ['a b'] }, { id: 'custom', extra: 1 }, { id: 'custom', units: Array.from({ length: 501 }, (_, i) => `U${i}`) }]) {
      expect(parseViewSpec(bad), JSON.stringify(bad)).toBeNull()
    }
  })
})

describe('dashboard journal', () => {
  const dirs: string[] = []
  afterEach(async () => { for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true }) })

  it('assignments and saved views survive a restart; a torn last line is skipped, nothing else lost', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ambulink-journal-'))
    dirs.push(dir)
    const j = await DashboardJournal.open(dir)
    await j.append({ type: 'assign', assignment: { unit: 'U1', encounter: 'E1', action: 'cath_lab_activated', by: 'alice', at: 10 } })
    await j.append({ type: 'view', user: 'alice', view: { id: 'stroke' }, at: 11 })
    await j.append({ type: 'assign', assignment: { unit: 'U1', encounter: 'E1', action: 'handed_over', by: 'bob', at: 12 } })
    await j.close()
    await j.close() // safe twice
    await appendFile(journalPath(dir), '{"type":"assign","assignment":{"unit":"U2"') // crash mid-append
    const k = await DashboardJournal.open(dir)
    expect(k.skipped).toBe(1)
    expect(k.assignments.get('U1')).toEqual({ unit: 'U1', encounter: 'E1', action: 'handed_over', by: 'bob', at: 12 })
    expect(k.views.get('alice')).toEqual({ id: 'stroke' })
    await k.append({ type: 'view', user: 'alice', view: null, at: 13 }) // back to the default
    await k.close()
    const l = await DashboardJournal.open(dir)
    expect(l.views.has('alice')).toBe(false)
    expect(l.skipped).toBe(1) // the torn line stays skipped; the record after it starts on its own line
    await l.close()
    const lines = (await readFile(journalPath(dir), 'utf8')).trim().split('\n')
    expect(lines).toHaveLength(5)
  })

  it('an admin sets a user\'s default view (user add --view); an unknown view is refused', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ambulink-view-'))
    dirs.push(dir)
    await addUser(dir, 'carl', 'clinician', 'cath')
    await addUser(dir, 'edna', 'clinician')
    await expect(addUser(dir, 'x', 'clinician', 'icu' as 'cath')).rejects.toMatchObject({ code: 'AMB_ERR_DASHBOARD_BAD_REQUEST' })
    // The CLI: `user add --view`, and an unknown view refused with exit 2.
    const cli = (args: string[]): Promise<{ code: number, stderr: string }> => new Promise(resolve => {
      execFile(process.execPath, ['bin/ambulink.js', ...args], { env: { ...process.env, DATA_DIR: dir } }, (err, _out, stderr) => {
        resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? 1, stderr })
      })
    })
    expect((await cli(['user', 'add', 'sam', '--role', 'clinician', '--view', 'stroke'])).code).toBe(0)
    const refused = await cli(['user', 'add', 'sue', '--role', 'clinician', '--view', 'icu'])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain('view must be one of ed, cath, stroke')
    const store = await CredentialStore.open(dir, 0)
    expect(store.defaultView('sam')).toBe('stroke')
    expect(store.has('sue')).toBe(false)
    expect(store.defaultView('carl')).toBe('cath')
    expect(store.defaultView('edna')).toBeUndefined()
    store.close()
  })
})

describe('demo patient mix', () => {
  it('mostly ordinary patients; STEMI, stroke and deterioration at the documented rates, one of each from 4 units', () => {
    const f = composeFleet(100, 7)
    const n = (p: string): number => f.filter(x => x === p).length
    expect(f).toHaveLength(100)
    expect(n('stemi')).toBe(Math.round(100 * DEMO_PATIENT_MIX.stemi))
    expect(n('stroke')).toBe(Math.round(100 * DEMO_PATIENT_MIX.stroke))
    expect(n('deteriorating')).toBe(Math.round(100 * DEMO_PATIENT_MIX.deteriorating))
    expect(n('healthy')).toBeGreaterThan(80)
    const small = composeFleet(5, 1)
    for (const p of ['stemi', 'stroke', 'deteriorating', 'healthy']) expect(small).toContain(p)
    expect(composeFleet(100, 7)).toEqual(f) // same seed, same fleet
    expect(composeFleet(100, 8)).not.toEqual(f)
  })
})
