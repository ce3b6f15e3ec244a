/**
 * Which frames ingest has handed to its consumers, so a device's QoS 1 resend of one of them —
 * its first copy still being written, refused by the spool, or acknowledged but the PUBACK lost —
 * is stored again (idempotent) but reaches each consumer once (ingest.ts):
 *
 * - first(): handed to the 'validated' consumers (the alert engine, the dashboard hub, the
 *   roster) once, whether its first copy is then stored or refused;
 * - firstStored(): announced as stored ('frame': the research live stream) once, at the first
 *   copy the spool keeps — the resend of a copy the spool refused is that first copy.
 *
 * Per unit: its current boot and the last WINDOW sequence numbers, each with the low 32 bits of
 * its capture time and two flags (5 KiB per unit, no allocation per frame). A resend is the same
 * seq with the same capture time: a device that reuses a seq for another frame (against the
 * contract, e.g. one that never sets it and sends 0 each time) still has every frame evaluated
 * and announced. What this cannot tell — a seq older than the window, another boot's frame, a
 * seq past 2^53, anything before a restart (the memory is the process') — counts as not handed
 * over: the frame goes to the consumers, whose own checks treat a frame not newer than what they
 * hold as late (the engine's resend check, the hub's rings, the STEMI window), and is announced
 * as stored again. So the error this can make is a late frame evaluated or announced twice,
 * never a new frame withheld.
 */
import { seqNumber } from '../decoders/index.js'

/** Sequence numbers remembered per unit: 1024 frames, 4 min of 250 ms frames. */
export const HANDED_OVER_WINDOW = 1024


/** Slot flags: the frame went to the 'validated' consumers; a copy of it was announced as stored. */
const HANDED = 1
const STORED = 2

class UnitSeqs {
  /** Highest seq handed over in this boot (-1: none). */
  top = -1
  /** Per slot: 0 (no frame), HANDED, or HANDED | STORED. */
  readonly seen = new Uint8Array(HANDED_OVER_WINDOW)
  /** The capture time (ms, low 32 bits) of the frame each seen slot holds. */
  readonly at = new Uint32Array(HANDED_OVER_WINDOW)
  constructor (readonly boot: string) {}
}

export class HandedOver {
  private readonly units = new Map<string, UnitSeqs>()

  /**
   * Marks the frame (unit, boot, seq as the decoder writes it: a decimal; its capture time) as
   * handed over. Returns false when it already was: a resend.
   */
  first (unit: string, boot: string, seq: string, capturedAtMs: number): boolean {
    const stamp = capturedAtMs >>> 0
    const n = seqNumber(seq)
    if (Number.isNaN(n)) return true
    let u = this.units.get(unit)
    // A new boot starts over (a late frame of the previous boot does too: it is then evaluated as late).
    if (u === undefined || u.boot !== boot) this.units.set(unit, u = new UnitSeqs(boot))
    const w = HANDED_OVER_WINDOW
    if (n > u.top) {
      // Slots between the old top and n belong to seqs not seen yet.
      if (n - u.top >= w) u.seen.fill(0)
      else for (let s = u.top + 1; s < n; s++) u.seen[s % w] = 0
      u.top = n
      u.seen[n % w] = HANDED
      u.at[n % w] = stamp
      return true
    }
    if (u.top - n >= w) return true
    if (u.seen[n % w] !== 0 && u.at[n % w] === stamp) return false
    u.seen[n % w] = HANDED
    u.at[n % w] = stamp
    return true
  }

  /**
   * A copy of the frame (handed over with first() in the same ingest call) is durable in the
   * spool. Returns true for the first copy stored — the one to announce — and false for a later
   * copy of a frame already announced. A copy the spool refused never gets here, so the resend
   * stored after it is the first. What first() cannot tell is announced (true).
   */
  firstStored (unit: string, boot: string, seq: string, capturedAtMs: number): boolean {
    const n = seqNumber(seq)
    if (Number.isNaN(n)) return true
    const u = this.units.get(unit)
    if (u === undefined || u.boot !== boot) return true
    if (n > u.top || u.top - n >= HANDED_OVER_WINDOW) return true
    const i = n % HANDED_OVER_WINDOW
    const flags = u.seen[i]!
    // Another frame in this slot since (a seq reused with another capture time): not this one's.
    if (flags === 0 || u.at[i] !== capturedAtMs >>> 0) return true
    if ((flags & STORED) !== 0) return false
    u.seen[i] = flags | STORED
    return true
  }
}
