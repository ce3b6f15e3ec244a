/**
 * The clinical case format that `ambulink replay` runs (docs/clinical-safety.md, "Case format").
 * A case is NDJSON: one JSON object per line, written by a clinician without code. Blank lines
 * and lines starting with `#` are comments.
 *
 * 1. Header (first line): `{"case":"slug","title":"…","patient":"…","sources":["…"]}`, with
 *    optional `unit` ("amb-1"), `encounter` ("enc-1", put on every frame that does not set
 *    `encounter_id` itself), `boot` ("boot-1"), `start` (ISO time of 0:00,
 *    2026-01-01T08:00:00Z), `engine` (alert-engine options, e.g. `{"signalLossMs":10000}`),
 *    `rules` (the `ALERT_RULES_FILE` format), `end` (run the clock until then).
 * 2. Frames: `{"at":"0:05","frame":{…}}`, the frame in the contract's terms (telemetry.proto
 *    field names): `numerics` as `{"heart_rate":72,"spo2":97,…}` by sign name (ACVPU may be a
 *    letter, oxygen true/false), `alarms` `[{"code":"VF","priority":"HIGH","text":"…"}]`,
 *    `assessment`, `encounter_id`, `boot_id`… `seq` (per boot, in capture order, as a device
 *    numbers its frames) and `captured_at_ms` are filled in.
 *    A waveform is summarised: `"ecg":{"rhythm":"sinus|stemi_inferior|stemi_anterior","leads":12|1}`
 *    synthesises the streamed ECG (simulator/ecg.ts) at the frame's heart rate.
 *    `"every":"1s","until":"5:00"` repeats the frame; `"cycle":[{"for":"9s","numerics":{…}},…]`
 *    varies it in a repeating pattern; `"arrives":"+40s"` delivers it late.
 *    Every frame is encoded with `encodeFrame` and decoded by `FrameDecoder` (a case cannot feed
 *    what a device could not send).
 * 3. Gateway events: `{"at":"2:00","event":"link_down"}` … `link_up` (frames in between are
 *    delivered at link_up, in order, or lost with `"backlog":"drop"`), `offline` / `online`
 *    (the unit's will / status message), `ack` (`kind`, optional `key`, `by`: a clinician
 *    acknowledges the open alert), `restart` (`down`: the gateway stops, reopens its journal),
 *    `spo2_scale` (`scale` 1|2, `by`: a clinician sets the NEWS2 SpO2 scale for the encounter).
 * 4. Expectations (inline, or in `<case>.expect.ndjson` beside it):
 *    `{"expect":"raised","kind":"threshold","key":"spo2","priority":"high","from":"0:10","to":"0:40"}`;
 *    `expect` is `raised|updated|escalated|acknowledged|cleared` (at least one such event, or
 *    exactly `count`), `not-raised|not-cleared|not-escalated` (none), `no-alerts` (no event of any
 *    kind), `open|closed` (state `at` a time, with optional `priority`, `acknowledged`).
 *    Optional `message` must be contained in the alert's message. Times are gateway time from 0:00.
 * Lines may come in any order (a repeated frame spans time); what happens at one instant happens
 * in file order.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import protobuf from 'protobufjs'
import { catalogue, CodedError, createError, PROTO_PATH, type ErrorDefinition, type FrameInit } from '../decoders/index.js'
import { parseRulesConfig, ALERT_ENGINE_DEFAULTS, type ThresholdRule } from '../streams/index.js'
import { EcgSynth, type StemiKind } from '../simulator/index.js'

export type ReplayErrorCode = 'AMB_ERR_REPLAY_CASE'

export const REPLAY_ERRORS: Readonly<Record<ReplayErrorCode, ErrorDefinition<ReplayErrorCode>>> = catalogue<ReplayErrorCode>(
  createError('AMB_ERR_REPLAY_CASE', 'a clinical case file that cannot be run (bad line, unknown field or sign, a frame the decoder refuses)', 400)
)

/** A case file that cannot be run: names the file and line. */
export class ReplayError extends CodedError<ReplayErrorCode> {
  override readonly name = 'ReplayError'
  constructor (message: string, options: { cause?: unknown } = {}) { super(REPLAY_ERRORS.AMB_ERR_REPLAY_CASE, message, options) }
}

