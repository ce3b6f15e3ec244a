/**
 * Which frames ingest has handed to the live consumers (the alert engine, the dashboard hub, the
 * roster), so a device's QoS 1 resend of one of them — its first copy still being written, or
 * acknowledged but the PUBACK lost — is stored again (idempotent) but not evaluated or drawn a
 * second time (ingest.ts).
 *
 * Per unit: its current boot and the last WINDOW sequence numbers, each with the low 32 bits of
 * its capture time (5 KiB per unit, no allocation per frame). A resend is the same seq with the
 * same capture time: a device that reuses a seq for another frame (against the contract, e.g. one
 * that never sets it and sends 0 each time) still has every frame evaluated. What this cannot
 * tell — a seq older than the window, another boot's frame, a seq past 2^53 — counts as not
 * handed over: the frame goes to the consumers, whose own checks treat a frame not newer than
 * what they hold as late (the engine's resend check, the hub's rings, the STEMI window). So the
 * error this can make is a late frame evaluated, never a new frame withheld.
 */

/** Sequence numbers remembered per unit: 1024 frames, 4 min of 250 ms frames. */
export const HANDED_OVER_WINDOW = 1024

/** Longest decimal a double holds exactly (2^53 has 16 digits). */
const MAX_EXACT_DIGITS = 15

class UnitSeqs {
  /** Highest seq handed over in this boot (-1: none). */
  top = -1
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
    if (seq.length > MAX_EXACT_DIGITS) return true
    const n = Number(seq)
    let u = this.units.get(unit)
    // A new boot starts over (a late frame of the previous boot does too: it is then evaluated as late).
    if (u === undefined || u.boot !== boot) this.units.set(unit, u = new UnitSeqs(boot))
    const w = HANDED_OVER_WINDOW
    if (n > u.top) {
      // Slots between the old top and n belong to seqs not seen yet.
      if (n - u.top >= w) u.seen.fill(0)
      else for (let s = u.top + 1; s < n; s++) u.seen[s % w] = 0
      u.top = n
      u.seen[n % w] = 1
      u.at[n % w] = stamp
      return true
    }
    if (u.top - n >= w) return true
    if (u.seen[n % w] === 1 && u.at[n % w] === stamp) return false
    u.seen[n % w] = 1
    u.at[n % w] = stamp
    return true
  }
}
