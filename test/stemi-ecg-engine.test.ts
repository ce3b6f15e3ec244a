// STEMI from the ECG through the real alert engine: the simulator's 12-lead monitor (its
// interpretation, field 11, and its 500 Hz waveform) raises a high-priority `stemi` alert with
// key `ecg` naming the leads and territory, beside (not instead of) the crew's suspicion; the
// gateway's own measurement raises it alone too; a healthy patient raises nothing; LBBB/paced
// says "cannot be assessed automatically"; the 10 s 12-lead snapshot is kept durably (0600).
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { encodeFrame, FrameDecoder, type Frame } from '../decoders/index.js'
import { UnitFrameSource } from '../simulator/frame-source.js'
import type { StemiKind } from '../simulator/ecg.js'
import { AlertEngine, type AlertEvent } from '../streams/alerts/index.js'

const START = Date.UTC(2026, 0, 5, 9, 0, 0)
const decoder = new FrameDecoder()

async function engineIn (dir: string | null): Promise<{ engine: AlertEngine, events: AlertEvent[] }> {
  const engine = await AlertEngine.open({ dir, tickIntervalMs: 0, now: () => START })
  onTestFinished(async () => { await engine.close() })
  const events: AlertEvent[] = []
  engine.on('alert', e => events.push(e))
  return { engine, events }
}

