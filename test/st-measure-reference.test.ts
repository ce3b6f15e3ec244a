// measureSt and detectQrs form only the median-beat samples their search reads, take the QRS
// threshold's percentile without a sort and carry sort orders between columns (issue 12, CPU
// per frame): none of that may change a result. Here they are held equal, field for field, to
// the plain computation written out below (every median formed by a full sort, the spatial
// velocity over the whole beat, the percentile from a sorted array) on the simulator's normal,
// inferior and anterior ECGs at several rates, sample rates and noise levels, on shortened
// windows and on random samples.
import { describe, expect, it } from 'vitest'
import { EcgSynth, type StemiKind } from '../simulator/ecg.js'
import { detectQrs, measureSt, type StMeasurement } from '../streams/alerts/st-measure.js'

type Leads = ReadonlyArray<ArrayLike<number>>

function plainDetectQrs (leads: Leads, fs: number): number[] {
  const n = leads[0]!.length
  const e = new Float32Array(n)
  for (const l of leads) for (let i = 1; i < n - 1; i++) e[i]! += Math.abs(l[i + 1]! - l[i - 1]!)
  const w = Math.max(1, Math.round(0.04 * fs))
  const sm = new Float32Array(n)
  let acc = 0
  for (let i = 0; i < n; i++) {
    acc += e[i]!
    if (i >= w) acc -= e[i - w]!
    sm[Math.max(0, i - (w >> 1))] = acc / w
  }
  const sub = new Float32Array(Math.ceil(n / 4))
  for (let k = 0; k < sub.length; k++) sub[k] = sm[k * 4]!
  sub.sort()
  const thr = 0.4 * sub[Math.floor(0.98 * (sub.length - 1))]!
  const refractory = Math.round(0.2 * fs)
  const peaks: number[] = []
  let i = 0
  while (i < n) {
    if (sm[i]! < thr) { i++; continue }
    let m = i
    while (i < n && sm[i]! >= thr) { if (sm[i]! > sm[m]!) m = i; i++ }
    const last = peaks[peaks.length - 1]
    if (last !== undefined && m - last < refractory) {
      if (sm[m]! > sm[last]!) peaks[peaks.length - 1] = m
    } else peaks.push(m)
  }
  return peaks
}

function plainMeasureSt (leads: Leads, fs: number): StMeasurement {
  const n = leads[0]!.length
  const peaks = plainDetectQrs(leads, fs)
  const pre = Math.round(0.26 * fs)
  const post = Math.round(0.3 * fs)
  const usable = peaks.filter(p => p - pre >= 0 && p + post < n)
  if (usable.length < 4) return { ok: false, reason: `${usable.length} complete beats, need 4` }
  let rrSum = 0
  for (let i = 1; i < peaks.length; i++) rrSum += peaks[i]! - peaks[i - 1]!
  const heartRateBpm = peaks.length > 1 ? 60 * fs * (peaks.length - 1) / rrSum : 0
  const len = pre + post + 1
  const med = leads.map(l => Float64Array.from({ length: len }, (_, k) => {
    const col = usable.map(p => l[p - pre + k]!).sort((a, b) => a - b)
    const h = col.length >> 1
    return col.length % 2 === 1 ? col[h]! : (col[h - 1]! + col[h]!) / 2
  }))
  const vel = new Float64Array(len)
  const d = Math.max(1, Math.round(0.004 * fs))
  for (const m of med) for (let i = d; i < len - d; i++) vel[i]! += Math.abs(m[i + d]! - m[i - d]!)
  let peak = pre
  for (let i = pre - Math.round(0.06 * fs); i <= pre + Math.round(0.06 * fs); i++) if (vel[i]! > vel[peak]!) peak = i
  const thr = 0.12 * vel[peak]!
  const hold = Math.max(2, Math.round(0.01 * fs))
  let onset = peak
  for (let run = 0; onset > hold && run < hold; onset--) run = vel[onset]! < thr ? run + 1 : 0
  onset += hold
  let j = peak
  for (let run = 0; j < len - hold && run < hold; j++) run = vel[j]! < thr ? run + 1 : 0
  j -= hold
  if (peak - onset > 0.12 * fs || j - peak > 0.14 * fs) return { ok: false, reason: 'QRS boundaries not found (wide or noisy QRS)' }
  const seg = Math.max(2, Math.round(0.02 * fs))
  let best = -1
  let bestSum = Infinity
  for (let s = Math.max(1, onset - Math.round(0.12 * fs)); s + seg <= onset; s++) {
    let sum = 0
    for (let i = s; i < s + seg; i++) sum += vel[i]!
    if (sum < bestSum) { bestSum = sum; best = s }
  }
  if (best < 0) return { ok: false, reason: 'no PR segment before the QRS' }
  const at = j + Math.round(60 * fs / 1000)
  if (at + 2 >= len) return { ok: false, reason: 'J+60 ms beyond the median beat' }
  const stUv = med.map(m => {
    let b = 0
    for (let i = best; i < best + seg; i++) b += m[i]!
    b /= seg
    let v = 0
    for (let i = at - 2; i <= at + 2; i++) v += m[i]!
    return Math.round(v / 5 - b)
  })
  const ms = (i: number): number => Math.round((i - pre) * 1000 / fs)
  return { ok: true, stUv, beats: usable.length, heartRateBpm, qrsOnsetMs: ms(onset), jPointMs: ms(j), baselineMs: ms(best) }
}

interface Case { name: string, leads: Leads, fs: number }
/** Windows by group (one test each: a test per window floods a loaded machine's test runner). */
const groups = new Map<string, Case[]>()
const add = (group: string, c: Case): void => { groups.set(group, [...(groups.get(group) ?? []), c]) }
for (const fs of [250, 500, 1000]) {
  for (const stemi of ['none', 'inferior', 'anterior'] as StemiKind[]) {
    for (const bpm of [45, 72, 110, 165]) {
      for (const noise of [0, 15, 30]) {
        const leads = new EcgSynth({ stemi, heartRateBpm: bpm, seed: bpm + noise, noiseMicrovolts: noise, sampleRateHz: fs }).next(10 * fs)
        // Int16Array as the engine passes them; a shortened Int32 window as other callers may.
        add(`${stemi} at ${fs} Hz`, { name: `${bpm} bpm, ${noise} µV`, leads: leads.map(a => Int16Array.from(a)), fs })
        if (noise === 15) add(`${stemi} at ${fs} Hz`, { name: `${bpm} bpm, 6 s`, leads: leads.map(a => Int32Array.from(a).subarray(0, 6 * fs)), fs })
      }
    }
  }
}
let seed = 12345
const random = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff }
for (let r = 0; r < 24; r++) {
  add('random samples', { name: `random ${r}`, leads: Array.from({ length: 12 }, () => Int16Array.from({ length: 5000 }, () => Math.round((random() - 0.5) * 400 * (r % 6)))), fs: 500 })
}
const all = [...groups.values()].flat()

describe('measureSt equals the plain median-beat computation', () => {
  it('covers measurable and refused windows', () => {
    const ok = all.filter(c => plainMeasureSt(c.leads, c.fs).ok).length
    expect(ok).toBeGreaterThan(all.length / 2)
    expect(ok).toBeLessThan(all.length)
  })

  it.each([...groups.keys()])('%s', group => {
    for (const c of groups.get(group)!) {
      expect(detectQrs(c.leads, c.fs), c.name).toEqual(plainDetectQrs(c.leads, c.fs))
      expect(measureSt(c.leads, c.fs), c.name).toEqual(plainMeasureSt(c.leads, c.fs))
    }
  })
})
