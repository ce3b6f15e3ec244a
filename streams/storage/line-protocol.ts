/**
 * Frame → InfluxDB line protocol, per the storage contract (DESIGN.md). Timestamps are in
 * microseconds. The output is a pure function of the frame, so a replayed frame writes exactly
 * the same points (same series, same timestamps, same values): writes are idempotent.
 *
 * Ids were validated against a tag-safe pattern by the decoder, so no escaping is needed.
 * An empty encounter ("" before dispatch assigns one) is written without the tag, which
 * InfluxQL reads as the empty string.
 *
 * Hot path: ingest calls writeFrameLines() for every frame, straight into the bytes of the spool
 * record (LineBuffer with the record header as headroom). ECG is written per sample instant
 * with preencoded field names and digit-by-digit integers: no per-sample strings.
 */
import { LEAD_FIELDS, VITAL_SIGN_BY_NUMBER, type Frame, type WireWaveform } from '../../decoders/index.js'
import { LineBuffer, writeInt } from './line-buffer.js'

export interface FrameLines {
  /** Line protocol, newline-terminated lines. */
  text: string
  /** Number of points (lines) in `text`. */
  points: number
  /** ECG points among them (one per sample instant). */
  ecgPoints: number
}

export interface FrameLineCounts {
  points: number
  ecgPoints: number
}

const NL = 0x0a
const SPACE = 0x20

/** `<lead>=` and `,<lead>=` per Lead number, as bytes. */
const FIELD_FIRST: Buffer[] = LEAD_FIELDS.map(f => Buffer.from(`${f ?? ''}=`, 'latin1'))
const FIELD_NEXT: Buffer[] = LEAD_FIELDS.map(f => Buffer.from(`,${f ?? ''}=`, 'latin1'))

function tags (f: Frame): string {
  return f.encounterId === '' ? `,unit=${f.unitId}` : `,unit=${f.unitId},encounter=${f.encounterId}`
}

/** Rounds microvolts to 1/1000 µV so float32 scale factors do not print 17 digits. */
function uv (sample: number, lsb: number): number {
  return lsb === 1 ? sample : Math.round(sample * lsb * 1000) / 1000
}

/** The frame's lines as text (tests, tools); ingest uses writeFrameLines. */
export function frameToLines (f: Frame): FrameLines {
  const out = new LineBuffer(4096)
  const counts = writeFrameLines(f, out)
  return { text: out.toString(), ...counts }
}

/** Appends the frame's lines to `out`. */
export function writeFrameLines (f: Frame, out: LineBuffer): FrameLineCounts {
  const t = tags(f)
  const baseUs = f.capturedAtMs * 1000
  let points = 0

  // vitals: one point per distinct instant, all signs measured at that instant as fields.
  if (f.numerics.length > 0) {
    const byTime = new Map<number, string>()
    for (const n of f.numerics) {
      const field = VITAL_SIGN_BY_NUMBER[n.sign]!.field
      const prev = byTime.get(n.offsetMs)
      byTime.set(n.offsetMs, prev === undefined ? `${field}=${n.value}` : `${prev},${field}=${n.value}`)
    }
    for (const [offset, fields] of byTime) {
      out.ascii(`vitals${t} ${fields} ${baseUs + offset * 1000}\n`)
      points++
    }
  }

  if (f.position !== null) {
    const p = f.position
    out.ascii(`position${t} latitude=${p.latitude},longitude=${p.longitude},speed_mps=${p.speedMps},heading_deg=${p.headingDeg} ${baseUs + p.offsetMs * 1000}\n`)
    points++
  }

  if (f.assessment !== null) {
    const a = f.assessment
    // Extension of the storage contract: the paramedic's findings, for the record and for alerts.
    out.ascii(`assessment${t} stemi_suspected=${a.stemiSuspected},lams_score=${a.lamsScore}i,fast_positive=${a.fastPositive},last_known_well_ms=${a.lastKnownWellMs}i,age_years=${a.ageYears}i,sex="${a.sex.replace(/["\\]/g, '')}" ${baseUs}\n`)
    points++
  }

  let ecgPoints = 0
  if (f.waveforms.length > 0) {
    ecgPoints = isUniform(f.waveforms) ? uniformEcg(f.waveforms, t, baseUs, out) : mergedEcg(f.waveforms, t, baseUs, out)
    points += ecgPoints
  }
  return { points, ecgPoints }
}

/**
 * The points writeFrameLines() writes for `f`, without writing them: ingest spools the frame
 * itself (frame records, spool.ts) and needs the count for the record header.
 */
