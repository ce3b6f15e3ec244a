// The clinical cases in test/clinical-cases/ (written by clinicians, no code: the format is in
// docs/clinical-safety.md) run through the real alert engine by the replay harness, one test
// per case file; a failing case prints each unmet expectation beside what the engine did.
// Then the harness itself: it can fail, it refuses frames a device could not send, and its
// link, restart and late-arrival semantics are what the safety case says they are.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { failureReport, loadCase, runCase, type ReplayResult } from '../cli/replay.js'
import { makeTempDir, removeTempDir } from '../testkit/proc.js'

const DIR = fileURLToPath(new URL('./clinical-cases/', import.meta.url))
const CASES = readdirSync(DIR).filter(f => f.endsWith('.ndjson') && !f.endsWith('.expect.ndjson')).sort()

/** Unmet expectations, each as "expected … / actual …" lines: the readable diff when a case fails. */
function unmet (r: ReplayResult): string[] {
  return r.checks.filter(k => !k.ok).map(k => `${k.expectation.text}\n  actual: ${k.actual}`)
}

describe('clinical cases', () => {
  it('there are at least 25, each with a title, sources and expectations', async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(25)
    for (const f of CASES) {
      const c = await loadCase(join(DIR, f))
      expect(c.id + '.ndjson', f).toBe(f)
      expect(c.title, f).not.toBe('')
      expect(c.sources.length, `${f}: cite the clinical sources in the header`).toBeGreaterThan(0)
      expect(c.expectations.length, `${f}: no expectation`).toBeGreaterThan(0)
    }
  })

  for (const f of CASES) {
    it(f, async () => {
      const r = await runCase(await loadCase(join(DIR, f)))
      expect(unmet(r), failureReport(r)).toEqual([])
    })
  }
})

describe('the hazard log (docs/clinical-safety.md)', () => {
  const ROOT = fileURLToPath(new URL('..', import.meta.url))
  const doc = readFileSync(join(ROOT, 'docs', 'clinical-safety.md'), 'utf8')
  const rows = doc.split('\n').filter(l => /^\| H\d\d \|/.test(l))

  it('names every clinical case, and only cases that exist', () => {
    for (const f of CASES) expect(doc, `${f} is not in the hazard log`).toContain(f.replace(/\.ndjson$/, ''))
    for (const m of doc.matchAll(/cases\/([a-z0-9-]+\.ndjson)/g)) expect(CASES, m[0]).toContain(m[1])
  })

  it('every hazard names a verifying test file that exists, and the test titles it quotes are real', () => {
    expect(rows.length).toBeGreaterThanOrEqual(25)
    const testText = readdirSync(join(ROOT, 'test')).filter(f => f.endsWith('.test.ts')).map(f => readFileSync(join(ROOT, 'test', f), 'utf8')).join('\n') +
      CASES.map(f => readFileSync(join(DIR, f), 'utf8')).join('\n')
    for (const row of rows) {
      const verified = row.slice(row.lastIndexOf(' | ') + 3)
      const files = [...verified.matchAll(/`((?:test\/)?[\w./-]+\.(?:test\.ts|ndjson))`/g)].map(m => m[1]!)
      expect(files.length, row.slice(0, 8)).toBeGreaterThan(0)
      for (const f of files) expect(existsSync(join(ROOT, f.startsWith('cases/') ? 'test/clinical-' + f : f)), f).toBe(true)
      for (const q of verified.matchAll(/"([^"]+)"/g)) {
        for (const part of q[1]!.split('…').map(x => x.trim()).filter(x => x !== '')) expect(testText, `${row.slice(0, 6)}: "${part}"`).toContain(part)
      }
    }
  })
})

async function writeCase (lines: unknown[]): Promise<string> {
  const dir = await makeTempDir('ambulink-case-')
  onTestFinished(() => removeTempDir(dir))
  const file = join(dir, 'case.ndjson')
  await writeFile(file, lines.map(l => typeof l === 'string' ? l : JSON.stringify(l)).join('\n') + '\n')
  return file
}

