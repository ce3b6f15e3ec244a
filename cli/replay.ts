/**
 * `ambulink replay <case.ndjson|folder>… [--speed N|--as-fast-as-possible] [--json]`: runs
 * clinical cases (format: cli/replay-case.ts and docs/clinical-safety.md) through the real alert
 * engine on an injected clock, and prints the alerts and whether each expectation was met.
 *
 * The engine is driven exactly as the gateway drives it (gateway/alert-wiring.ts): every frame is
 * encoded (`encodeFrame`), decoded and validated by `FrameDecoder` at its arrival time, then fed to
 * `onFrame`; `tick` runs every second of gateway time, as the engine's 1 s timer does; a restart
 * closes the engine and reopens it from its journal. Time is simulated (an injected clock): nothing
 * waits for real time unless `--speed N` paces the replay at N× real time for watching.
 *
 * Exit status: 0 every expectation met, 1 one or more not met, 2 a case that cannot be run.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { encodeFrame, FrameDecoder, FrameError } from '../decoders/index.js'
import { AlertEngine, type Alert, type AlertEvent } from '../streams/index.js'
import { formatOffset, loadCase, ReplayError, type Expectation, type GatewayEvent, type Input, type ReplayCase } from './replay-case.js'

export { loadCase, parseDuration, formatOffset, ReplayError, type ReplayCase, type Expectation } from './replay-case.js'

/** An alert event as the replay saw it: when (gateway offset from 0:00) and what. */
export interface ReplayEvent {
  atMs: number
  type: AlertEvent['type']
  alert: Alert
}

/** A gateway-side happening worth showing in the timeline (ack, link, restart). */
export interface ReplayNote { atMs: number, text: string }

export interface CheckResult {
  expectation: Expectation
  ok: boolean
  /** What was found, in words (for the diff). */
  actual: string
}

export interface ReplayResult {
  case: ReplayCase
  events: ReplayEvent[]
  notes: ReplayNote[]
  checks: CheckResult[]
  ok: boolean
}

export interface RunOptions {
  /** Called as each alert event happens (streaming output). */
  onEvent?: (e: ReplayEvent) => void
  onNote?: (n: ReplayNote) => void
  /** Real-time pacing: 0 = as fast as possible, N = N× real time. */
  speed?: number
}

const TICK_MS = 1000

/** Runs one case through a fresh alert engine (journal in a temporary folder, removed after). */
export async function runCase (c: ReplayCase, opts: RunOptions = {}): Promise<ReplayResult> {
  const dir = await mkdtemp(join(tmpdir(), 'ambulink-replay-'))
  const events: ReplayEvent[] = []
  const notes: ReplayNote[] = []
  const errors: Error[] = []
  let clock = c.startMs
  const note = (text: string): void => { const n = { atMs: clock - c.startMs, text }; notes.push(n); opts.onNote?.(n) }
  const open = async (): Promise<AlertEngine> => {
    const engine = await AlertEngine.open({
      ...c.engine,
      ...(c.rules === null ? {} : { rules: c.rules }),
      dir,
      tickIntervalMs: 0,
      now: () => clock,
      onError: err => { errors.push(err) }
    })
    engine.on('alert', ev => {
      const e: ReplayEvent = { atMs: clock - c.startMs, type: ev.type, alert: ev.alert }
      events.push(e)
      opts.onEvent?.(e)
    })
    return engine
  }
  const decoder = new FrameDecoder()
  let engine = await open()
  try {
    const schedule = deliverySchedule(c)
    const lastInput = schedule.length > 0 ? schedule[schedule.length - 1]!.at : 0
    const lastExpect = Math.max(0, ...c.expectations.map(x => Math.max(Number.isFinite(x.toMs) ? x.toMs : 0, Number.isNaN(x.atMs) ? 0 : x.atMs)))
    const endMs = Math.max(c.endMs, lastInput, lastExpect)
    let i = 0
    let prev = 0
    let downUntil = -Infinity
    for (let tickAt = 0; tickAt <= endMs || i < schedule.length; tickAt += TICK_MS) {
      while (i < schedule.length && schedule[i]!.at <= tickAt) {
        const s = schedule[i++]!
        if (opts.speed !== undefined && opts.speed > 0 && s.at > prev) { await sleep((s.at - prev) / opts.speed); prev = s.at }
        clock = c.startMs + s.at
        if (s.input.type === 'frame') {
          let f
          try {
            f = decoder.decode(encodeFrame(s.input.frame), c.unit, clock)
          } catch (err) {
            // A case must be something a device could send: the decoder's refusal is the case's error.
            if (err instanceof FrameError) throw new ReplayError(`${s.input.where}: the decoder refuses this frame (${err.code}): ${err.message}`, { cause: err })
            throw err
          }
          engine.onFrame(f, clock)
          continue
        }
        const ev = s.input.ev
        engine = await applyEvent(c, engine, ev, s.at, note, open, t => { clock = c.startMs + t })
        if (ev.event === 'restart') downUntil = s.at + ev.downMs
      }
      // No timer runs while the gateway is down.
      if (tickAt < downUntil) continue
      if (opts.speed !== undefined && opts.speed > 0 && tickAt > prev) { await sleep((tickAt - prev) / opts.speed); prev = tickAt }
      clock = c.startMs + tickAt
      engine.tick(clock)
    }
  } finally {
    await engine.close()
    await rm(dir, { recursive: true, force: true })
  }
  if (errors.length > 0) throw new ReplayError(`${c.file}: the alert engine reported: ${errors.map(e => e.message).join('; ')}`)
  const checks = c.expectations.map(x => check(x, events))
  return { case: c, events, notes, checks, ok: checks.every(k => k.ok) }
}