export type ExpectType =
  | 'raised' | 'updated' | 'escalated' | 'acknowledged' | 'cleared'
  | 'not-raised' | 'not-cleared' | 'not-escalated' | 'no-alerts' | 'open' | 'closed'
const EXPECT_TYPES: readonly ExpectType[] = ['raised', 'updated', 'escalated', 'acknowledged', 'cleared', 'not-raised', 'not-cleared', 'not-escalated', 'no-alerts', 'open', 'closed']

export interface Expectation {
  expect: ExpectType
  kind?: string
  key?: string
  priority?: string
  message?: string
  acknowledged?: boolean
  count?: number
  fromMs: number
  toMs: number
  /** open/closed: the instant. */
  atMs: number
  /** Where it was written (file:line) and as written, for the report. */
  where: string
  text: string
}

export type GatewayEvent =
  | { event: 'link_down', backlog: 'deliver' | 'drop' }
  | { event: 'link_up' }
  | { event: 'offline' } | { event: 'online' }
  | { event: 'ack', kind: string, key: string | null, by: string }
  | { event: 'restart', downMs: number }
  | { event: 'spo2_scale', scale: 1 | 2, by: string }

/** One thing that happens at a gateway instant, in file order within the instant. */
export type Input =
  | { type: 'frame', arriveMs: number, captureMs: number, frame: FrameInit, where: string }
  | { type: 'event', arriveMs: number, ev: GatewayEvent, where: string }

export interface ReplayCase {
  file: string
  id: string
  title: string
  patient: string
  sources: string[]
  unit: string
  startMs: number
  endMs: number
  engine: Record<string, number>
  rules: ThresholdRule[] | null
  inputs: Input[]
  expectations: Expectation[]
}

const DEFAULT_START = Date.parse('2026-01-01T08:00:00Z')
const HEADER_KEYS = new Set(['case', 'title', 'patient', 'sources', 'unit', 'encounter', 'boot', 'start', 'engine', 'rules', 'end', 'notes'])
const FRAME_LINE_KEYS = new Set(['at', 'frame', 'every', 'until', 'cycle', 'arrives', 'note'])
const EVENT_KEYS = new Set(['at', 'event', 'backlog', 'kind', 'key', 'by', 'down', 'scale', 'note'])
const EXPECT_KEYS = new Set(['expect', 'kind', 'key', 'priority', 'message', 'acknowledged', 'count', 'from', 'to', 'at', 'note'])
/** Numeric sugar for clinicians: ACVPU letters (RCP NEWS2 2017: A, new Confusion, V, P, U). */
const ACVPU: Readonly<Record<string, number>> = { A: 0, C: 1, V: 2, P: 3, U: 4 }
const RHYTHMS: Readonly<Record<string, StemiKind>> = { sinus: 'none', stemi_inferior: 'inferior', stemi_anterior: 'anterior' }

/**
 * A duration or instant: "1:30" (m:ss), "1:02:03" (h:mm:ss), "90s", "5m", "1h30m", "250ms", or a
 * number of seconds; a leading "+" or "-" is allowed. Returns ms.
 */
export function parseDuration (v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isFinite(v)) return Math.round(v * 1000)
  if (typeof v !== 'string') throw new Error(`${what} must be a time such as "1:30" or "90s", got ${JSON.stringify(v)}`)
  const s = v.trim()
  const sign = s.startsWith('-') ? -1 : 1
  const body = s.replace(/^[+-]/, '')
  if (/^\d+(:\d{1,2}){1,2}(\.\d+)?$/.test(body)) {
    const parts = body.split(':').map(Number)
    let ms = 0
    for (const p of parts) ms = ms * 60 + p
    return sign * Math.round(ms * 1000)
  }
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy
  let ms = 0
  let m: RegExpExecArray | null
  let used = 0
  while ((m = re.exec(body)) !== null) {
    const n = Number(m[1])
    ms += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n
    used = re.lastIndex
  }
  if (used === 0 || used !== body.length) throw new Error(`${what} must be a time such as "1:30" or "90s", got ${JSON.stringify(v)}`)
  return sign * Math.round(ms)
}

