/**
 * What each permit has released of the quasi-identifiers (issue #10, item 6): k-anonymity must
 * hold over everything one permit has released, not per extract. Pseudonyms are stable within a
 * permit, so age from one extract and sex from another join on the subject; and even with
 * pseudonyms per extract, exact value sequences would join them. So every anonymised extract is
 * classified on the union of the quasi-identifiers asked for now and released before under the
 * same permit: after `age` in one extract and `sex` in another, both were classified on
 * (age band, sex), and the join has no class below k.
 *
 * Kept in DATA_DIR/dataspace/released-qi.jsonl, one line `{permit, fields}` per first release of
 * a field, fsync'd before the extract's first row leaves.
 */
import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { dataspaceDir } from './keys.js'

export const QUASI_IDENTIFIERS: readonly string[] = Object.freeze(['age', 'sex'])

export class ReleasedQuasiIdentifiers {
  private queue: Promise<unknown> = Promise.resolve()

  constructor (private readonly path: string) {}

  static forDataDir (dataDir: string): ReleasedQuasiIdentifiers {
    return new ReleasedQuasiIdentifiers(join(dataspaceDir(dataDir), 'released-qi.jsonl'))
  }

  /** Every quasi-identifier the permit has released so far. */
  async of (permitId: string): Promise<Set<string>> {
    let text = ''
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    const out = new Set<string>()
    for (const line of text.split('\n')) {
      if (line === '') continue
      try {
        const r = JSON.parse(line) as { permit?: unknown, fields?: unknown }
        if (r.permit === permitId && Array.isArray(r.fields)) for (const f of r.fields) if (typeof f === 'string') out.add(f)
      } catch { /* a torn last line: ignored */ }
    }
    return out
  }

  /**
   * Records that `fields` (quasi-identifiers among them) were released under the permit. At level
   * aggregated every summarised field is a quasi-identifier too (its binned summary is what links
   * records), so the caller passes those in `quasi`.
   */
  async record (permitId: string, fields: readonly string[], already: ReadonlySet<string>, quasi: readonly string[] = QUASI_IDENTIFIERS): Promise<void> {
    const fresh = fields.filter(f => quasi.includes(f) && !already.has(f))
    if (fresh.length === 0) return
    const p = this.queue.then(async () => {
      const fh = await open(this.path, 'a', 0o600)
      try {
        await fh.write(JSON.stringify({ permit: permitId, fields: fresh, at: new Date().toISOString() }) + '\n')
        await fh.sync()
      } finally {
        await fh.close()
      }
    })
    this.queue = p.catch(() => {})
    await p
  }
}
