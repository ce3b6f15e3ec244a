/**
 * The last 30 minutes of each vital sign as small charts. Each chart's background is shaded by
 * the NEWS2 score a value at that height would get (yellow 1, orange 2, red 3), computed with the
 * alert engine's own scoring functions — bundled from streams/alerts/news2.ts, so the page has no
 * second copy of the RCP thresholds. A glance shows where a sign is and where it is heading.
 */
import {
  scorePulse, scoreRespirationRate, scoreSpo2Scale1, scoreSystolic, scoreTemperature
} from '../../streams/live/protocol.js'
import { TREND_SIGNS, type TrendSign } from '../../streams/live/protocol.js'
import { h } from './dom.js'
import type { Trend, UnitModel } from './store.js'

const WINDOW_MS = 30 * 60_000
export const SCORE_FILL = ['transparent', 'rgba(250, 204, 21, 0.16)', 'rgba(249, 115, 22, 0.22)', 'rgba(239, 68, 68, 0.26)']

interface ChartSpec {
  title: string
  unit: string
  min: number
  max: number
  /** Lines: trend column and colour; the first is the headline. */
  lines: Array<{ sign: TrendSign, color: string, dash?: number[] }>
  /** NEWS2 scorer for the background bands. */
  score?: (v: number) => number
  /** Draw as bars between two columns (systolic-diastolic) instead of lines. */
  bars?: [TrendSign, TrendSign]
}

const SPECS: ChartSpec[] = [
  { title: 'Heart rate', unit: 'bpm', min: 30, max: 180, lines: [{ sign: 'heart_rate', color: '#3ee07a' }, { sign: 'pulse_rate', color: '#93c5fd', dash: [3, 3] }], score: scorePulse },
  { title: 'SpO₂', unit: '%', min: 80, max: 100, lines: [{ sign: 'spo2', color: '#67e8f9' }], score: scoreSpo2Scale1 },
  { title: 'Blood pressure', unit: 'mmHg', min: 40, max: 220, lines: [{ sign: 'nibp_mean', color: '#fca5a5' }], bars: ['nibp_systolic', 'nibp_diastolic'], score: scoreSystolic },
  { title: 'Resp. rate', unit: '/min', min: 0, max: 40, lines: [{ sign: 'respiratory_rate', color: '#fde047' }], score: scoreRespirationRate },
  { title: 'EtCO₂', unit: 'mmHg', min: 0, max: 60, lines: [{ sign: 'etco2', color: '#e5e7eb' }] },
  { title: 'Temperature', unit: '°C', min: 34, max: 41, lines: [{ sign: 'temperature', color: '#fdba74' }], score: scoreTemperature }
]

const col = (s: TrendSign): number => TREND_SIGNS.indexOf(s)

export class TrendView {
  readonly el: HTMLDivElement
  private readonly canvases: HTMLCanvasElement[] = []
  private readonly news2Canvas: HTMLCanvasElement

  constructor () {
    this.el = h('div', { class: 'trends' })
    for (const spec of SPECS) {
      const c = h('canvas', { class: 'trend-canvas', role: 'img', 'aria-label': `${spec.title} trend, last 30 minutes` })
      this.canvases.push(c)
      this.el.append(h('figure', { class: 'trend' }, h('figcaption', {}, spec.title, h('span', { class: 'unit' }, ` ${spec.unit}`)), c))
    }
    this.news2Canvas = h('canvas', { class: 'trend-canvas', role: 'img', 'aria-label': 'NEWS2 trend, last 30 minutes' })
    this.el.append(h('figure', { class: 'trend' }, h('figcaption', {}, 'NEWS2', h('span', { class: 'unit' }, ' total')), this.news2Canvas))
  }

  render (m: UnitModel, nowMs: number): void {
    SPECS.forEach((spec, i) => { draw(this.canvases[i]!, spec, m.trend, nowMs) })
    drawNews2(this.news2Canvas, m.news2History, nowMs)
  }
}

function setup (c: HTMLCanvasElement): { g: CanvasRenderingContext2D, w: number, hgt: number, dpr: number } {
  const dpr = window.devicePixelRatio || 1
  const w = Math.max(120, c.clientWidth)
  const hgt = Math.max(60, c.clientHeight)
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) {
    c.width = Math.round(w * dpr)
    c.height = Math.round(hgt * dpr)
  }
  const g = c.getContext('2d')!
  g.setTransform(dpr, 0, 0, dpr, 0, 0)
  g.clearRect(0, 0, w, hgt)
  return { g, w, hgt, dpr }
}

