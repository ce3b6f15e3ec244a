/**
 * Live ECG on canvas, drawn as a monitor sweeps: 25 mm/s, 10 mm/mV, on the standard grid (1 mm
 * minor, 5 mm major), lead II alone or all 12 leads in the standard 3 × 4 layout (I II III |
 * aVR aVL aVF | V1 V2 V3 | V4 V5 V6): 75 mm tall, so the whole 12-lead stays above the fold of a
 * 1280×720 screen under the top bar and the alert banners.
 *
 * Scale: 4 CSS px per mm (a 96 dpi screen has 3.8, so the paper looks life-size on an ordinary
 * monitor and the grid lands on whole pixels), times devicePixelRatio for the canvas backing store
 * so the trace stays sharp on high-density screens.
 *
 * Two stacked canvases: the grid is drawn once (and on resize); the trace canvas only ever gets
 * the samples that are new since the last animation frame, plus a small erase band ahead of the
 * pen. A frame at 60 Hz therefore draws ~8 samples per lead — 12 leads at 500 Hz cost next to
 * nothing, and the page never falls behind. Samples are played out at their real rate ~0.4 s
 * behind the newest one, which hides the 250 ms frame cadence; after the tab was hidden the pen
 * jumps ahead instead of racing to catch up.
 */
import { LEAD_NAMES, NO_SAMPLE } from '../../streams/live/protocol.js'
import type { EcgBuffer } from './store.js'

export const CSS_PX_PER_MM = 4
const MM_PER_S = 25
const MM_PER_MV = 10
const ERASE_MM = 6
const LATENCY_S = 0.4

interface Cell { lead: number, x0: number, y0: number, w: number, h: number, sweep: number }

export type EcgLayout = 'II' | '12'

export class EcgView {
  readonly el: HTMLDivElement
  private readonly grid: HTMLCanvasElement
  private readonly trace: HTMLCanvasElement
  private readonly ctx: CanvasRenderingContext2D
  private cells: Cell[] = []
  private mm = CSS_PX_PER_MM
  private pxPerSample = 1
  private buf: EcgBuffer | null = null
  /** Absolute index of the next sample to draw; -1 = not started. */
  private drawn = -1
  private acc = 0
  private last = 0
  private raf = 0
  private readonly resize: ResizeObserver

  constructor (private readonly source: () => EcgBuffer | null, private layout: EcgLayout = 'II') {
    this.grid = document.createElement('canvas')
    this.trace = document.createElement('canvas')
    this.grid.className = 'ecg-grid'
    this.trace.className = 'ecg-trace'
    this.trace.setAttribute('role', 'img')
    this.trace.setAttribute('aria-label', 'live ECG')
    this.el = document.createElement('div')
    this.el.className = 'ecg'
    this.el.append(this.grid, this.trace)
    this.ctx = this.trace.getContext('2d')!
    this.resize = new ResizeObserver(() => { this.relayout() })
    this.resize.observe(this.el)
  }

  setLayout (layout: EcgLayout): void {
    this.layout = layout
    this.relayout()
  }

  start (): void {
    const tick = (now: number): void => {
      this.frame(now)
      this.raf = requestAnimationFrame(tick)
    }
    this.raf = requestAnimationFrame(tick)
  }

  stop (): void {
    cancelAnimationFrame(this.raf)
    this.resize.disconnect()
  }

  private relayout (): void {
    const dpr = window.devicePixelRatio || 1
    this.mm = CSS_PX_PER_MM * dpr
    const width = Math.max(200, this.el.clientWidth)
    const rows = this.layout === '12' ? 3 : 1
    const cols = this.layout === '12' ? 4 : 1
    const cellHmm = this.layout === '12' ? 25 : 40
    const cssH = rows * cellHmm * CSS_PX_PER_MM
    for (const c of [this.grid, this.trace]) {
      c.width = Math.round(width * dpr)
      c.height = Math.round(cssH * dpr)
      c.style.width = `${width}px`
      c.style.height = `${cssH}px`
    }
    this.el.style.height = `${cssH}px`
    const w = Math.floor(this.grid.width / cols)
    const h = cellHmm * this.mm
    this.cells = []
    for (let col = 0; col < cols; col++) {
      for (let row = 0; row < rows; row++) {
        const lead = this.layout === '12' ? col * 3 + row : 1
        this.cells.push({ lead, x0: col * w, y0: row * h, w, h, sweep: 0 })
      }
    }
    this.drawGrid()
    // Redraw what the sweep showed (the one full redraw, on resize only).
    this.ctx.clearRect(0, 0, this.trace.width, this.trace.height)
    const buf = this.buf
    if (buf !== null && this.drawn >= 0) this.draw(buf, Math.max(buf.oldest, this.drawn - this.sweepSamples(buf) + 1), this.drawn)
  }

  private sweepSamples (buf: EcgBuffer): number {
    this.pxPerSample = MM_PER_S * this.mm / buf.rateHz
    const first = this.cells[0]
    return first === undefined ? 1 : Math.floor(first.w / this.pxPerSample)
  }