async function tmp (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ambulink-stemi-'))
  onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/** Decoded frames of a simulated unit: `seconds` of 250 ms frames. */
function frames (profile: 'healthy' | 'stemi', seed: number, seconds: number, stemi?: StemiKind): Frame[] {
  const src = new UnitFrameSource({ unitId: 'amb-9', startMs: START, profile, seed, stemi })
  const out: Frame[] = []
  for (let i = 0; i < seconds * 4; i++) out.push(decoder.decode(src.nextFrame().bytes, 'amb-9', START + (i + 1) * 250))
  return out
}

const ecgAlerts = (events: AlertEvent[]): AlertEvent[] => events.filter(e => e.alert.kind === 'stemi' && e.alert.key === 'ecg')

describe('ECG STEMI in the engine', () => {
  it.each([
    ['inferior', 1, ['II', 'III', 'aVF'], 'inferior'],
    ['inferior', 2, ['II', 'III', 'aVF'], 'inferior'],
    ['anterior', 3, ['V1', 'V2', 'V3', 'V4'], 'anterior'],
    ['anterior', 4, ['V1', 'V2', 'V3', 'V4'], 'anterior']
  ] as const)('a simulated %s STEMI (seed %i) raises stemi/ecg naming %o, beside the crew alert', async (kind, seed, leads, territory) => {
    const { engine, events } = await engineIn(null)
    for (const f of frames('stemi', seed, 12, kind)) engine.onFrame(f, f.capturedAtMs)
    const raised = ecgAlerts(events).filter(e => e.type === 'raised')
    expect(raised).toHaveLength(1)
    const a = raised[0]!.alert
    expect(a.priority).toBe('high')
    expect(a.message).toContain('STEMI criteria met on the 12-lead ECG (device interpretation and gateway measurement)')
    for (const l of leads) expect(a.message).toMatch(new RegExp(`\\b${l} -?\\d+\\.\\d / -?\\d+\\.\\d mm`))
    expect(a.message).toContain(`(${territory}`)
    expect(a.value).toBeGreaterThanOrEqual(1.5)
    // The crew's suspicion is its own alert (key ''), unchanged.
    const crew = events.filter(e => e.alert.kind === 'stemi' && e.alert.key === '' && e.type === 'raised')
    expect(crew).toHaveLength(1)
    expect(crew[0]!.alert.message).toBe('STEMI suspected by the crew: cath-lab pre-notification')
  })

  it.each([1, 2, 3, 4, 5])('a healthy patient (seed %i) raises no alert at all over 40 s', async seed => {
    const { engine, events } = await engineIn(null)
    for (const f of frames('healthy', seed, 40)) engine.onFrame(f, f.capturedAtMs)
    expect(events.map(e => `${e.alert.kind}/${e.alert.key}: ${e.alert.message}`)).toEqual([])
  })

  it('the gateway measurement alone raises it when the device sends no interpretation', async () => {
    const { engine, events } = await engineIn(null)
    for (const f of frames('stemi', 7, 11, 'inferior')) engine.onFrame({ ...f, interpretation: null }, f.capturedAtMs)
    const a = ecgAlerts(events).find(e => e.type === 'raised')?.alert
    expect(a?.message).toContain('(gateway measurement): ST elevation in II, III, aVF (inferior)')
    expect(a?.message).toMatch(/II — \/ \d\.\d mm/)
  })

  it('the device interpretation alone raises it without a waveform, with the V2-V3 limit for the patient', async () => {
    const { engine, events } = await engineIn(null)
    const f = (seq: number, over: Partial<Frame>): Frame => decoder.decode(encodeFrame({
      unitId: 'amb-9', bootId: 'b1', seq, capturedAtMs: START + seq * 1000, encounterId: 'enc-1', ...over as object
    }), 'amb-9', START + seq * 1000 + 1)
    engine.onFrame(f(1, { assessment: { stemiSuspected: false, lamsScore: 0, fastPositive: false, lastKnownWellMs: 0, ageYears: 35, sex: 'male' } } as Partial<Frame>))
    // A man < 40: 2.4 mm in V2-V3 is under his 2.5 mm limit; V1 alone is not two contiguous leads.
    const st = (v2: number) => ({ interpretation: { statement: 'Sinus rhythm', stDeviations: [{ lead: 7, microvolts: 120 }, { lead: 8, microvolts: v2 }, { lead: 9, microvolts: v2 }], lbbb: false, paced: false, offsetMs: 0 } })
    engine.onFrame(f(2, st(240) as Partial<Frame>))
    expect(ecgAlerts(events)).toEqual([])
    engine.onFrame(f(3, st(250) as Partial<Frame>))
    const a = ecgAlerts(events)[0]!.alert
    expect(a.message).toContain('(device interpretation): ST elevation in V1, V2, V3 (anterior)')
    expect(a.message).toContain('man < 40 y: V2-V3 ≥ 2.5 mm')
    expect(a.message).toContain('Device: "Sinus rhythm"')
  })

  it.each([[true, false, 'LBBB'], [false, true, 'paced rhythm']])('lbbb %s paced %s: "cannot be assessed automatically", not silence', async (lbbb, paced, reason) => {
    const { engine, events } = await engineIn(null)
    const frame = decoder.decode(encodeFrame({
      unitId: 'amb-9', bootId: 'b1', seq: 1, capturedAtMs: START, encounterId: 'enc-1',
      interpretation: { statement: 'Sinus rhythm. Left bundle branch block', stDeviations: [{ lead: 2, microvolts: 50 }, { lead: 3, microvolts: 40 }], lbbb, paced, offsetMs: 0 }
    }), 'amb-9', START + 1)
    engine.onFrame(frame)
    const a = ecgAlerts(events)[0]?.alert
    expect(a?.priority).toBe('high')
    expect(a?.message).toContain(`12-lead ECG: ${reason} reported by the device: STEMI cannot be assessed automatically`)
  })

  it('keeps the 10 s 12-lead snapshot durably, owner-only, retrievable by alert id', async () => {
    const dir = await tmp()
    const { engine, events } = await engineIn(dir)
    const fed = frames('stemi', 11, 12, 'anterior')
    for (const f of fed) engine.onFrame(f, f.capturedAtMs)
    const id = ecgAlerts(events)[0]!.alert.id
    // Held in memory as Int16 rows (issue 12): served as the same µV the device sent.
    const held = await engine.ecgSnapshot(id)
    const from = fed.findIndex(f => f.capturedAtMs + f.waveforms[0]!.offsetMs === held!.startMs)
    expect(from).toBeGreaterThanOrEqual(0)
    for (let lead = 0; lead < 12; lead++) {
      const sent = fed.slice(from, from + 40).flatMap(f => {
        const w = f.waveforms.find(x => x.lead === lead + 1)!
        return Array.from(w.samples, v => Math.round(v * w.microvoltsPerLsb))
      })
      expect(held!.microvolts[lead]).toEqual(sent)
    }
    await engine.close()
    const files = await readdir(join(dir, 'ecg'))
    expect(files).toEqual([`${id}.json`])
    expect((await stat(join(dir, 'ecg', files[0]!))).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'ecg'))).mode & 0o777).toBe(0o700)
    // A new engine (a restart) reads it back from disk.
    const { engine: again } = await engineIn(dir)
    const snap = await again.ecgSnapshot(id)
    expect(snap).toEqual(held)
    expect(snap?.leads).toEqual(['I', 'II', 'III', 'aVR', 'aVL', 'aVF', 'V1', 'V2', 'V3', 'V4', 'V5', 'V6'])
    expect(snap?.microvolts).toHaveLength(12)
    for (const row of snap!.microvolts) expect(row).toHaveLength(5000)
    expect(snap?.sampleRateHz).toBe(500)
    expect(snap?.device?.leads).toContain('V2')
    expect(snap?.gateway?.leads).toContain('V2')
    expect(await again.ecgSnapshot('../../etc/passwd')).toBeNull()
    expect(await again.ecgSnapshot('no-such-alert')).toBeNull()
  })

  it('a later normal ECG does not clear it; new leads go out at once; the end of the encounter clears it', async () => {
    const { engine, events } = await engineIn(null)
    const interp = (st: Array<[number, number]>) => ({ statement: '', stDeviations: st.map(([lead, microvolts]) => ({ lead, microvolts })), lbbb: false, paced: false, offsetMs: 0 })
    const f = (seq: number, encounterId: string, st: Array<[number, number]>): Frame => decoder.decode(encodeFrame({
      unitId: 'amb-9', bootId: 'b1', seq, capturedAtMs: START + seq * 1000, encounterId, interpretation: interp(st)
    }), 'amb-9', START + seq * 1000 + 1)
    engine.onFrame(f(1, 'enc-1', [[2, 150], [3, 150], [6, 0]]), START + 1000)
    engine.onFrame(f(2, 'enc-1', [[2, 0], [3, 0], [6, 0]]), START + 2000)
    expect(ecgAlerts(events).map(e => e.type)).toEqual(['raised'])
    expect(engine.openAlerts().filter(a => a.key === 'ecg')).toHaveLength(1)
    // Leads change 1 s later (well inside the update throttle): sent at once.
    engine.onFrame(f(3, 'enc-1', [[2, 150], [3, 150], [6, 150]]), START + 3000)
    const upd = ecgAlerts(events).filter(e => e.type === 'updated')
    expect(upd).toHaveLength(1)
    expect(upd[0]!.alert.message).toContain('ST elevation in II, III, aVF (inferior)')
    engine.onFrame(f(4, 'enc-2', [[2, 0], [3, 0]]), START + 4000)
    expect(ecgAlerts(events).at(-1)?.type).toBe('cleared')
  })

  it('an interpretation before 10 s of ECG gets its snapshot once the 10 s are in', async () => {
    const { engine, events } = await engineIn(null)
    const fs = frames('healthy', 21, 11)
    const first = { ...fs[0]!, interpretation: { statement: 'Anterior STEMI', stDeviations: [{ lead: 9, microvolts: 300 }, { lead: 10, microvolts: 300 }], lbbb: false, paced: false, offsetMs: 0 } }
    engine.onFrame(first, first.capturedAtMs)
    const id = ecgAlerts(events)[0]!.alert.id
    expect(await engine.ecgSnapshot(id)).toBeNull()
    for (const f of fs.slice(1, 39)) engine.onFrame(f, f.capturedAtMs)
    expect(await engine.ecgSnapshot(id)).toBeNull() // 9.75 s
    engine.onFrame(fs[39]!, fs[39]!.capturedAtMs)
    const snap = await engine.ecgSnapshot(id)
    expect(snap?.microvolts.map(r => r.length)).toEqual(Array(12).fill(5000))
    expect(snap?.startMs).toBe(START)
  })

  it('does not flap: over 3 min of an anterior STEMI the leads named only grow, never cleared', async () => {
    const { engine, events } = await engineIn(null)
    for (const f of frames('stemi', 3, 180, 'anterior')) engine.onFrame(f, f.capturedAtMs)
    const ev = ecgAlerts(events)
    expect(ev[0]!.type).toBe('raised')
    expect(ev.every(e => e.type !== 'cleared')).toBe(true)
    const named = ev.map(e => /ST elevation in ([^(]+) \(/.exec(e.alert.message)![1]!.split(', '))
    for (let i = 1; i < named.length; i++) {
      for (const l of named[i - 1]!) expect(named[i]).toContain(l)
      expect(named[i]!.length).toBeGreaterThan(named[i - 1]!.length)
    }
    // 18 measurements and 6 interpretations: at most a raise and a few newly named leads.
    expect(ev.length).toBeLessThanOrEqual(4)
  })

  it('same leads: an update only when the largest elevation moves by ≥ 0.5 mm', async () => {
    const { engine, events } = await engineIn(null)
    const f = (seq: number, uv: number): Frame => decoder.decode(encodeFrame({
      unitId: 'amb-9', bootId: 'b1', seq, capturedAtMs: START + seq * 60_000, encounterId: 'enc-1',
      interpretation: { statement: '', stDeviations: [{ lead: 2, microvolts: uv }, { lead: 3, microvolts: uv }], lbbb: false, paced: false, offsetMs: 0 }
    }), 'amb-9', START + seq * 60_000 + 1)
    engine.onFrame(f(1, 150), START + 60_000)
    engine.onFrame(f(2, 190), START + 120_000)
    expect(ecgAlerts(events).map(e => e.type)).toEqual(['raised'])
    engine.onFrame(f(3, 200), START + 180_000)
    expect(ecgAlerts(events).map(e => [e.type, e.alert.value])).toEqual([['raised', 1.5], ['updated', 2]])
  })
})
