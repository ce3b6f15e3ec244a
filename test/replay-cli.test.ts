// `ambulink replay` as a child process (node bin/ambulink.js): the human timeline, --json NDJSON,
// the exit status (0 met, 1 not met, 2 a case that cannot run) and --speed pacing.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { makeTempDir, removeTempDir, runCommand, type CommandResult } from '../testkit/proc.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'bin', 'ambulink.js')

function replay (...args: string[]): Promise<CommandResult> {
  return runCommand(process.execPath, [BIN, 'replay', ...args], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeoutMs: 60_000 })
}

async function caseFile (lines: unknown[]): Promise<string> {
  const dir = await makeTempDir('ambulink-replay-cli-')
  onTestFinished(() => removeTempDir(dir))
  const file = join(dir, 'hypoxia.ndjson')
  await writeFile(file, lines.map(l => JSON.stringify(l)).join('\n') + '\n')
  return file
}

const NORMAL = { heart_rate: 72, respiratory_rate: 16, spo2: 97, supplemental_o2: false, nibp_systolic: 125, consciousness_acvpu: 'A', temperature: 36.8 }
// Sustained SpO2 82 % on air from 1:00: a threshold alert (BTS 2017: target 94-98 %).
const HYPOXIA = [
  { case: 'hypoxia', title: 'Sustained hypoxaemia on air', sources: ['BTS emergency oxygen guideline 2017'] },
  { at: '0:00', every: '1s', until: '0:59', frame: { numerics: NORMAL } },
  { at: '1:00', every: '1s', until: '3:00', frame: { numerics: { ...NORMAL, spo2: 82 } } },
  { at: '2:30', event: 'ack', kind: 'threshold', key: 'spo2', by: 'CCU registrar' }
]

describe('ambulink replay', () => {
  it('prints the alerts as a timeline and exits 0 when every expectation is met', async () => {
    const file = await caseFile([...HYPOXIA, { expect: 'raised', kind: 'threshold', key: 'spo2', priority: 'high', from: '1:00', to: '1:40' }])
    const r = await replay(file)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('case hypoxia: Sustained hypoxaemia on air')
    expect(r.stdout).toMatch(/\n {2}1:\d\d\.\d{3} +raised +high +threshold\/spo2 +SpO2 /)
    expect(r.stdout).toMatch(/2:30\.000 +-- ack threshold\/spo2 by CCU registrar/)
    expect(r.stdout).toMatch(/2:30\.000 +acknowledged +high +threshold\/spo2 .*\[ack by CCU registrar\]/)
    expect(r.stdout).toContain('expectations: 1/1 met')
  })

  it('--json prints one JSON object per alert event, then each expectation and a summary', async () => {
    const file = await caseFile([...HYPOXIA, { expect: 'raised', kind: 'threshold', key: 'spo2', priority: 'high', from: '1:00', to: '1:40' }])
    const r = await replay(file, '--json', '--as-fast-as-possible')
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trimEnd().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
    const raised = lines.find(l => l.type === 'raised' && (l.alert as { key: string }).key === 'spo2')!
    expect(raised).toMatchObject({ case: 'hypoxia', alert: { kind: 'threshold', priority: 'high', unit: 'amb-1', encounter: 'enc-1' } })
    expect(raised.at_ms).toBeGreaterThanOrEqual(60_000)
    expect(lines.some(l => l.type === 'acknowledged' && l.at === '2:30.000')).toBe(true)
    expect(lines.at(-2)).toMatchObject({ case: 'hypoxia', ok: true })
    expect(lines.at(-1)).toMatchObject({ case: 'hypoxia', ok: true, expectations: 1, met: 1 })
  })

  it('runs a case of test/clinical-cases: the VF reported once at onset is raised at 1:00 and still open at the end', async () => {
    const r = await replay(join(ROOT, 'test', 'clinical-cases', 'vf-alarm-latched.ndjson'), '--json')
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trimEnd().split('\n').map(l => JSON.parse(l) as { type?: string, at?: string, alert?: { kind: string, key: string, priority: string }, ok?: boolean })
    const vf = lines.filter(l => l.alert?.kind === 'device_alarm' && l.alert.key === 'VF')
    expect(vf[0]).toMatchObject({ type: 'raised', at: '1:00.000', alert: { priority: 'high' } })
    expect(vf.some(l => l.type === 'escalated')).toBe(true)
    expect(vf.some(l => l.type === 'cleared')).toBe(false)
    expect(lines.at(-1)).toMatchObject({ case: 'vf-alarm-latched', ok: true, expectations: 5, met: 5 })
  })

  it('exits 1 with a readable diff when an expectation is not met', async () => {
    const file = await caseFile([...HYPOXIA, { expect: 'no-alerts' }])
    const r = await replay(file)
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('FAIL no-alerts (whole case)')
    expect(r.stdout).toMatch(/- expected: no-alerts \(whole case\) +\[.*hypoxia\.ndjson:5\]/)
    expect(r.stdout).toMatch(/\+ actual: +1:\d\d\.\d{3} raised /)
    expect(r.stdout).toMatch(/ {12}1:\d\d\.\d{3} raised high threshold\/spo2: SpO2 /)
  })

  it('exits 2 naming file and line for a case it cannot run (a frame the decoder refuses)', async () => {
    const file = await caseFile([HYPOXIA[0], { at: '0:00', frame: { numerics: { temperature: 98.6 } } }])
    const r = await replay(file)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/hypoxia\.ndjson:2: the decoder refuses this frame \(AMB_ERR_VALUE_OUT_OF_RANGE\): temperature 98\.6/)
  })

  it('runs every case of a folder; a broken case is reported and the others still run (exit 2)', async () => {
    const ok = await caseFile([...HYPOXIA, { expect: 'raised', kind: 'threshold', key: 'spo2' }])
    const dir = join(ok, '..')
    await writeFile(join(dir, 'broken.ndjson'), JSON.stringify(HYPOXIA[0]) + '\n' + JSON.stringify({ at: '0:00', event: 'reboot' }) + '\n')
    const r = await replay(dir)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/broken\.ndjson:2: event must be one of/)
    expect(r.stdout).toContain('case hypoxia: Sustained hypoxaemia on air')
    expect(r.stdout).toContain('1/2 cases met every expectation; 1 could not run')
  })

  it('--speed N paces the replay at N times real time', async () => {
    // 3 s of case time at 10x: at least 300 ms of wall time (an upper bound would be a timing claim).
    const file = await caseFile([HYPOXIA[0], { at: '0:00', every: '1s', until: '0:03', frame: { numerics: NORMAL } }, { expect: 'no-alerts' }])
    const t0 = performance.now()
    const r = await replay(file, '--speed', '10')
    expect(r.code, r.stderr).toBe(0)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(300)
    expect((await replay(file, '--speed', 'fast')).code).toBe(2)
  })
})
