/** Newline-delimited JSON: one object per record; absent values are left out. */
import { formatUs } from '../protect.js'
import { ageColumn, type Serializer, type SerializerContext } from './serializer.js'

export function ndjsonSerializer (ctx: SerializerContext): Serializer {
  const { plan } = ctx
  const keys = plan.columns.map(c => `,${JSON.stringify(c)}:`)
  // Level aggregated releases no time (per-encounter summaries, aggregate.ts).
  const timed = ctx.level !== 'aggregated'
  const ageKey = `,${JSON.stringify(ageColumn(ctx.level))}:`
  return {
    contentType: 'application/x-ndjson; charset=utf-8',
    head: () => '',
    tail: () => '',
    batch (records) {
      let out = ''
      for (const r of records) {
        let line = timed ? `{"subject":"${r.subject}","time":"${formatUs(r.timeUs)}"` : `{"subject":"${r.subject}"`
        if (plan.withAge && r.age !== null) line += ageKey + JSON.stringify(r.age)
        if (plan.withSex && r.sex !== null) line += `,"sex":"${r.sex}"`
        for (let i = 0; i < keys.length; i++) {
          const v = r.values[i]
          if (v !== null && v !== undefined) line += keys[i]! + (typeof v === 'number' ? String(v) : JSON.stringify(v))
        }
        out += line + '}\n'
      }
      return out
    }
  }
}
