/**
 * The 12-lead viewer for an ECG STEMI alert's 10 s snapshot (GET /api/v1/alerts/:id/ecg), drawn
 * as a cardiologist reads a paper ECG: the standard grid (1 mm minor, 5 mm major lines) at
 * 25 mm/s and 10 mm/mV, the standard 3 × 4 layout (I, aVR, V1, V4 / II, aVL, V2, V5 / III, aVF,
 * V3, V6; 2.5 s each, in time order) with a 10 s lead II rhythm strip, a 1 mV calibration pulse
 * per row; beside it the ST deviation at J+60 ms per lead, device and gateway side by side.
 */
import type { Alert } from '../../streams/live/protocol.js'
import { h } from './dom.js'

interface StSource { stUv: Record<string, number>, verdict: string, leads: string[], note: string }
export interface EcgSnapshot {
  alertId: string
  unit: string
  startMs: number
  sampleRateHz: number
  leads: string[]
  microvolts: number[][]
  device: StSource | null
  gateway: StSource | null
  limitNote: string
}

/** Paper speed and gain of the standard 12-lead (AHA 2007, Kligfield: 25 mm/s, 10 mm/mV). */
export const MM_PER_S = 25
export const MM_PER_MV = 10
/** Screen pixels per mm of paper. */
const PX_PER_MM = 4
const ROW_MM = 30
/** Left margin holding the calibration pulse, mm. */
const CAL_MM = 7
const LAYOUT = [['I', 'aVR', 'V1', 'V4'], ['II', 'aVL', 'V2', 'V5'], ['III', 'aVF', 'V3', 'V6']] as const

/** Whether an alert has a 12-lead snapshot to open. */
export function hasEcgSnapshot (a: Alert): boolean { return a.kind === 'stemi' && a.key === 'ecg' }

/** The button the alert row shows for ECG STEMI alerts (null for other alerts). */
export function ecgButton (a: Alert, onError: (msg: string) => void): HTMLElement | null {
  if (!hasEcgSnapshot(a)) return null
  return h('button', { class: 'open-ecg', type: 'button', 'data-ecg': a.id, onclick: () => { openEcgSnapshot(a.id).catch((err: Error) => { onError(`12-lead ECG: ${err.message}`) }) } }, '12-lead ECG')
}

export async function openEcgSnapshot (id: string): Promise<void> {
  const res = await fetch(`/api/v1/alerts/${encodeURIComponent(id)}/ecg`, { credentials: 'same-origin' })
  if (!res.ok) throw new Error(res.status === 404 ? 'no snapshot yet (it is taken once 10 s of 12-lead ECG are in)' : `HTTP ${res.status}`)
  const snap = await res.json() as EcgSnapshot
  const canvas = h('canvas', { class: 'ecg-12lead', 'data-mm-per-s': MM_PER_S, 'data-mm-per-mv': MM_PER_MV })
  drawTwelveLead(canvas, snap)
  const close = h('button', { type: 'button', class: 'close-ecg', onclick: () => { dialog.close(); dialog.remove() } }, 'Close')
  const dialog = h('dialog', { class: 'ecg-dialog', 'data-alert-id': id, style: 'max-width: 98vw; padding: 12px; background: #fff; color: #000' },
    h('header', { style: 'display: flex; justify-content: space-between; gap: 12px; align-items: baseline' },
      h('strong', {}, `12-lead ECG, unit ${snap.unit}, ${new Date(snap.startMs).toLocaleTimeString()} (10 s) · ${MM_PER_S} mm/s · ${MM_PER_MV} mm/mV`),
      close),
    h('div', { style: 'display: flex; gap: 12px; align-items: flex-start; overflow: auto' }, canvas, stTable(snap)),
    h('p', {}, snap.limitNote))
  document.body.appendChild(dialog)
  dialog.showModal()
}

