/**
 * k-anonymity over an extract's quasi-identifiers, counted in encounters (people), not rows: an
 * encounter contributes thousands of rows, and k rows of one patient protect nobody.
 *
 * An extract is streamed, so the decision is made before the first row leaves:
 * 1. a first pass asks InfluxDB which encounters have data in the window (an aggregate query,
 *    one row per encounter) and their released attributes (age band, sex), then
 * 2. `classify` groups encounters by those attributes and suppresses every class smaller
 *    than k, and
 * 3. the second pass streams rows, dropping those of suppressed encounters and of any encounter
 *    the first pass did not see (data that arrived in between has no class: it is withheld).
 *
 * Memory is bounded by the number of encounters in the window (maxEncounters), not by rows.
 *
 * Positions get a second, per-cell rule: a coarsened cell is released only if at least k
 * distinct encounters of the extract passed through it (`CellCounter`, a bounded pre-scan of
 * the position rows).
 */
import { DataspaceError } from './errors.js'

export interface Classification {
  /** Encounters whose class has at least k members. */
  kept: Set<string>
  suppressed: Set<string>
  classes: number
  classesBelowK: number
}

/** Groups encounters by their quasi-identifier key and keeps classes with ≥ k encounters. */
export function classify (qiByEncounter: ReadonlyMap<string, string>, k: number): Classification {
  const byClass = new Map<string, string[]>()
  for (const [enc, qi] of qiByEncounter) {
    let members = byClass.get(qi)
    if (members === undefined) byClass.set(qi, members = [])
    members.push(enc)
  }
  const kept = new Set<string>()
  const suppressed = new Set<string>()
  let classesBelowK = 0
  for (const members of byClass.values()) {
    const ok = members.length >= k
    if (!ok) classesBelowK++
    for (const m of members) (ok ? kept : suppressed).add(m)
  }
  return { kept, suppressed, classes: byClass.size, classesBelowK }
}

/**
 * Counts distinct encounters per cell, up to k each (knowing "at least k" is enough), with at
 * most `maxCells` cells so a pathological window cannot exhaust memory.
 */
export class CellCounter {
  private readonly cells = new Map<string, Set<string> | true>()

  constructor (private readonly k: number, private readonly maxCells: number) {}

  add (cell: string, encounter: string): void {
    const c = this.cells.get(cell)
    if (c === true) return
    if (c === undefined) {
      if (this.cells.size >= this.maxCells) {
        throw new DataspaceError('AMB_ERR_DATASPACE_TOO_LARGE', `the window spans more than ${this.maxCells} position cells; ask for a shorter window`)
      }
      this.cells.set(cell, this.k <= 1 ? true : new Set([encounter]))
      return
    }
    c.add(encounter)
    if (c.size >= this.k) this.cells.set(cell, true)
  }

  released (cell: string): boolean { return this.cells.get(cell) === true }

  get size (): number { return this.cells.size }
}
