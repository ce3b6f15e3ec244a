/**
 * Validates what a dashboard sends on the live socket. The page is ours, but the socket is open to
 * anything holding a session cookie: every field is checked and anything odd refused, so the hub
 * only ever sees well-formed cursors and unit ids.
 */
import { LIMITS } from '../../decoders/index.js'
import type { ClientMessage, UnitResume } from '../../streams/index.js'

/** A page watches a handful of units at once; more is a bug or abuse. */
const MAX_WATCH = 32
const MAX_RESUME = 512
export const MAX_CLIENT_MESSAGE_BYTES = 64 * 1024

function isObject (v: unknown): v is Record<string, unknown> { return typeof v === 'object' && v !== null && !Array.isArray(v) }
function isUnit (v: unknown): v is string { return typeof v === 'string' && LIMITS.idPattern.test(v) }
function isIndex (v: unknown): v is number { return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 }

function resume (v: unknown): UnitResume | null {
  if (v === undefined) return {}
  if (!isObject(v)) return null
  const out: UnitResume = {}
  if (v.trendEpoch !== undefined) { if (typeof v.trendEpoch !== 'string' || v.trendEpoch.length > 64) return null; out.trendEpoch = v.trendEpoch }
  if (v.ecgEpoch !== undefined) { if (typeof v.ecgEpoch !== 'string' || v.ecgEpoch.length > 64) return null; out.ecgEpoch = v.ecgEpoch }
  if (v.trendNext !== undefined) { if (!isIndex(v.trendNext)) return null; out.trendNext = v.trendNext }
  if (v.ecgNext !== undefined) { if (!isIndex(v.ecgNext)) return null; out.ecgNext = v.ecgNext }
  return out
}

/** The message, or null when it is not one the protocol defines. */
export function parseClientMessage (text: string): ClientMessage | null {
  let m: unknown
  try { m = JSON.parse(text) } catch { return null }
  if (!isObject(m)) return null
  switch (m.type) {
    case 'hello': {
      if (!Array.isArray(m.watch) || m.watch.length > MAX_WATCH || !m.watch.every(isUnit)) return null
      if (!isObject(m.resume)) return null
      const entries = Object.entries(m.resume)
      if (entries.length > MAX_RESUME) return null
      const out: Record<string, UnitResume> = {}
      for (const [unit, r] of entries) {
        const parsed = resume(r)
        if (!isUnit(unit) || parsed === null) return null
        out[unit] = parsed
      }
      return { type: 'hello', watch: m.watch, resume: out }
    }
    case 'watch': {
      const r = resume(m.resume)
      return isUnit(m.unit) && r !== null ? { type: 'watch', unit: m.unit, resume: r } : null
    }
    case 'unwatch':
      return isUnit(m.unit) ? { type: 'unwatch', unit: m.unit } : null
    case 'resync':
      return isUnit(m.unit) && isIndex(m.trendFrom) ? { type: 'resync', unit: m.unit, trendFrom: m.trendFrom } : null
    default:
      return null
  }
}