interface Scheduled { at: number, input: Input }

/**
 * When each input reaches the gateway: frames held while the link is down are delivered at
 * link_up in capture order (store-and-forward) or lost (`backlog: drop`), and never without a
 * link_up; frames sent while the
 * gateway restarts arrive when it is back (the device resends unacknowledged QoS 1 frames).
 */
function deliverySchedule (c: ReplayCase): Scheduled[] {
  const byArrival = c.inputs.map((input, n) => ({ input, n })).sort((p, q) => p.input.arriveMs - q.input.arriveMs || p.n - q.n)
  const out: Scheduled[] = []
  let down: { backlog: 'deliver' | 'drop' } | null = null
  let held: Input[] = []
  let restartUntil = -Infinity
  for (const { input } of byArrival) {
    const at = input.arriveMs
    if (input.type === 'event') {
      const ev = input.ev
      // Events during a restart's downtime (an ack, a will) happen once the gateway is back.
      out.push({ at: Math.max(at, restartUntil), input })
      if (ev.event === 'link_down') down = { backlog: ev.backlog }
      if (ev.event === 'link_up') {
        if (down?.backlog === 'deliver') for (const h of held) out.push({ at: Math.max(at, restartUntil), input: h })
        held = []
        down = null
      }
      if (ev.event === 'restart') restartUntil = at + ev.downMs
      continue
    }
    if (down !== null) { held.push(input); continue }
    out.push({ at: Math.max(at, restartUntil), input })
  }
  // Frames still held when the case ends (no link_up) never reach the gateway.
  return out.sort((p, q) => p.at - q.at)
}

async function applyEvent (
  c: ReplayCase, engine: AlertEngine, ev: GatewayEvent, at: number,
  note: (text: string) => void, open: () => Promise<AlertEngine>, setClock: (t: number) => void
): Promise<AlertEngine> {
  const now = c.startMs + at
  switch (ev.event) {
    case 'link_down': note(`link down${ev.backlog === 'drop' ? ' (frames lost)' : ' (frames held on the unit)'}`); return engine
    case 'link_up': note('link up'); return engine
    case 'offline': note('unit offline (will message)'); engine.onStatus(c.unit, 'offline', now); return engine
    case 'online': note('unit online'); engine.onStatus(c.unit, 'online', now); return engine
    case 'ack': {
      const targets = engine.openAlerts().filter(a => a.unit === c.unit && a.kind === ev.kind && (ev.key === null || a.key === ev.key))
      note(`ack ${ev.kind}${ev.key === null ? '' : '/' + ev.key} by ${ev.by}${targets.length === 0 ? ': NO OPEN ALERT to acknowledge' : ''}`)
      if (targets.length === 0) throw new ReplayError(`${c.file}: ack at ${formatOffset(at)}: no open ${ev.kind} alert to acknowledge`)
      for (const a of targets) engine.acknowledge(a.id, ev.by, now)
      return engine
    }
    case 'spo2_scale': {
      note(`SpO2 scale ${ev.scale} set by ${ev.by}`)
      if (!engine.setSpo2Scale(c.unit, ev.scale, now)) throw new ReplayError(`${c.file}: spo2_scale at ${formatOffset(at)}: the unit has no active encounter yet`)
      return engine
    }
    case 'restart': {
      note(`gateway restart${ev.downMs > 0 ? ` (down ${formatOffset(ev.downMs)})` : ''}`)
      await engine.close()
      setClock(at + ev.downMs)
      return await open()
    }
  }
}

