/**
 * A unit's last encounters before the current one, to tell a late frame of a previous patient
 * (left out of the patient now on the unit) from a frame of the next patient whose device clock
 * is behind (an id the unit never had: shown and evaluated). Used by the alert engine and the
 * live hub alike. Not restored after a restart: a previous patient's late frame then counts as
 * the next patient's (a possible false alarm rather than a missed one).
 */

/** Encounters remembered per unit. */
export const PAST_ENCOUNTERS = 4

export class PastEncounters {
  /** Oldest first, at most PAST_ENCOUNTERS. */
  private readonly ids: string[] = []

  /** The encounter `id` is over on this unit (replaced or ended). */
  add (id: string): void {
    if (id === '' || id === '?') return
    const i = this.ids.indexOf(id)
    if (i >= 0) this.ids.splice(i, 1)
    this.ids.push(id)
    if (this.ids.length > PAST_ENCOUNTERS) this.ids.shift()
  }

  has (id: string): boolean { return this.ids.includes(id) }
}
