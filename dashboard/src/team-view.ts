/**
 * The clinician's team view (emergency department, cath lab, stroke unit, or a custom filter by
 * alert kind, priority and unit): what is put in their face first. Chosen in the top bar and
 * remembered on the server per user (an admin sets the default with `ambulink user add --view`).
 * A view never hides an alert for good: whatever lies outside it is counted in the alert bar and
 * listed in the full alert list.
 */
import {
  KNOWN_ALERT_KINDS, TEAM_VIEW_IDS, TEAM_VIEW_LABELS, alertInView, unitInView,
  type Alert, type TeamViewId, type UnitContext, type ViewSpec
} from '../../streams/live/protocol.js'
import { getView, saveView } from './api.js'
import { h } from './dom.js'

export class TeamView {
  spec: ViewSpec = { id: 'ed' }
  private readonly listeners = new Set<() => void>()
  readonly el: HTMLElement
  private readonly select: HTMLSelectElement
  private readonly editor: HTMLDialogElement

  constructor (private readonly onError: (msg: string) => void) {
    this.select = h('select', { class: 'team-view', 'aria-label': 'team view', onchange: () => { this.choose(this.select.value as TeamViewId) } },
      TEAM_VIEW_IDS.map(id => h('option', { value: id }, TEAM_VIEW_LABELS[id])))
    this.editor = h('dialog', { class: 'view-editor' })
    this.el = h('label', { class: 'view-pick' }, 'View ', this.select, this.editor)
  }

  onChange (fn: () => void): void { this.listeners.add(fn) }

  async load (): Promise<void> {
    try { this.apply((await getView()).view) } catch (err) { this.onError(`Could not load your view: ${(err as Error).message}`) }
  }

  private apply (spec: ViewSpec): void {
    this.spec = spec
    this.select.value = spec.id
    document.body.dataset.view = spec.id
    for (const l of this.listeners) l()
  }

  private choose (id: TeamViewId): void {
    if (id === 'custom') { this.edit(); return }
    this.save({ id })
  }

  private save (spec: ViewSpec): void {
    this.apply(spec)
    saveView(spec).catch((err: Error) => { this.onError(`Could not save your view: ${err.message}`) })
  }

  /** The custom filter: kinds (an exclusion list, so new kinds show), lowest priority, units. */
  private edit (): void {
    const cur = this.spec.id === 'custom' ? this.spec : { id: 'custom' as const }
    const kinds = KNOWN_ALERT_KINDS.map(k => h('label', {}, h('input', { type: 'checkbox', name: 'kind', value: k, checked: cur.excludeKinds?.includes(k) !== true }), ` ${k}`))
    const prio = h('select', { name: 'minPriority' }, (['low', 'medium', 'high'] as const).map(p => h('option', { value: p, selected: (cur.minPriority ?? 'low') === p }, `${p} and above`)))
    const units = h('input', { name: 'units', placeholder: 'all units (or: AMB-01, AMB-07)', value: (cur.units ?? []).join(', ') })
    const form = h('form', { method: 'dialog', onsubmit: ev => {
      ev.preventDefault()
      const excludeKinds = Array.from(form.querySelectorAll<HTMLInputElement>('input[name=kind]')).filter(i => !i.checked).map(i => i.value)
      const list = units.value.split(/[\s,]+/).filter(u => u !== '')
      this.editor.close()
      this.save({ id: 'custom', excludeKinds, minPriority: prio.value as Alert['priority'], units: list })
    } },
    h('h2', {}, 'Custom view'),
    h('fieldset', {}, h('legend', {}, 'Alert kinds shown (kinds added later show until you untick them)'), kinds),
    h('label', {}, 'Priority ', prio),
    h('label', {}, 'Units ', units),
    h('div', { class: 'dialog-buttons' },
      h('button', { type: 'button', onclick: () => { this.editor.close(); this.select.value = this.spec.id } }, 'Cancel'),
      h('button', { type: 'submit', class: 'primary' }, 'Apply')))
    this.editor.replaceChildren(form)
    this.editor.showModal()
  }

  alertIn (a: Alert, ctx: Map<string, UnitContext>): boolean {
    return alertInView(a, this.spec, ctx.get(a.unit) ?? NONE)
  }

  unitIn (unit: string, ctx: Map<string, UnitContext>): boolean {
    return unitInView(unit, this.spec, ctx.get(unit) ?? NONE)
  }
}

const NONE: UnitContext = Object.freeze({ cardiac: false, stroke: false })