  private drawGrid (): void {
    const g = this.grid.getContext('2d')!
    const { width, height } = this.grid
    g.fillStyle = '#0d1117'
    g.fillRect(0, 0, width, height)
    const mm = this.mm
    for (const pass of [0, 1]) {
      g.beginPath()
      g.strokeStyle = pass === 0 ? 'rgba(220, 80, 80, 0.18)' : 'rgba(220, 80, 80, 0.42)'
      g.lineWidth = pass === 0 ? 1 : Math.max(1, Math.round(mm / 4))
      const step = pass === 0 ? 1 : 5
      for (let i = 0; i * mm <= width; i += step) { const x = Math.round(i * mm) + 0.5; g.moveTo(x, 0); g.lineTo(x, height) }
      for (let i = 0; i * mm <= height; i += step) { const y = Math.round(i * mm) + 0.5; g.moveTo(0, y); g.lineTo(width, y) }
      g.stroke()
    }
    g.fillStyle = '#e6edf3'
    g.font = `${Math.round(3.5 * mm)}px system-ui, sans-serif`
    for (const c of this.cells) {
      g.fillText(LEAD_NAMES[c.lead]!, c.x0 + 1.5 * mm, c.y0 + 4 * mm)
      if (c.x0 > 0) { g.fillStyle = 'rgba(230,237,243,0.5)'; g.fillRect(c.x0, c.y0, Math.max(1, mm / 4), c.h); g.fillStyle = '#e6edf3' }
    }
    // 1 mV calibration pulse (10 mm tall, 5 mm wide) at the right edge of each cell.
    g.strokeStyle = 'rgba(230,237,243,0.6)'
    g.lineWidth = Math.max(1, mm / 4)
    for (const c of this.cells) {
      const base = c.y0 + c.h / 2
      const x = c.x0 + c.w - 8 * mm
      g.beginPath()
      g.moveTo(x, base); g.lineTo(x + mm, base); g.lineTo(x + mm, base - MM_PER_MV * mm); g.lineTo(x + 6 * mm, base - MM_PER_MV * mm); g.lineTo(x + 6 * mm, base); g.lineTo(x + 7 * mm, base)
      g.stroke()
    }
    g.fillStyle = 'rgba(230,237,243,0.7)'
    g.font = `${Math.round(2.6 * mm)}px system-ui, sans-serif`
    const last = this.cells[this.cells.length - 1]
    if (last !== undefined) g.fillText('25 mm/s · 10 mm/mV', last.x0 + last.w - 40 * mm, last.y0 + last.h - 1.5 * mm)
  }

  private frame (now: number): void {
    const buf = this.source()
    if (buf !== this.buf) {
      this.buf = buf
      this.drawn = -1
      this.ctx.clearRect(0, 0, this.trace.width, this.trace.height)
    }
    const dt = this.last === 0 ? 0 : Math.min(now - this.last, 1000)
    this.last = now
    if (buf === null || buf.next <= 0) return
    const rate = buf.rateHz
    const sweep = this.sweepSamples(buf)
    if (this.drawn < 0) {
      // First sight: fill the strip from what the ring holds, then continue in real time.
      const start = Math.max(buf.oldest, buf.next - Math.round(LATENCY_S * rate) - sweep + 1)
      this.drawn = Math.max(start, buf.next - Math.round(LATENCY_S * rate))
      this.draw(buf, start, this.drawn)
      return
    }
    const lag = buf.next - this.drawn
    if (lag > rate * 1.5 || this.drawn < buf.oldest) {
      const to = buf.next - Math.round(LATENCY_S * rate)
      this.draw(buf, Math.max(buf.oldest, to - sweep + 1), to)
      this.drawn = to
      this.acc = 0
      return
    }
    // Play out at the sample rate, nudged ±10 % to hold the latency steady.
    const speed = Math.min(1.1, Math.max(0.9, 1 + (lag / rate - LATENCY_S) / 4))
    // Time owed while waiting for data is not paid back in a burst (that would be a jerk).
    this.acc = Math.min(this.acc + dt * rate * speed / 1000, rate * 0.05)
    const n = Math.min(Math.floor(this.acc), lag)
    if (n <= 0) return
    this.acc -= n
    this.draw(buf, this.drawn, this.drawn + n, false)
    this.drawn += n
  }

  /**
   * Draws samples [from, to) in every cell. In steady state only the band just ahead of the pen
   * is erased (the old lap's trace), never the stroke just drawn behind it; a jump (first sight,
   * catch-up, resize) clears its whole span first.
   */
  private draw (buf: EcgBuffer, from: number, to: number, jump = true): void {
    if (to <= from) return
    const ctx = this.ctx
    const mm = this.mm
    const sweep = this.sweepSamples(buf)
    const pps = this.pxPerSample
    const erase = Math.ceil(ERASE_MM * mm / pps)
    const uvToPx = MM_PER_MV * mm / 1000
    const lw = Math.max(1.5, mm / 2.5)
    ctx.lineWidth = lw
    ctx.lineJoin = 'round'
    ctx.strokeStyle = '#3ee07a'
    for (const c of this.cells) {
      // Erase [from, to + erase) modulo the sweep (two rectangles across the wrap), starting a
      // line width past the last point drawn so the stroke behind the pen stays whole.
      const span = Math.min(sweep, to - from + erase) * pps - (jump ? 0 : lw)
      const xa = jump ? (from % sweep) * pps - 1 : ((from - 1) % sweep) * pps + lw
      const first = Math.min(span, c.w - xa)
      ctx.clearRect(c.x0 + xa, c.y0, first, c.h)
      if (span > first) ctx.clearRect(c.x0, c.y0, span - first, c.h)
      ctx.save()
      ctx.beginPath()
      ctx.rect(c.x0, c.y0, c.w, c.h)
      ctx.clip()
      ctx.beginPath()
      const mid = c.y0 + c.h / 2
      let pen = false
      let prevX = -1
      for (let i = Math.max(from - 1, buf.oldest); i < to; i++) {
        const v = buf.read(c.lead, i)
        if (v === NO_SAMPLE) { pen = false; continue }
        const x = c.x0 + (i % sweep) * pps
        const y = mid - v * uvToPx
        if (!pen || x < prevX) ctx.moveTo(x, y)
        else ctx.lineTo(x, y)
        pen = true
        prevX = x
      }
      ctx.stroke()
      ctx.restore()
    }
  }
}