/** "m:ss.mmm" (or "h:mm:ss.mmm") of a gateway offset, for timelines. */
export function formatOffset (ms: number): string {
  const sign = ms < 0 ? '-' : ''
  const a = Math.abs(ms)
  const h = Math.floor(a / 3_600_000)
  const m = Math.floor(a / 60_000) % 60
  const s = Math.floor(a / 1000) % 60
  const frac = String(a % 1000).padStart(3, '0')
  const ss = String(s).padStart(2, '0')
  return h > 0 ? `${sign}${h}:${String(m).padStart(2, '0')}:${ss}.${frac}` : `${sign}${m}:${ss}.${frac}`
}

// The contract, by reflection: new proto fields work in cases without a change here.
const root = protobuf.loadSync(PROTO_PATH)
const FrameType = root.lookupType('ambulink.v1.TelemetryFrame')
const VitalSign = root.lookupEnum('ambulink.v1.VitalSign')

function camel (s: string): string { return s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()) }
function snake (s: string): string { return s.replace(/[A-Z]/g, c => '_' + c.toLowerCase()) }

/** Enum value by full name, by name without its prefix, or by number; case-insensitive. */
function enumValue (e: protobuf.Enum, v: unknown, path: string): number {
  if (typeof v === 'number' && Object.values(e.values).includes(v)) return v
  if (typeof v === 'string') {
    const want = v.toUpperCase()
    for (const [name, n] of Object.entries(e.values)) {
      if (name === want || name.endsWith('_' + want)) return n
    }
  }
  const names = Object.keys(e.values).map(n => n.replace(/^[A-Z]+(_[A-Z]+)*?_(?=[A-Z0-9]+$)/, ''))
  throw new Error(`${path}: ${JSON.stringify(v)} is not one of ${Object.keys(e.values).join(', ')} (or ${names.join(', ')})`)
}

