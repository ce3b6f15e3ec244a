/** CSV (RFC 4180): a header row, then one row per record; absent values are empty cells. */
import { formatUs } from '../protect.js'
import { ageColumn, type Serializer, type SerializerContext } from './serializer.js'

function cell (v: string | number | null | undefined): string {
  if (v === null || v === undefined) return ''
  if (typeof v === 'number') return String(v)
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v
}

export function csvSerializer (ctx: SerializerContext): Serializer {
  const { plan } = ctx
  // Level aggregated releases no time (per-encounter summaries, aggregate.ts).
  const timed = ctx.level !== 'aggregated'
  const header = timed ? ['subject', 'time'] : ['subject']
  if (plan.withAge) header.push(ageColumn(ctx.level))
  if (plan.withSex) header.push('sex')
  header.push(...plan.columns)
  return {
    contentType: 'text/csv; charset=utf-8; header=present',
    head: () => header.map(cell).join(',') + '\r\n',
    tail: () => '',
    batch (records) {
      let out = ''
      for (const r of records) {
        let line = timed ? r.subject + ',' + formatUs(r.timeUs) : r.subject
        if (plan.withAge) line += ',' + cell(r.age)
        if (plan.withSex) line += ',' + cell(r.sex)
        for (const v of r.values) line += ',' + cell(v)
        out += line + '\r\n'
      }
      return out
    }
  }
}
