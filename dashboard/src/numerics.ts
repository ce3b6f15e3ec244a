/**
 * Numerics tiles and the NEWS2 badge, shared by the fleet cards and the unit view. Each tile is
 * coloured by the NEWS2 score of its parameter (RCP chart colours: yellow 1, orange 2, red 3) and
 * also says the score in text, so colour is never the only cue. A value older than the NEWS2
 * staleness bound is shown dimmed.
 */
import type { News2Band, News2View, TrendSign, UnitView } from '../../streams/live/protocol.js'
import { h } from './dom.js'
import { SIGN_FORMAT, formatValue } from './format.js'

export function bandColor (band: News2Band): string {
  switch (band) {
    case 'high': return '#ef4444'
    case 'medium': return '#f97316'
    case 'low-medium': return '#facc15'
    case 'low': return '#22c55e'
    default: return '#94a3b8'
  }
}

const BAND_TEXT: Record<News2Band, string> = { high: 'HIGH', medium: 'MEDIUM', 'low-medium': 'LOW–MED', low: 'LOW', none: '—' }

/** Tiles, in monitor order; blood pressure is one tile. */
const TILES: Array<{ sign: TrendSign, big?: boolean }> = [
  { sign: 'heart_rate', big: true }, { sign: 'spo2', big: true }, { sign: 'nibp_systolic', big: true },
  { sign: 'respiratory_rate' }, { sign: 'etco2' }, { sign: 'temperature' }, { sign: 'consciousness_acvpu' }, { sign: 'supplemental_o2' }
]

const STALE_MS = 5 * 60_000

/** `few`: HR, SpO2, NIBP and RR only (the compact fleet cards shown when many units stream). */
export function numericTiles (v: UnitView, now: number, compact = false, few = false): HTMLElement {
  const scores = v.news2?.scores ?? {}
  const tiles = (few ? TILES.slice(0, 4) : TILES).map(({ sign, big }) => {
    const n = v.numerics[sign]
    const fmt = SIGN_FORMAT[sign]
    const score = scores[sign] ?? (sign === 'heart_rate' ? scores.pulse_rate : undefined)
    let text = n === undefined ? '—' : formatValue(sign, n.value)
    let label = fmt.label
    let unit = fmt.unit
    if (sign === 'nibp_systolic') {
      label = 'NIBP'
      const dia = v.numerics.nibp_diastolic
      if (n !== undefined) text = `${Math.round(n.value)}/${dia === undefined ? '—' : Math.round(dia.value)}`
    }
    if (sign === 'heart_rate' && n === undefined && v.numerics.pulse_rate !== undefined) {
      label = 'PR'
      text = formatValue('pulse_rate', v.numerics.pulse_rate.value)
    }
    if (sign === 'consciousness_acvpu' || sign === 'supplemental_o2') unit = ''
    const stale = n !== undefined && now - n.t > (sign === 'nibp_systolic' || sign === 'temperature' ? 15 * 60_000 : STALE_MS)
    return h('div', {
      class: `tile score-${score ?? 'x'}${big === true ? ' big' : ''}${stale ? ' stale' : ''}`,
      'data-sign': sign,
      title: score === undefined ? `${label}: not scored` : `${label}: NEWS2 ${score}`
    },
    h('span', { class: 'label' }, label),
    h('span', { class: 'value' }, text),
    compact ? null : h('span', { class: 'unit' }, unit),
    score !== undefined && score > 0 ? h('span', { class: 'score' }, `+${score}`) : null)
  })
  return h('div', { class: `tiles${compact ? ' compact' : ''}${few ? ' few' : ''}` }, tiles)
}

export function news2Badge (n: News2View | null): HTMLElement {
  if (n === null) return h('div', { class: 'news2 band-none', 'data-news2': '' }, h('span', { class: 'n2-label' }, 'NEWS2'), h('span', { class: 'n2-total' }, '—'))
  if (n.notApplied !== undefined) {
    return h('div', { class: 'news2 band-none not-applied', 'data-news2': 'n/a', title: n.notApplied },
      h('span', { class: 'n2-label' }, 'NEWS2'), h('span', { class: 'n2-total' }, 'n/a'), h('span', { class: 'n2-partial' }, 'under 16: not applied'))
  }
  return h('div', {
    class: `news2 band-${n.band}${n.partial ? ' partial' : ''}`,
    'data-news2': n.total,
    title: n.partial ? `Partial: ${n.missing.join(', ')} missing (never scored as normal); the total can only go up` : 'NEWS2 aggregate'
  },
  h('span', { class: 'n2-label' }, 'NEWS2'),
  h('span', { class: 'n2-total' }, n.partial ? `≥${n.total}` : String(n.total)),
  h('span', { class: 'n2-band' }, BAND_TEXT[n.band]),
  n.partial ? h('span', { class: 'n2-partial' }, `partial · ${n.missing.length} missing`) : null)
}
