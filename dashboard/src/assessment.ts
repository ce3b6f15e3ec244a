/**
 * The paramedic's assessment as pictures: STEMI (cath-lab pre-alert), stroke (LAMS 0–5 with the
 * LVO threshold at 4, FAST), and the time since last known well on a 24 h bar marked at 4.5 h
 * (IV thrombolysis window) and 24 h (thrombectomy window, with imaging selection).
 */
import type { AssessmentView } from '../../streams/live/protocol.js'
import { h } from './dom.js'
import { hm } from './format.js'

const LYSIS_MS = 4.5 * 3_600_000
const EVT_MS = 24 * 3_600_000

/** Short badges for a fleet card. */
export function assessmentBadges (a: AssessmentView | null, now: number): HTMLElement | null {
  if (a === null) return null
  const out: HTMLElement[] = []
  if (a.stemiSuspected) out.push(h('span', { class: 'badge stemi' }, 'STEMI'))
  if (a.lamsScore >= 4) out.push(h('span', { class: 'badge stroke' }, `LVO? LAMS ${a.lamsScore}`))
  else if (a.fastPositive) out.push(h('span', { class: 'badge stroke' }, 'FAST+'))
  if ((a.fastPositive || a.lamsScore >= 4) && a.lastKnownWellMs > 0) {
    const since = now - a.lastKnownWellMs
    out.push(h('span', { class: `badge lkw ${since <= LYSIS_MS ? 'in-lysis' : since <= EVT_MS ? 'in-evt' : 'late'}` }, `LKW ${hm(since)}`))
  }
  return out.length === 0 ? null : h('div', { class: 'badges' }, out)
}

export function assessmentPanel (a: AssessmentView | null, now: number): HTMLElement {
  if (a === null) return h('section', { class: 'assessment' }, h('h3', {}, 'Assessment'), h('p', { class: 'muted' }, 'No assessment from the crew yet.'))
  const lams = h('div', { class: 'lams', 'aria-label': `LAMS ${a.lamsScore} of 5` },
    Array.from({ length: 5 }, (_, i) => h('span', { class: `pip${i < a.lamsScore ? ' on' : ''}${i >= 3 ? ' lvo' : ''}` })))
  let lkw: HTMLElement
  if (a.lastKnownWellMs > 0) {
    const since = Math.max(0, now - a.lastKnownWellMs)
    const pct = (ms: number): string => `${Math.min(100, ms / EVT_MS * 100).toFixed(2)}%`
    const verdict = since <= LYSIS_MS
      ? `thrombolysis window closes in ${hm(LYSIS_MS - since)}`
      : since <= EVT_MS ? `beyond 4.5 h; thrombectomy window closes in ${hm(EVT_MS - since)}` : 'beyond 24 h'
    lkw = h('div', { class: 'lkw' },
      h('div', { class: 'lkw-text' }, h('b', {}, hm(since)), ' since last known well — ', verdict),
      h('div', { class: 'lkw-bar', role: 'img', 'aria-label': `${hm(since)} since last known well` },
        h('span', { class: 'zone lysis', style: `width:${pct(LYSIS_MS)}` }),
        h('span', { class: 'zone evt', style: `left:${pct(LYSIS_MS)};width:${pct(EVT_MS - LYSIS_MS)}` }),
        h('span', { class: 'tick', style: `left:${pct(LYSIS_MS)}` }, '4.5 h'),
        h('span', { class: 'tick end' }, '24 h'),
        h('span', { class: 'marker', style: `left:${pct(since)}` })))
  } else {
    lkw = h('div', { class: 'lkw muted' }, 'Last known well: unknown')
  }
  return h('section', { class: 'assessment' },
    h('h3', {}, 'Assessment'),
    h('div', { class: 'assess-row' },
      h('div', { class: `flag ${a.stemiSuspected ? 'on stemi' : ''}` }, h('span', { class: 'flag-title' }, 'STEMI'), a.stemiSuspected ? 'suspected — cath lab' : 'not suspected'),
      h('div', { class: `flag ${a.fastPositive ? 'on stroke' : ''}` }, h('span', { class: 'flag-title' }, 'FAST'), a.fastPositive ? 'positive' : 'negative'),
      h('div', { class: `flag ${a.lamsScore >= 4 ? 'on stroke' : ''}` }, h('span', { class: 'flag-title' }, `LAMS ${a.lamsScore}/5`), lams, a.lamsScore >= 4 ? 'suspected LVO' : '')),
    lkw,
    h('p', { class: 'muted small' }, `${a.ageYears > 0 ? `${a.ageYears} y` : 'age ?'}${a.sex !== '' ? ` · ${a.sex}` : ''}`))
}
