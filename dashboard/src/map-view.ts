/**
 * A schematic map, no tiles (the page must work offline): the hospital at the centre, range rings,
 * every unit as an arrow pointing where it drives, coloured by its NEWS2 band, with the trail of
 * its last 30 minutes. Equirectangular projection around the hospital: exact enough within the
 * ~50 km a regional gateway covers.
 */
import { svg } from './dom.js'
import { bandColor } from './numerics.js'
import type { Store } from './store.js'

const KM_PER_DEG_LAT = 110.574
const RINGS_KM = [0.5, 1, 2, 5, 10, 20, 50, 100]

export function renderMap (store: Store, size: number, onOpen: (unit: string) => void): SVGElement {
  const { latitude: lat0, longitude: lon0 } = store.hospital
  const kmPerDegLon = 111.320 * Math.cos(lat0 * Math.PI / 180)
  const proj = (lat: number, lon: number): [number, number] => [(lon - lon0) * kmPerDegLon, -(lat - lat0) * KM_PER_DEG_LAT]
  let far = 1
  for (const m of store.units.values()) {
    const p = m.view.position
    if (p === null) continue
    const [x, y] = proj(p.latitude, p.longitude)
    far = Math.max(far, Math.hypot(x, y))
  }
  const outer = RINGS_KM.find(r => r >= far * 1.1) ?? RINGS_KM[RINGS_KM.length - 1]!
  const half = size / 2
  const scale = (half - 14) / outer
  const root = svg('svg', { viewBox: `${-half} ${-half} ${size} ${size}`, width: size, height: size, class: 'map', role: 'img', 'aria-label': 'schematic map of the units around the hospital' })
  root.appendChild(svg('rect', { x: -half, y: -half, width: size, height: size, fill: '#0b1220', rx: 8 }))
  for (const r of RINGS_KM) {
    if (r > outer) break
    root.appendChild(svg('circle', { cx: 0, cy: 0, r: r * scale, fill: 'none', stroke: '#334155', 'stroke-dasharray': '3 4' }))
    root.appendChild(svg('text', { x: 4, y: -r * scale - 3, fill: '#94a3b8', 'font-size': 11 }, `${r} km`))
  }
  // Compass and the hospital.
  root.appendChild(svg('text', { x: 0, y: -half + 14, fill: '#94a3b8', 'font-size': 12, 'text-anchor': 'middle' }, 'N'))
  root.appendChild(svg('rect', { x: -9, y: -9, width: 18, height: 18, rx: 3, fill: '#e2e8f0' }))
  root.appendChild(svg('path', { d: 'M-2,-6h4v4h4v4h-4v4h-4v-4h-4v-4h4z', fill: '#dc2626' }))
  const labels = store.units.size <= 24
  for (const [unit, m] of store.units) {
    const color = bandColor(m.view.news2?.band ?? 'none')
    const trail = m.trend
    if (trail !== null) {
      let d = ''
      for (const p of trail.positions) {
        if (p === null) continue
        const [x, y] = proj(p[0], p[1])
        d += `${d === '' ? 'M' : 'L'}${(x * scale).toFixed(1)},${(y * scale).toFixed(1)}`
      }
      if (d !== '') root.appendChild(svg('path', { d, fill: 'none', stroke: color, 'stroke-opacity': 0.45, 'stroke-width': 2 }))
    }
    const p = m.view.position
    if (p === null) continue
    const [x, y] = proj(p.latitude, p.longitude)
    const g = svg('g', { transform: `translate(${(x * scale).toFixed(1)},${(y * scale).toFixed(1)})`, class: 'map-unit', 'data-unit': unit, tabindex: 0 })
    g.appendChild(svg('path', { d: 'M0,-11L8,8L0,3L-8,8Z', transform: `rotate(${Math.round(p.headingDeg)})`, fill: color, stroke: '#0b1220', 'stroke-width': 1.5 }))
    // Past a couple of dozen units the labels would only pile up: the name moves to a tooltip.
    if (labels) g.appendChild(svg('text', { x: 11, y: 4, fill: '#f1f5f9', 'font-size': 12, 'font-weight': 600 }, unit))
    else g.appendChild(svg('title', {}, unit))
    g.addEventListener('click', () => { onOpen(unit) })
    root.appendChild(g)
  }
  return root
}