function matches (x: Expectation, a: Alert): boolean {
  return (x.kind === undefined || a.kind === x.kind) && (x.key === undefined || a.key === x.key) &&
    (x.priority === undefined || a.priority === x.priority) && (x.message === undefined || a.message.includes(x.message))
}

function describe (e: ReplayEvent): string {
  const a = e.alert
  return `${formatOffset(e.atMs)} ${e.type} ${a.priority} ${a.kind}${a.key === '' ? '' : '/' + a.key}${a.acknowledgedAt === null ? '' : ' (acknowledged)'}: ${a.message}`
}

function windowText (x: Expectation): string {
  if (!Number.isNaN(x.atMs)) return ` at ${formatOffset(x.atMs)}`
  const from = Number.isFinite(x.fromMs) ? formatOffset(x.fromMs) : 'start'
  const to = Number.isFinite(x.toMs) ? formatOffset(x.toMs) : 'end'
  return from === 'start' && to === 'end' ? ' (whole case)' : ` within ${from}–${to}`
}

/** What an expectation says, in words. */
export function expectationText (x: Expectation): string {
  const what = [x.kind, x.key === undefined || x.key === '' ? undefined : '/' + x.key].filter(Boolean).join('')
  const parts = [x.expect, what, x.priority, x.acknowledged === undefined ? undefined : (x.acknowledged ? 'acknowledged' : 'unacknowledged'),
    x.count === undefined ? undefined : `×${x.count}`, x.message === undefined ? undefined : `"${x.message}"`]
  return parts.filter(Boolean).join(' ') + windowText(x)
}

function check (x: Expectation, events: ReplayEvent[]): CheckResult {
  const inWindow = (e: ReplayEvent): boolean => e.atMs >= x.fromMs && e.atMs <= x.toMs
  const related = (e: ReplayEvent): boolean => (x.kind === undefined || e.alert.kind === x.kind) && (x.key === undefined || e.alert.key === x.key)
  const listing = (es: ReplayEvent[]): string => es.length === 0 ? 'no such event' : es.slice(0, 12).map(describe).join('\n') + (es.length > 12 ? `\n… ${es.length - 12} more` : '')
  switch (x.expect) {
    case 'no-alerts': {
      const got = events.filter(inWindow)
      return { expectation: x, ok: got.length === 0, actual: listing(got) }
    }
    case 'open':
    case 'closed': {
      // Each alert's state at x.atMs is its last event up to then.
      const last = new Map<string, ReplayEvent>()
      for (const e of events) if (e.atMs <= x.atMs && related(e)) last.set(e.alert.id, e)
      const openNow = [...last.values()].filter(e => e.type !== 'cleared')
      if (x.expect === 'closed') return { expectation: x, ok: openNow.length === 0, actual: listing(openNow) }
      const ok = openNow.some(e => matches(x, e.alert) && (x.acknowledged === undefined || (e.alert.acknowledgedAt !== null) === x.acknowledged))
      return { expectation: x, ok, actual: openNow.length === 0 ? `no open ${x.kind} alert; history:\n${listing(events.filter(related))}` : listing(openNow) }
    }
    default: {
      const type = x.expect.replace(/^not-/, '') as AlertEvent['type']
      const got = events.filter(e => e.type === type && inWindow(e) && matches(x, e.alert))
      const want = x.expect.startsWith('not-') ? 0 : x.count
      const ok = want === undefined ? got.length > 0 : got.length === want
      return { expectation: x, ok, actual: got.length > 0 && !ok ? listing(got) : `history of ${x.kind}${x.key ? '/' + x.key : ''}:\n${listing(events.filter(related))}` }
    }
  }
}