const HEADER = { case: 'case', title: 'harness', sources: ['test'] }
const NORMAL = { heart_rate: 72, respiratory_rate: 16, spo2: 97, supplemental_o2: false, nibp_systolic: 125, consciousness_acvpu: 'A', temperature: 36.8 }

describe('the replay harness', () => {
  it('fails a case whose expectation is not met, and says what happened instead', async () => {
    const file = await writeCase([
      HEADER,
      { at: '0:00', every: '1s', until: '1:00', frame: { numerics: { ...NORMAL, spo2: 84 } } },
      { expect: 'no-alerts' },
      { expect: 'raised', kind: 'threshold', key: 'heart_rate' }
    ])
    const r = await runCase(await loadCase(file))
    expect(r.ok).toBe(false)
    expect(r.checks.map(k => k.ok)).toEqual([false, false])
    const report = failureReport(r)
    expect(report).toContain('- expected: no-alerts (whole case)')
    expect(report).toContain('raised high threshold/spo2')
    expect(report).toContain('- expected: raised threshold/heart_rate (whole case)')
  })

  it('refuses a frame the decoder would refuse, naming the line and the code', async () => {
    const file = await writeCase([HEADER, '# a comment', { at: '0:00', frame: { numerics: { spo2: 140 } } }, { expect: 'no-alerts' }])
    const c = await loadCase(file)
    await expect(runCase(c)).rejects.toThrow(/case\.ndjson:3: the decoder refuses this frame \(AMB_ERR_VALUE_OUT_OF_RANGE\)/)
  })

  it('refuses unknown fields, signs and event names with file:line', async () => {
    await expect(loadCase(await writeCase([HEADER, { at: 0, frame: { numerics: { heart_rat: 70 } } }]))).rejects.toThrow(/:2: .*heart_rat/)
    await expect(loadCase(await writeCase([HEADER, { at: 0, frame: { stemi: true } }]))).rejects.toThrow(/:2: frame\.stemi is not a field of TelemetryFrame/)
    await expect(loadCase(await writeCase([HEADER, { at: 0, event: 'reboot' }]))).rejects.toThrow(/:2: event must be one of/)
    await expect(loadCase(await writeCase([HEADER, { at: '-0:30', event: 'online' }]))).rejects.toThrow(/:2: at must not be before 0:00/)
    await expect(loadCase(await writeCase([HEADER, { at: '1:00', frame: {}, every: '1s' }]))).rejects.toThrow(/:2: every and until go together/)
    await expect(loadCase(await writeCase([{ at: 0, event: 'online' }]))).rejects.toThrow(/:1: the first line must be the header/)
  })

  it('holds frames while the link is down and delivers them at link_up in order; backlog "drop" loses them', async () => {
    const lines = (backlog: string): unknown[] => [
      HEADER,
      { at: '0:00', every: '1s', until: '0:04', frame: { numerics: NORMAL } },
      { at: '0:05', event: 'link_down', backlog },
      { at: '0:05', every: '1s', until: '1:00', frame: { numerics: { ...NORMAL, heart_rate: 30 } } },
      { at: '0:31', event: 'link_up' }
    ]
    const held = await runCase(await loadCase(await writeCase(lines('deliver'))))
    // The unit was silent 0:05–0:31 (signal loss), then its stored bradycardia arrives at once.
    const hr = held.events.filter(e => e.alert.kind === 'threshold' && e.alert.key === 'heart_rate' && e.type === 'raised')
    expect(hr.map(e => e.atMs)).toEqual([31_000])
    expect(held.events.some(e => e.alert.kind === 'signal_loss' && e.type === 'raised' && e.atMs < 31_000)).toBe(true)
    // Lost frames: the bradycardia is only seen from 0:31 on, so it is raised later.
    const dropped = await runCase(await loadCase(await writeCase(lines('drop'))))
    const late = dropped.events.filter(e => e.alert.key === 'heart_rate' && e.type === 'raised')
    expect(late).toHaveLength(1)
    expect(late[0]!.atMs).toBeGreaterThan(31_000)
    // No link_up: nothing sent after the drop ever arrives, so signal loss stays open.
    const never = await runCase(await loadCase(await writeCase(lines('deliver').filter(l => (l as { event?: string }).event !== 'link_up'))))
    expect(never.events.filter(e => e.alert.key === 'heart_rate')).toEqual([])
    expect(never.events.filter(e => e.alert.kind === 'signal_loss').map(e => e.type)).not.toContain('cleared')
  })

  it('a restart closes the engine and reopens it from its journal: the open alert keeps its id', async () => {
    const file = await writeCase([
      HEADER,
      { at: '0:00', every: '1s', until: '2:00', frame: { numerics: { ...NORMAL, heart_rate: 30 } } },
      { at: '1:00', event: 'restart', down: '5s' }
    ])
    const r = await runCase(await loadCase(file))
    expect(r.notes.map(n => n.text)).toContain('gateway restart (down 0:05.000)')
    const hr = r.events.filter(e => e.alert.key === 'heart_rate')
    expect(new Set(hr.map(e => e.alert.id)).size).toBe(1)
    expect(hr.filter(e => e.type === 'raised')).toHaveLength(1)
  })

  it('reads expectations from a sibling .expect.ndjson; header engine options, rules and end apply', async () => {
    const file = await writeCase([
      { ...HEADER, engine: { signalLossMs: 5000 }, rules: { rules: { heart_rate: { high: 100 } } }, end: '1:00' },
      { at: '0:00', every: '1s', until: '0:30', frame: { numerics: { ...NORMAL, heart_rate: 110 } } }
    ])
    await writeFile(file.replace(/\.ndjson$/, '.expect.ndjson'), [
      { expect: 'raised', kind: 'threshold', key: 'heart_rate', from: '0:00', to: '0:15' },
      { expect: 'raised', kind: 'signal_loss', from: '0:35', to: '0:36' }
    ].map(l => JSON.stringify(l)).join('\n') + '\n')
    const c = await loadCase(file)
    expect(c.expectations.map(x => x.where.replace(/.*\//, ''))).toEqual(['case.expect.ndjson:1', 'case.expect.ndjson:2'])
    const r = await runCase(c)
    expect(unmet(r), failureReport(r)).toEqual([])
    // The clock ran to `end` although the last frame was at 0:30.
    expect(Math.max(...r.events.map(e => e.atMs))).toBeGreaterThanOrEqual(35_000)
    await writeFile(file.replace(/\.ndjson$/, '.expect.ndjson'), JSON.stringify({ at: '0:10', event: 'online' }) + '\n')
    await expect(loadCase(file)).rejects.toThrow(/case\.expect\.ndjson:1: an \.expect\.ndjson file holds only expect lines/)
  })

  it('"arrives" delivers a frame late, after newer frames; cycles vary a repeated frame', async () => {
    const file = await writeCase([
      HEADER,
      { at: '0:00', every: '1s', until: '0:20', frame: { numerics: NORMAL }, cycle: [{ for: '3s' }, { for: '1s', numerics: { spo2: 93 } }] },
      { at: '0:10', arrives: '+15s', frame: { alarms: [{ code: 'TEST', priority: 'LOW', text: 'late' }] } }
    ])
    const c = await loadCase(file)
    const spo2 = c.inputs.filter(i => i.type === 'frame' && i.frame.numerics !== undefined)
      .map(i => (i as { frame: { numerics: Array<{ sign: number, value: number }> } }).frame.numerics.find(n => n.sign === 3)!.value)
    expect(spo2.slice(0, 8)).toEqual([97, 97, 97, 93, 97, 97, 97, 93])
    const late = c.inputs.find(i => i.type === 'frame' && i.frame.alarms !== undefined)!
    expect([late.arriveMs, (late as { captureMs: number }).captureMs]).toEqual([25_000, 10_000])
  })
})
