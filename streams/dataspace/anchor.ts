/**
 * Anchors: the audit log's signed head, published outside DATA_DIR so that an insider who rolls
 * DATA_DIR back to an older signed head (and a log cut to match) is caught (issue #10, item 2).
 * The gateway writes every head it signs to InfluxDB (measurement `audit_anchor`) and to its
 * log stream before the access it records goes on, and the current head again periodically; `ambulink audit verify` reads the newest anchor back and checks the log still holds
 * the anchored entry and that the head is not older than it. The anchor is signed (it is the
 * head itself), so a forged anchor cannot block anything either.
 */
import type { SignedHead } from './audit.js'
import { DataspaceError } from './errors.js'
import type { InfluxReader } from './influx-reader.js'
import { InfluxHttpError } from '../storage/influx-client.js'

export const ANCHOR_MEASUREMENT = 'audit_anchor'

function str (s: string): string { return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"` }

/** The head as one line of line protocol, stamped with its signing time (ms). */
export function anchorLine (h: SignedHead): string {
  const ms = Date.parse(h.at)
  return `${ANCHOR_MEASUREMENT} seq=${h.seq}i,counter=${h.counter}i,hash=${str(h.hash)},at=${str(h.at)},sig=${str(h.sig)} ${Number.isFinite(ms) ? ms : Date.now()}`
}

/** Writes the head to the InfluxDB the reader reads (v1 `/write`, which 2.x also serves), through its client. */
export async function writeAnchor (reader: InfluxReader, h: SignedHead, timeoutMs = 5000): Promise<void> {
  const qs = new URLSearchParams({ db: reader.options.db, precision: 'ms' })
  try {
    await reader.influx.request({ path: `/write?${qs.toString()}`, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: anchorLine(h) + '\n', timeoutMs })
  } catch (err) {
    if (err instanceof InfluxHttpError) throw new DataspaceError('AMB_ERR_DATASPACE_STORE_UNAVAILABLE', `InfluxDB refused the audit anchor (${err.statusCode}): ${err.body.slice(0, 200)}`, { retryAfterMs: 5000 })
    throw new DataspaceError('AMB_ERR_DATASPACE_STORE_UNAVAILABLE', `InfluxDB did not take the audit anchor: ${(err as Error).message}`, { cause: err, retryAfterMs: 5000 })
  }
}

/** The newest anchor (highest counter), or null when none was written yet. */
export async function readAnchor (reader: InfluxReader, signal?: AbortSignal): Promise<SignedHead | null> {
  const series = await reader.all(`SELECT "seq", "counter", "hash", "at", "sig" FROM "${ANCHOR_MEASUREMENT}" ORDER BY time DESC LIMIT 100`, signal)
  let best: SignedHead | null = null
  for (const s of series) {
    const col = (name: string): number => s.columns.indexOf(name)
    for (const row of s.values) {
      const seq = row[col('seq')]
      const counter = row[col('counter')]
      const hash = row[col('hash')]
      const at = row[col('at')]
      const sig = row[col('sig')]
      if (typeof seq !== 'number' || typeof counter !== 'number' || typeof hash !== 'string' || typeof at !== 'string' || typeof sig !== 'string') continue
      if (best === null || counter > best.counter) best = { seq, counter, hash, at, sig }
    }
  }
  return best
}