/** The readable diff of a failed case: each unmet expectation, then what happened instead. */
export function failureReport (r: ReplayResult): string {
  const out: string[] = [`${r.case.file} (${r.case.id}): ${r.checks.filter(k => !k.ok).length} of ${r.checks.length} expectation(s) not met`]
  for (const k of r.checks) {
    if (k.ok) continue
    out.push(`- expected: ${expectationText(k.expectation)}   [${k.expectation.where}]`)
    out.push(...k.actual.split('\n').map((l, i) => (i === 0 ? '+ actual:   ' : '            ') + l))
  }
  return out.join('\n')
}

/** Case files under a path: the file itself, or every `*.ndjson` in a folder but the `.expect.ndjson` ones. */
async function caseFiles (path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path]
  return (await readdir(path)).filter(f => f.endsWith('.ndjson') && !f.endsWith('.expect.ndjson')).sort().map(f => join(path, f))
}

const PAD = (s: string, n: number): string => s.length >= n ? s + ' ' : s + ' '.repeat(n - s.length)

export async function runReplayCli (args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { speed: { type: 'string' }, 'as-fast-as-possible': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }
  })
  if (values.help === true || positionals.length === 0) {
    process.stderr.write('usage: ambulink replay <case.ndjson|folder>… [--speed N|--as-fast-as-possible] [--json]\n' +
      '  runs clinical cases through the alert engine on a simulated clock (format: docs/clinical-safety.md)\n')
    return values.help === true ? 0 : 2
  }
  if (values.speed !== undefined && values['as-fast-as-possible'] === true) throw new ReplayError('--speed and --as-fast-as-possible exclude each other')
  const speed = values.speed === undefined ? 0 : Number(values.speed)
  if (!(speed >= 0 && Number.isFinite(speed))) throw new ReplayError(`--speed must be a positive number (times real time), got ${values.speed}`)
  const json = values.json === true
  const w = (s: string): boolean => process.stdout.write(s + '\n')
  const files = (await Promise.all(positionals.map(caseFiles))).flat()
  const printEvent = (c: ReplayCase, e: ReplayEvent): void => {
    if (json) { w(JSON.stringify({ case: c.id, at: formatOffset(e.atMs), at_ms: e.atMs, type: e.type, alert: e.alert })); return }
    const a = e.alert
    const ack = a.acknowledgedAt === null ? '' : ` [ack by ${a.acknowledgedBy ?? '?'}]`
    w(`  ${PAD(formatOffset(e.atMs), 11)}${PAD(e.type, 13)}${PAD(a.priority, 9)}${PAD(a.kind + (a.key === '' ? '' : '/' + a.key), 26)}${a.message}${ack}`)
  }
  let failed = 0
  let broken = 0
  for (const file of files) {
    let c: ReplayCase
    let r: ReplayResult
    try {
      c = await loadCase(file)
      const cc = c
      if (!json) w(`case ${c.id}: ${c.title}\n  ${PAD('time', 11)}${PAD('event', 13)}${PAD('priority', 9)}${PAD('alert', 26)}message`)
      r = await runCase(c, { speed, onEvent: e => { printEvent(cc, e) }, onNote: n => { if (!json) w(`  ${PAD(formatOffset(n.atMs), 11)}-- ${n.text}`) } })
    } catch (err) {
      // One broken case does not hide the others' results; it makes the exit status 2.
      if (!(err instanceof ReplayError) || files.length === 1) throw err
      broken++
      process.stderr.write(`ambulink: ${err.message}\n`)
      continue
    }
    if (!r.ok) failed++
    if (json) {
      for (const k of r.checks) w(JSON.stringify({ case: c.id, expectation: expectationText(k.expectation), ok: k.ok, ...(k.ok ? {} : { actual: k.actual }) }))
      w(JSON.stringify({ case: c.id, ok: r.ok, events: r.events.length, expectations: r.checks.length, met: r.checks.filter(k => k.ok).length }))
      continue
    }
    if (r.events.length === 0) w('  (no alert)')
    w(`  expectations: ${r.checks.filter(k => k.ok).length}/${r.checks.length} met`)
    for (const k of r.checks) w(`    ${k.ok ? 'ok  ' : 'FAIL'} ${expectationText(k.expectation)}`)
    if (!r.ok) w(failureReport(r).split('\n').map(l => '  ' + l).join('\n'))
    w('')
  }
  if (!json && files.length > 1) w(`${files.length - failed - broken}/${files.length} cases met every expectation${broken > 0 ? `; ${broken} could not run` : ''}`)
  return broken > 0 ? 2 : failed > 0 ? 1 : 0
}