export function countFrameLines (f: Frame): FrameLineCounts {
  let points = 0
  if (f.numerics.length > 0) {
    const offsets = new Set<number>()
    for (const n of f.numerics) offsets.add(n.offsetMs)
    points += offsets.size
  }
  if (f.position !== null) points++
  if (f.assessment !== null) points++
  let ecgPoints = 0
  if (f.waveforms.length > 0) {
    if (isUniform(f.waveforms)) {
      ecgPoints = f.waveforms[0]!.samples.length
    } else {
      // mergedEcg(): one line per distinct instant, computed the same way.
      const baseUs = f.capturedAtMs * 1000
      const instants = new Set<number>()
      for (const w of f.waveforms) {
        const periodUs = 1e6 / w.sampleRateHz
        const startUs = baseUs + w.offsetMs * 1000
        for (let i = 0; i < w.samples.length; i++) instants.add(startUs + Math.round(i * periodUs))
      }
      ecgPoints = instants.size
    }
    points += ecgPoints
  }
  return { points, ecgPoints }
}

function isUniform (waves: WireWaveform[]): boolean {
  const first = waves[0]!
  for (let l = 1; l < waves.length; l++) {
    const w = waves[l]!
    if (w.sampleRateHz !== first.sampleRateHz || w.offsetMs !== first.offsetMs || w.samples.length !== first.samples.length) return false
  }
  return true
}

/** The common case (all leads sampled together): one pass, one line per instant. */
function uniformEcg (waves: WireWaveform[], t: string, baseUs: number, out: LineBuffer): number {
  const first = waves[0]!
  const n = first.samples.length
  const leads = waves.length
  const periodUs = 1e6 / first.sampleRateHz
  const startUs = baseUs + first.offsetMs * 1000
  const prefix = Buffer.from(`ecg${t} `, 'latin1')
  const names: Buffer[] = new Array<Buffer>(leads)
  const samples: Array<ArrayLike<number>> = new Array<ArrayLike<number>>(leads)
  let allUnitLsb = true
  for (let l = 0; l < leads; l++) {
    const w = waves[l]!
    names[l] = l === 0 ? FIELD_FIRST[w.lead]! : FIELD_NEXT[w.lead]!
    samples[l] = w.samples
    if (w.microvoltsPerLsb !== 1) allUnitLsb = false
  }
  if (!allUnitLsb) return scaledEcg(waves, prefix, names, startUs, periodUs, out)
  // Bound on one line: prefix, per lead ",name=" (≤ 5) + int32 (≤ 11), space, timestamp, \n.
  out.ensure(n * (prefix.length + leads * 16 + 20))
  // Field names are copied byte by byte: for 2-4 bytes a call costs more than the bytes.
  const b = out.buf
  let at = out.length
  for (let i = 0; i < n; i++) {
    b.set(prefix, at)
    at += prefix.length
    for (let l = 0; l < leads; l++) {
      const name = names[l]!
      for (let k = 0; k < name.length; k++) b[at++] = name[k]!
      at = writeInt(b, at, samples[l]![i]!)
    }
    b[at++] = SPACE
    at = writeInt(b, at, startUs + Math.round(i * periodUs))
    b[at++] = NL
  }
  out.length = at
  return n
}

/** Uniform leads with a scale other than 1 µV per LSB: values may have decimals. */
function scaledEcg (waves: WireWaveform[], prefix: Buffer, names: Buffer[], startUs: number, periodUs: number, out: LineBuffer): number {
  const n = waves[0]!.samples.length
  for (let i = 0; i < n; i++) {
    out.bytes(prefix)
    for (let l = 0; l < waves.length; l++) {
      const w = waves[l]!
      out.bytes(names[l]!)
      out.num(uv(w.samples[i]!, w.microvoltsPerLsb))
    }
    out.byte(SPACE)
    out.int(startUs + Math.round(i * periodUs))
    out.byte(NL)
  }
  return n
}

/** Leads at different rates or offsets: merge by instant. */
function mergedEcg (waves: WireWaveform[], t: string, baseUs: number, out: LineBuffer): number {
  const byTime = new Map<number, string>()
  for (const w of waves) {
    const name = LEAD_FIELDS[w.lead]!
    const periodUs = 1e6 / w.sampleRateHz
    const startUs = baseUs + w.offsetMs * 1000
    for (let i = 0; i < w.samples.length; i++) {
      const ts = startUs + Math.round(i * periodUs)
      const prev = byTime.get(ts)
      const kv = name + '=' + uv(w.samples[i]!, w.microvoltsPerLsb)
      byTime.set(ts, prev === undefined ? kv : prev + ',' + kv)
    }
  }
  for (const ts of [...byTime.keys()].sort((a, b) => a - b)) out.ascii(`ecg${t} ${byTime.get(ts)!} ${ts}\n`)
  return byTime.size
}
