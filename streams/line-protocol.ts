/**
 * Frame → InfluxDB line protocol, per the storage contract (DESIGN.md). Timestamps are in
 * microseconds. The output is a pure function of the frame, so a replayed frame writes exactly
 * the same points (same series, same timestamps, same values): writes are idempotent.
 *
 * Ids were validated against a tag-safe pattern by the decoder, so no escaping is needed.
 * An empty encounter ("" before dispatch assigns one) is written without the tag, which
 * InfluxQL reads as the empty string.
 */
import { LEAD_FIELDS, VITAL_SIGN_BY_NUMBER, type Frame, type WireWaveform } from '../decoders/index.js'

export interface FrameLines {
  /** Line protocol, newline-terminated lines. */
  text: string
  /** Number of points (lines) in `text`. */
  points: number
  /** ECG points among them (one per sample instant). */
  ecgPoints: number
}

function tags (f: Frame): string {
  return f.encounterId === '' ? `,unit=${f.unitId}` : `,unit=${f.unitId},encounter=${f.encounterId}`
}

/** Rounds microvolts to 1/1000 µV so float32 scale factors do not print 17 digits. */
function uv (sample: number, lsb: number): number {
  return lsb === 1 ? sample : Math.round(sample * lsb * 1000) / 1000
}

export function frameToLines (f: Frame): FrameLines {
  const t = tags(f)
  const baseUs = f.capturedAtMs * 1000
  let text = ''
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
      text += `vitals${t} ${fields} ${baseUs + offset * 1000}\n`
      points++
    }
  }

  if (f.position !== null) {
    const p = f.position
    text += `position${t} latitude=${p.latitude},longitude=${p.longitude},speed_mps=${p.speedMps},heading_deg=${p.headingDeg} ${baseUs + p.offsetMs * 1000}\n`
    points++
  }

  if (f.assessment !== null) {
    const a = f.assessment
    // Extension of the storage contract: the paramedic's findings, for the record and for alerts.
    text += `assessment${t} stemi_suspected=${a.stemiSuspected},lams_score=${a.lamsScore}i,fast_positive=${a.fastPositive},last_known_well_ms=${a.lastKnownWellMs}i,age_years=${a.ageYears}i,sex="${a.sex.replace(/["\\]/g, '')}" ${baseUs}\n`
    points++
  }

  let ecgPoints = 0
  if (f.waveforms.length > 0) {
    const ecg = ecgLines(f.waveforms, t, baseUs)
    text += ecg.text
    ecgPoints = ecg.points
    points += ecgPoints
  }
  return { text, points, ecgPoints }
}

function ecgLines (waves: WireWaveform[], t: string, baseUs: number): { text: string, points: number } {
  const first = waves[0]!
  const uniform = waves.every(w => w.sampleRateHz === first.sampleRateHz && w.offsetMs === first.offsetMs && w.samples.length === first.samples.length)
  if (uniform) {
    // The common case (all leads sampled together): one pass, one line per instant.
    const names = waves.map(w => LEAD_FIELDS[w.lead]!)
    const n = first.samples.length
    const periodUs = 1e6 / first.sampleRateHz
    const startUs = baseUs + first.offsetMs * 1000
    const prefix = `ecg${t} `
    let text = ''
    for (let i = 0; i < n; i++) {
      let line = prefix
      for (let l = 0; l < waves.length; l++) {
        const w = waves[l]!
        if (l > 0) line += ','
        line += names[l] + '=' + uv(w.samples[i]!, w.microvoltsPerLsb)
      }
      text += line + ' ' + (startUs + Math.round(i * periodUs)) + '\n'
    }
    return { text, points: n }
  }
  // Leads at different rates or offsets: merge by instant.
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
  let text = ''
  for (const ts of [...byTime.keys()].sort((a, b) => a - b)) text += `ecg${t} ${byTime.get(ts)!} ${ts}\n`
  return { text, points: byTime.size }
}