function stTable (s: EcgSnapshot): HTMLElement {
  const mm = (v: number | undefined): string => v === undefined ? '—' : (v / 100).toFixed(1)
  const named = new Set([...(s.device?.leads ?? []), ...(s.gateway?.leads ?? [])])
  return h('table', { class: 'st-table', style: 'border-collapse: collapse; font: 13px sans-serif' },
    h('caption', {}, 'ST at J+60 ms (mm)'),
    h('tr', {}, h('th', {}, 'lead'), h('th', {}, 'device'), h('th', {}, 'gateway')),
    s.leads.map(l => h('tr', { 'data-lead': l, style: named.has(l) ? 'font-weight: bold; color: #b00' : '' },
      h('td', {}, l), h('td', {}, mm(s.device?.stUv[l])), h('td', {}, mm(s.gateway?.stUv[l])))),
    s.device !== null ? h('tr', {}, h('td', { colspan: 3 }, `Device: ${s.device.note}`)) : null,
    s.gateway !== null ? h('tr', {}, h('td', { colspan: 3 }, `Gateway: ${s.gateway.note}`)) : null)
}

/** Draws grid, calibration pulses and traces; exported for tests of the geometry. */
export function drawTwelveLead (canvas: HTMLCanvasElement, s: EcgSnapshot): void {
  const secs = s.microvolts[0]!.length / s.sampleRateHz
  const widthMm = CAL_MM + secs * MM_PER_S
  const heightMm = ROW_MM * 4
  canvas.width = Math.round(widthMm * PX_PER_MM)
  canvas.height = Math.round(heightMm * PX_PER_MM)
  const g = canvas.getContext('2d')!
  g.fillStyle = '#fff'
  g.fillRect(0, 0, canvas.width, canvas.height)
  for (let mm = 0; mm <= widthMm; mm++) line(g, mm * PX_PER_MM, 0, mm * PX_PER_MM, canvas.height, mm % 5 === 0 ? '#e8a0a0' : '#f6d8d8')
  for (let mm = 0; mm <= heightMm; mm++) line(g, 0, mm * PX_PER_MM, canvas.width, mm * PX_PER_MM, mm % 5 === 0 ? '#e8a0a0' : '#f6d8d8')

  const pxPerUv = MM_PER_MV * PX_PER_MM / 1000
  const pxPerSample = MM_PER_S * PX_PER_MM / s.sampleRateHz
  const x0 = CAL_MM * PX_PER_MM
  const trace = (lead: string, from: number, to: number, xStart: number, yMid: number): void => {
    const row = s.microvolts[s.leads.indexOf(lead)]
    if (row === undefined) return
    g.strokeStyle = '#000'
    g.lineWidth = 1.2
    g.beginPath()
    for (let i = from; i < to; i++) {
      const x = xStart + (i - from) * pxPerSample
      const y = yMid - row[i]! * pxPerUv
      if (i === from) g.moveTo(x, y)
      else g.lineTo(x, y)
    }
    g.stroke()
    g.fillStyle = '#000'
    g.font = '12px sans-serif'
    g.fillText(lead, xStart + 3, yMid - 10 * PX_PER_MM)
  }
  const n = s.microvolts[0]!.length
  const quarter = Math.floor(n / 4)
  for (let r = 0; r < 4; r++) {
    const yMid = (r * ROW_MM + ROW_MM * 0.6) * PX_PER_MM
    calibration(g, yMid)
    if (r < 3) {
      LAYOUT[r]!.forEach((lead, c) => { trace(lead, c * quarter, (c + 1) * quarter, x0 + c * quarter * pxPerSample, yMid) })
    } else {
      trace('II', 0, n, x0, yMid)
    }
  }
}

/** 1 mV for 0.2 s: 10 mm high, 5 mm wide at the standard settings. */
function calibration (g: CanvasRenderingContext2D, yMid: number): void {
  const mm = (v: number): number => v * PX_PER_MM
  const top = yMid - mm(MM_PER_MV)
  g.strokeStyle = '#000'
  g.lineWidth = 1.2
  g.beginPath()
  g.moveTo(0, yMid)
  g.lineTo(mm(1), yMid)
  g.lineTo(mm(1), top)
  g.lineTo(mm(1 + 0.2 * MM_PER_S), top)
  g.lineTo(mm(1 + 0.2 * MM_PER_S), yMid)
  g.lineTo(mm(CAL_MM), yMid)
  g.stroke()
}

function line (g: CanvasRenderingContext2D, x1: number, y1: number, x2: number, y2: number, color: string): void {
  g.strokeStyle = color
  g.lineWidth = 1
  g.beginPath()
  g.moveTo(x1 + 0.5, y1 + 0.5)
  g.lineTo(x2 + 0.5, y2 + 0.5)
  g.stroke()
}