/** Converts a JSON message in proto (snake_case) names to protobufjs' camelCase shape; unknown keys are errors. */
function toMessage (type: protobuf.Type, json: unknown, path: string): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${path} must be an object`)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    const field = type.fields[camel(k)]
    if (field === undefined) {
      throw new Error(`${path}.${k} is not a field of ${type.name} (fields: ${Object.keys(type.fields).map(snake).join(', ')})`)
    }
    field.resolve()
    const one = (x: unknown, p: string): unknown =>
      field.resolvedType instanceof protobuf.Enum
        ? enumValue(field.resolvedType, x, p)
        : field.resolvedType instanceof protobuf.Type ? toMessage(field.resolvedType, x, p) : x
    if (field.repeated) {
      if (!Array.isArray(v)) throw new Error(`${path}.${k} must be a list`)
      out[field.name] = v.map((x, i) => one(x, `${path}.${k}[${i}]`))
    } else {
      out[field.name] = one(v, `${path}.${k}`)
    }
  }
  return out
}

interface BuildContext { unit: string, encounter: string, boot: string, seqByBoot: Map<string, number>, ecg: Map<string, EcgSynth>, autoSeq: Set<FrameInit> }

/** Numerics sugar: `{"heart_rate":72,"consciousness_acvpu":"U","supplemental_o2":true}` → the contract's list. */
function numericsList (v: unknown, path: string): unknown[] {
  if (Array.isArray(v)) return v
  if (typeof v !== 'object' || v === null) throw new Error(`${path} must be an object of sign name → value`)
  return Object.entries(v as Record<string, unknown>).map(([name, raw]) => {
    enumValue(VitalSign, name, `${path}.${name}`)
    let value = raw
    let offset: unknown
    if (typeof raw === 'object' && raw !== null) ({ value, offset_ms: offset } = raw as { value?: unknown, offset_ms?: unknown })
    if (typeof value === 'string' && name === 'consciousness_acvpu' && ACVPU[value.toUpperCase()] !== undefined) value = ACVPU[value.toUpperCase()]
    if (typeof value === 'boolean') value = value ? 1 : 0
    if (typeof value !== 'number') throw new Error(`${path}.${name} must be a number, got ${JSON.stringify(raw)}`)
    return offset === undefined ? { sign: name, value } : { sign: name, value, offset_ms: offset }
  })
}

/** Builds one frame of the case at capture time `captureMs`, lasting `spanMs` (for a synthesised ECG). */
function buildFrame (spec: Record<string, unknown>, captureMs: number, spanMs: number, ctx: BuildContext, path: string): FrameInit {
  const { ecg, numerics, assessment, ...rest } = spec
  const json: Record<string, unknown> = { unit_id: ctx.unit, boot_id: ctx.boot, encounter_id: ctx.encounter, ...rest }
  if (numerics !== undefined) json.numerics = numericsList(numerics, `${path}.numerics`)
  if (assessment !== undefined) {
    if (typeof assessment !== 'object' || assessment === null) throw new Error(`${path}.assessment must be an object`)
    const a = { ...(assessment as Record<string, unknown>) }
    // Last known well as a time relative to the frame ("-3h") or an ISO instant.
    const lkw = a.last_known_well_ms
    if (typeof lkw === 'string') {
      const iso = Date.parse(lkw)
      a.last_known_well_ms = /^[+-]/.test(lkw) ? captureMs + parseDuration(lkw, `${path}.assessment.last_known_well_ms`) : iso
      if (Number.isNaN(a.last_known_well_ms)) throw new Error(`${path}.assessment.last_known_well_ms must be "-3h" or an ISO time`)
    }
    json.assessment = a
  }
  const wire = toMessage(FrameType, json, path)
  const boot = wire.bootId as string
  if (wire.seq === undefined) {
    const seq = (ctx.seqByBoot.get(boot) ?? 0) + 1
    ctx.seqByBoot.set(boot, seq)
    wire.seq = seq
    ctx.autoSeq.add(wire as FrameInit)
  }
  if (wire.capturedAtMs === undefined) wire.capturedAtMs = captureMs
  if (ecg !== undefined) wire.waveforms = synthEcg(ecg, wire, spanMs, ctx, `${path}.ecg`)
  return wire as FrameInit
}

function synthEcg (spec: unknown, wire: Record<string, unknown>, spanMs: number, ctx: BuildContext, path: string): unknown[] {
  const s = (spec ?? {}) as { rhythm?: string, leads?: number, hz?: number }
  const stemi = RHYTHMS[s.rhythm ?? 'sinus']
  if (stemi === undefined) throw new Error(`${path}.rhythm must be one of ${Object.keys(RHYTHMS).join(', ')}`)
  const leads = s.leads ?? 12
  if (leads !== 12 && leads !== 1) throw new Error(`${path}.leads must be 12 or 1`)
  const hz = s.hz ?? 500
  const key = `${s.rhythm ?? 'sinus'}/${leads}/${hz}`
  let synth = ctx.ecg.get(key)
  if (synth === undefined) {
    synth = new EcgSynth({ stemi, leadSet: leads, sampleRateHz: hz })
    ctx.ecg.set(key, synth)
  }
  const hr = (wire.numerics as Array<{ sign: number, value: number }> | undefined)?.find(n => n.sign === 1)?.value
  if (hr !== undefined && hr >= 20 && hr <= 250) synth.setHeartRate(hr)
  const n = Math.max(1, Math.round(spanMs * hz / 1000))
  const rows = synth.next(n)
  const out: unknown[] = []
  for (let lead = 1; lead <= 12; lead++) {
    if (leads === 1 && lead !== 2) continue
    out.push({ lead, sampleRateHz: hz, microvoltsPerLsb: synth.microvoltsPerLsb, offsetMs: 0, samples: Array.from(rows[lead - 1]!) })
  }
  return out
}

function checkKeys (o: Record<string, unknown>, allowed: Set<string>, what: string): void {
  for (const k of Object.keys(o)) if (!allowed.has(k)) throw new Error(`${what}: unknown key "${k}" (allowed: ${[...allowed].join(', ')})`)
}

function parseExpect (o: Record<string, unknown>, where: string, text: string): Expectation {
  checkKeys(o, EXPECT_KEYS, 'expect line')
  const expect = o.expect as ExpectType
  if (!EXPECT_TYPES.includes(expect)) throw new Error(`expect must be one of ${EXPECT_TYPES.join(', ')}`)
  const str = (k: string): string | undefined => {
    if (o[k] === undefined) return undefined
    if (typeof o[k] !== 'string') throw new Error(`${k} must be a string`)
    return o[k]
  }
  if ((expect === 'open' || expect === 'closed') !== (o.at !== undefined)) throw new Error('`at` is for open/closed (and only they need it); other expectations take from/to')
  if (expect !== 'no-alerts' && o.kind === undefined) throw new Error(`${expect} needs a kind`)
  if (o.count !== undefined && !(Number.isInteger(o.count) && (o.count as number) >= 0)) throw new Error('count must be a whole number ≥ 0')
  if (o.acknowledged !== undefined && typeof o.acknowledged !== 'boolean') throw new Error('acknowledged must be true or false')
  return {
    expect,
    kind: str('kind'),
    key: str('key'),
    priority: str('priority'),
    message: str('message'),
    acknowledged: o.acknowledged as boolean | undefined,
    count: o.count as number | undefined,
    fromMs: o.from === undefined ? -Infinity : parseDuration(o.from, 'from'),
    toMs: o.to === undefined ? Infinity : parseDuration(o.to, 'to'),
    atMs: o.at === undefined ? NaN : parseDuration(o.at, 'at'),
    where,
    text
  }
}

function parseEvent (o: Record<string, unknown>): GatewayEvent {
  checkKeys(o, EVENT_KEYS, 'event line')
  switch (o.event) {
    case 'link_down':
      if (o.backlog !== undefined && o.backlog !== 'deliver' && o.backlog !== 'drop') throw new Error('backlog must be "deliver" or "drop"')
      return { event: 'link_down', backlog: o.backlog === 'drop' ? 'drop' : 'deliver' }
    case 'link_up': case 'offline': case 'online':
      return { event: o.event }
    case 'ack':
      if (typeof o.kind !== 'string') throw new Error('ack needs the alert kind')
      if (typeof o.by !== 'string' || o.by.trim() === '') throw new Error('ack needs `by`: the clinician (a role, never a patient identifier)')
      return { event: 'ack', kind: o.kind, key: typeof o.key === 'string' ? o.key : null, by: o.by }
    case 'restart':
      return { event: 'restart', downMs: o.down === undefined ? 0 : parseDuration(o.down, 'down') }
    case 'spo2_scale':
      if (o.scale !== 1 && o.scale !== 2) throw new Error('spo2_scale needs `scale`: 1 or 2')
      if (typeof o.by !== 'string' || o.by.trim() === '') throw new Error('spo2_scale needs `by`: the clinician who decided it (a role)')
      return { event: 'spo2_scale', scale: o.scale, by: o.by }
    default:
      throw new Error(`event must be one of link_down, link_up, offline, online, ack, restart, spo2_scale; got ${JSON.stringify(o.event)}`)
  }
}

/** Reads a case (and its sibling `.expect.ndjson`, if any). Every problem is a ReplayError naming file:line. */
export async function loadCase (file: string): Promise<ReplayCase> {
  const lines = (await readFile(file, 'utf8')).split('\n').map((text, i) => ({ text, where: `${file}:${i + 1}` }))
  const sibling = file.replace(/\.ndjson$/, '.expect.ndjson')
  if (sibling !== file && existsSync(sibling)) {
    lines.push(...(await readFile(sibling, 'utf8')).split('\n').map((text, i) => ({ text, where: `${sibling}:${i + 1}`, expectOnly: true })))
  }
  let c: ReplayCase | null = null
  let ctx: BuildContext | null = null
  for (const line of lines) {
    const text = line.text.trim()
    if (text === '' || text.startsWith('#')) continue
    try {
      let o: Record<string, unknown>
      try { o = JSON.parse(text) as Record<string, unknown> } catch (err) { throw new Error(`not JSON: ${(err as Error).message}`) }
      if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error('each line must be a JSON object')
      if (c === null) {
        if (typeof o.case !== 'string') throw new Error('the first line must be the header: {"case":"slug","title":"…","sources":[…]}')
        checkKeys(o, HEADER_KEYS, 'header')
        const startMs = o.start === undefined ? DEFAULT_START : Date.parse(String(o.start))
        if (Number.isNaN(startMs)) throw new Error('start must be an ISO time')
        const engine: Record<string, number> = {}
        for (const [k, v] of Object.entries((o.engine ?? {}) as Record<string, unknown>)) {
          if (typeof (ALERT_ENGINE_DEFAULTS as Record<string, unknown>)[k] !== 'number' || typeof v !== 'number') throw new Error(`engine.${k} is not a numeric alert-engine option`)
          engine[k] = v
        }
        c = {
          file,
          id: o.case,
          title: String(o.title ?? ''),
          patient: String(o.patient ?? ''),
          sources: Array.isArray(o.sources) ? o.sources.map(String) : [],
          unit: String(o.unit ?? 'amb-1'),
          startMs,
          endMs: o.end === undefined ? 0 : parseDuration(o.end, 'end'),
          engine,
          rules: o.rules === undefined ? null : parseRulesConfig(o.rules, 'rules'),
          inputs: [],
          expectations: []
        }
        ctx = { unit: c.unit, encounter: String(o.encounter ?? 'enc-1'), boot: String(o.boot ?? 'boot-1'), seqByBoot: new Map(), ecg: new Map(), autoSeq: new Set() }
        continue
      }
      if (o.expect !== undefined) { c.expectations.push(parseExpect(o, line.where, text)); continue }
      if ('expectOnly' in line) throw new Error('an .expect.ndjson file holds only expect lines')
      const at = parseDuration(o.at, 'at')
      if (at < 0) throw new Error('at must not be before 0:00')
      if (o.event !== undefined) { c.inputs.push({ type: 'event', arriveMs: at, ev: parseEvent(o), where: line.where }); continue }
      if (o.frame === undefined) throw new Error('a line is a header, a frame ("frame"), a gateway event ("event") or an expectation ("expect")')
      checkKeys(o, FRAME_LINE_KEYS, 'frame line')
      addFrames(c, ctx!, o, at, line.where)
    } catch (err) {
      if (err instanceof ReplayError) throw err
      throw new ReplayError(`${line.where}: ${(err as Error).message}`, { cause: err })
    }
  }
  if (c === null) throw new ReplayError(`${file}: empty case (no header line)`)
  if (ctx !== null) numberInCaptureOrder(c, ctx.autoSeq)
  return c
}

/**
 * A device numbers its frames as it captures them (seq +1 per frame within a boot), and the
 * engine orders a boot's frames by seq: the seqs filled in follow capture time per boot (file
 * order at one instant), whatever order the lines come in or the frames arrive in.
 */
function numberInCaptureOrder (c: ReplayCase, auto: Set<FrameInit>): void {
  const frames = c.inputs.flatMap(i => i.type === 'frame' && auto.has(i.frame) ? [i] : [])
  frames.sort((p, q) => p.captureMs - q.captureMs)
  const next = new Map<string, number>()
  for (const { frame } of frames) {
    const boot = String(frame.bootId)
    const seq = (next.get(boot) ?? 0) + 1
    next.set(boot, seq)
    frame.seq = seq
  }
}

function addFrames (c: ReplayCase, ctx: BuildContext, o: Record<string, unknown>, at: number, where: string): void {
  const every = o.every === undefined ? 0 : parseDuration(o.every, 'every')
  const until = o.until === undefined ? at : parseDuration(o.until, 'until')
  if ((o.every === undefined) !== (o.until === undefined)) throw new Error('every and until go together')
  if (every < 0 || (o.every !== undefined && every < 100)) throw new Error('every must be at least 100ms')
  if (until < at) throw new Error('until is before at')
  const late = o.arrives === undefined ? 0 : parseDuration(o.arrives, 'arrives')
  if (late < 0) throw new Error('arrives must be "+…" (frames cannot arrive before they are captured)')
  const cycle = o.cycle === undefined ? null : o.cycle
  let period = 0
  const phases: Array<{ forMs: number, over: Record<string, unknown> }> = []
  if (cycle !== null) {
    if (!Array.isArray(cycle) || cycle.length === 0) throw new Error('cycle must be a non-empty list of {"for":"9s", …frame fields}')
    for (const p of cycle as Array<Record<string, unknown>>) {
      const { for: forTime, ...over } = p
      const forMs = parseDuration(forTime, 'cycle[].for')
      if (forMs <= 0) throw new Error('cycle[].for must be positive')
      phases.push({ forMs, over })
      period += forMs
    }
  }
  const base = o.frame as Record<string, unknown>
  for (let t = at; t <= until; t += every === 0 ? Infinity : every) {
    let spec = base
    if (period > 0) {
      let ph = (t - at) % period
      const p = phases.find(x => (ph -= x.forMs) < 0)!
      spec = { ...base, ...p.over }
      if (base.numerics !== undefined && p.over.numerics !== undefined) {
        spec.numerics = { ...(base.numerics as object), ...(p.over.numerics as object) }
      }
    }
    const frame = buildFrame(spec, c.startMs + t, every === 0 ? 1000 : every, ctx, 'frame')
    c.inputs.push({ type: 'frame', arriveMs: t + late, captureMs: t, frame, where })
  }
}
