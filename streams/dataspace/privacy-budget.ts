/**
 * The differential-privacy budget of each statistical permit: the total epsilon its answered
 * queries spent (basic sequential composition: privacy losses add up). Kept in
 * DATA_DIR/dataspace/privacy-budget.json, rewritten atomically and durably (storage/durable.ts)
 * under a cross-process lock, so a restart, a crash or a second process (the CLI, another
 * gateway on the same DATA_DIR) can neither forget nor double-spend what was spent.
 *
 * A query's epsilon is spent after its answer is computed and before any of it leaves: a query
 * that fails (InfluxDB down) spends nothing, and an answer is never released unpaid.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { withFileLock, writeFileAtomic } from '../storage/durable.js'
import { DataspaceError } from './errors.js'
import { dataspaceDir } from './keys.js'

interface BudgetFile { v: 1, spent: Record<string, number> }

/** Tolerance of float sums: ten queries of 0.1 fit a budget of 1. */
const SLACK = 1e-9

export class PrivacyBudget {
  constructor (private readonly path: string, readonly limit: number) {}

  static forDataDir (dataDir: string, limit: number): PrivacyBudget {
    return new PrivacyBudget(join(dataspaceDir(dataDir), 'privacy-budget.json'), limit)
  }

  private async read (): Promise<BudgetFile> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { v: 1, spent: {} }
      throw err
    }
    const f = JSON.parse(text) as BudgetFile
    if (f.v !== 1 || typeof f.spent !== 'object' || f.spent === null) throw new Error(`${this.path} is not a privacy budget file`)
    return f
  }

  /** Epsilon the permit has spent so far. */
  async spent (permitId: string): Promise<number> {
    return (await this.read()).spent[permitId] ?? 0
  }

  /**
   * Spends `epsilon` of the permit's budget, durably, or throws AMB_ERR_DATASPACE_BUDGET_EXHAUSTED
   * and spends nothing. Returns what is left.
   */
  async spend (permitId: string, epsilon: number): Promise<{ spent: number, left: number }> {
    return await withFileLock(`${this.path}.lock`, async () => {
      const f = await this.read()
      const before = f.spent[permitId] ?? 0
      if (before + epsilon > this.limit + SLACK) {
        throw new DataspaceError('AMB_ERR_DATASPACE_BUDGET_EXHAUSTED', `permit ${permitId} has ${fmt(Math.max(0, this.limit - before))} of its privacy budget (epsilon ${fmt(this.limit)}) left; this query asks for ${fmt(epsilon)}`)
      }
      f.spent[permitId] = before + epsilon
      await writeFileAtomic(this.path, JSON.stringify(f) + '\n')
      return { spent: before + epsilon, left: Math.max(0, this.limit - before - epsilon) }
    }, { retryMs: 5 })
  }
}

function fmt (x: number): string { return String(Math.round(x * 1e6) / 1e6) }