function axes (g: CanvasRenderingContext2D, w: number, hgt: number, min: number, max: number, score?: (v: number) => number): (v: number) => number {
  const y = (v: number): number => hgt - 4 - (v - min) / (max - min) * (hgt - 8)
  if (score !== undefined) {
    for (let py = 0; py < hgt; py++) {
      const v = min + (hgt - 4 - py) / (hgt - 8) * (max - min)
      const s = score(v)
      if (s > 0) { g.fillStyle = SCORE_FILL[s]!; g.fillRect(0, py, w, 1) }
    }
  }
  g.fillStyle = '#9ca3af'
  g.font = '10px system-ui, sans-serif'
  g.fillText(String(max), 2, 11)
  g.fillText(String(min), 2, hgt - 6)
  // 10-minute ticks, labelled in minutes before now.
  g.strokeStyle = 'rgba(156,163,175,0.25)'
  g.beginPath()
  for (let k = 1; k < 3; k++) { const x = Math.round(w * k / 3) + 0.5; g.moveTo(x, 0); g.lineTo(x, hgt) }
  g.stroke()
  g.fillStyle = '#6b7280'
  for (let k = 1; k < 3; k++) g.fillText(`−${30 - k * 10}′`, Math.round(w * k / 3) + 3, hgt - 6)
  return y
}

function draw (c: HTMLCanvasElement, spec: ChartSpec, trend: Trend | null, nowMs: number): void {
  const { g, w, hgt } = setup(c)
  const y = axes(g, w, hgt, spec.min, spec.max, spec.score)
  if (trend === null) return
  const x = (t: number): number => w - (nowMs - t) / WINDOW_MS * w
  const clampY = (v: number): number => Math.min(hgt - 1, Math.max(1, y(v)))
  if (spec.bars !== undefined) {
    const [hiCol, loCol] = [col(spec.bars[0]), col(spec.bars[1])]
    g.strokeStyle = '#f87171'
    g.lineWidth = 3
    g.beginPath()
    for (let k = 0; k < trend.t.length; k++) {
      const hi = trend.cols[hiCol]![k]
      const lo = trend.cols[loCol]![k]
      if (hi === null || hi === undefined) continue
      const xx = x(trend.t[k]!)
      if (xx < 0) continue
      g.moveTo(xx, clampY(hi))
      g.lineTo(xx, clampY(lo ?? hi))
    }
    g.stroke()
  }
  for (const line of spec.lines) {
    const data = trend.cols[col(line.sign)]!
    g.strokeStyle = line.color
    g.lineWidth = 2
    g.setLineDash(line.dash ?? [])
    g.beginPath()
    let pen = false
    let lastT = 0
    for (let k = 0; k < trend.t.length; k++) {
      const v = data[k]
      const t = trend.t[k]!
      if (v === null || v === undefined) continue
      const xx = x(t)
      if (xx < 0) continue
      // Break the line across a gap of more than 10 s rather than bridge unmeasured time.
      if (!pen || t - lastT > 10_000) g.moveTo(xx, clampY(v))
      else g.lineTo(xx, clampY(v))
      if (spec.bars !== undefined) g.rect(xx - 1.5, clampY(v) - 1.5, 3, 3)
      pen = true
      lastT = t
    }
    g.stroke()
    g.setLineDash([])
  }
}

function drawNews2 (c: HTMLCanvasElement, points: UnitModel['news2History'], nowMs: number): void {
  const { g, w, hgt } = setup(c)
  const y = axes(g, w, hgt, 0, 15, v => v >= 7 ? 3 : v >= 5 ? 2 : v >= 1 ? 0 : 0)
  const x = (t: number): number => w - (nowMs - t) / WINDOW_MS * w
  g.lineWidth = 2
  g.strokeStyle = '#f8fafc'
  g.beginPath()
  let pen = false
  for (const p of points) {
    if (p.total === null || x(p.t) < 0) continue
    const yy = Math.max(1, y(Math.min(15, p.total)))
    if (!pen) g.moveTo(x(p.t), yy)
    else g.lineTo(x(p.t), yy)
    pen = true
  }
  g.stroke()
  // Partial totals are lower bounds: hollow markers.
  for (const p of points) {
    if (p.total === null || !p.partial || x(p.t) < 0) continue
    g.strokeStyle = '#cbd5e1'
    g.strokeRect(x(p.t) - 2, y(Math.min(15, p.total)) - 2, 4, 4)
  }
}
