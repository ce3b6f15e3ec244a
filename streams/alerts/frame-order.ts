/**
 * Which of a unit's frames are new, and where each one sits on the unit's timeline. Used by the
 * alert engine and the live hub alike (docs/alerts.md, "A device clock set back").
 *
 * Within one boot a frame's `seq` (+1 per frame, contract v1) gives the true order whatever the
 * device clock says: a frame with a higher seq than any seen in its boot is new, even when its
 * capture time is earlier — the device clock was set back (an NTP step), or the frame was stamped
 * when its measurement began. Its capture time is then moved onto the unit's timeline: a shift is
 * added so that it continues where the newest frame (and the newest ECG) ended, and the boot's
 * later frames keep that shift, so rule durations, NEWS2, stream loss, the STEMI window, the
 * dashboard's rings and trend all go on as if the clock had not moved. The shift drops to 0 as
 * soon as the device clock is no longer behind the timeline (after a silence longer than the
 * correction, or a step forward). An ECG chunk that exactly continues the last ECG is no step
 * (a chunk is sent when full, after a vitals frame measured meanwhile). A frame with a lower or
 * equal seq is late (a store-and-forward backlog, a resend) unless its capture time, on its
 * boot's timeline, is newer than every frame seen (a device that reuses seqs).
 *
 * Frames without a seq (0: the device never sets it) or with one past 10^15 are ordered by capture
 * time, as before: late when not newer than the newest frame.
 *
 * Across boots: a frame of another boot whose capture time is newer is new (a restart). One whose
 * clock is behind — a restart with the clock set back, or the backlog of an older boot — is new
 * once the current boot has been silent for REBOOT_QUIET_MS (a restart takes longer), if its boot
 * is one the unit never had, or one it left whose seq is newer than any seen in it; otherwise it
 * is late. A boot taken over behind the timeline continues it, like a step within a boot.
 *
 * Hot path: place() parses the seq decimal with Number() (at most 15 digits: exact), compares a
 * few numbers and allocates nothing except when a boot changes.
 */
import { seqNumber, type Frame } from '../../decoders/index.js'

/** Boots a unit left that are remembered (a frame of one of them is late unless newer by its seq). */
export const PAST_BOOTS = 4
/** Shift segments kept per boot (each clock step starts one); a late frame older than all uses the oldest. */
const SEGMENTS = 8
/**
 * A frame of another boot with its clock behind the timeline takes over once the current boot
 * has been silent this long (gateway time, ms): a device restart (boot, network, MQTT connect)
 * takes longer, whereas a backlog of an older boot arrives while the current one streams.
 */
export const REBOOT_QUIET_MS = 5000
/**
 * Longest interval carried over a clock step between frames without ECG (a 1 Hz numerics stream),
 * ms; a longer gateway-time gap before the frame is a silence, carried over as it was.
 */
const MAX_CARRIED_GAP_MS = 2000
/** How far a kept shift may put a frame ahead of where it continues the timeline, ms (network jitter). */
const CONTINUATION_SLACK_MS = 1000

/** One boot's seqs and clock shifts. */
class BootClock {
  /** Highest seq placed as new in this boot; -1: none (or the device sets no seq). */
  top = -1
  /** Segments: from seq `from[i]` on, the boot's capture times get `shift[i]` ms. Oldest first. */
  readonly from = new Float64Array(SEGMENTS)
  readonly shift = new Float64Array(SEGMENTS)
  /**
   * Per segment, the seq gap before it: the boot's highest seq (`loSeq`) and the timeline time
   * (`loT`) when it began, and the timeline time of its first frame (`fromT`). A late frame with a
   * seq in that gap (a store-and-forward backlog) was captured between the two, whichever side
   * of the clock step.
   */
  readonly loSeq = new Float64Array(SEGMENTS)
  readonly loT = new Float64Array(SEGMENTS)
  readonly fromT = new Float64Array(SEGMENTS)
  n = 0

  constructor (readonly id: string) {}

  get current (): number { return this.n === 0 ? 0 : this.shift[this.n - 1]! }

  /**
   * Timeline time of a frame of this boot captured at `c` with seq `seq` that is not newer by seq:
   * its capture time plus its segment's shift; but a frame in the seq gap before a segment (the
   * link was down when the clock stepped) lies between the frames on either side of the gap: if
   * the shift puts it outside, it is placed there in proportion to its seq.
   */
  timeOf (seq: number, c: number): number {
    if (Number.isNaN(seq) || this.n === 0) return c + this.current
    const i = this.segmentOf(seq)
    const t = c + this.shift[i]!
    const j = i + 1
    if (j < this.n && seq > this.loSeq[j]! && seq < this.from[j]!) {
      const lo = this.loT[j]!
      const hi = this.fromT[j]!
      if (!(t > lo && t < hi) && hi > lo) return lo + (seq - this.loSeq[j]!) / (this.from[j]! - this.loSeq[j]!) * (hi - lo)
    }
    return t
  }

  private segmentOf (seq: number): number {
    for (let i = this.n - 1; i > 0; i--) if (seq >= this.from[i]!) return i
    return 0
  }

  /**
   * From seq `seq` on (NaN: no seq) the shift is `s`; `loSeq`/`loT`: the boot's highest seq and
   * the timeline time before it, `t`: the frame's timeline time (no gap when not given).
   */
  setShift (seq: number, s: number, loSeq = NaN, loT = NaN, t = NaN): void {
    if (this.n > 0 && this.shift[this.n - 1] === s) return
    const from = Number.isNaN(seq) ? (this.n === 0 ? 0 : this.from[this.n - 1]!) : seq
    if (this.n > 0 && this.from[this.n - 1] === from) { this.shift[this.n - 1] = s; return }
    if (this.n === SEGMENTS) {
      for (const a of [this.from, this.shift, this.loSeq, this.loT, this.fromT]) a.copyWithin(0, 1)
      this.n--
    }
    this.from[this.n] = from
    this.shift[this.n] = s
    this.loSeq[this.n] = loSeq
    this.loT[this.n] = loT
    this.fromT[this.n] = t
    this.n++
  }
}

/** A frame's seq as a number; NaN when it has none (0) or is too long to compare exactly. */
export function orderSeq (seq: string): number {
  return seq === '0' ? NaN : seqNumber(seq)
}

export class FrameOrder {
  /** Set by place(): whether the frame is late (not newer than what the unit sent before). */
  late = false
  /** Set by place(): the frame's capture time on the unit's timeline, ms. */
  t = 0
  /** Timeline time of the newest frame's start. */
  lastT = -Infinity
  /** Timeline time where the newest ECG ends. */
  private ecgEnd = -Infinity
  /** The last advance of lastT (≤ MAX_CARRIED_GAP_MS): what a step carries over for frames without ECG. */
  private gap = 0
  private cur: BootClock | null = null
  /** Boots the unit left, oldest first. */
  private readonly past: BootClock[] = []
  /** Gateway time of the current boot's last frame. */
  private curHeardGw = -Infinity
  /** Gateway time the newest frame arrived. */
  private lastGw = -Infinity

  /** The current boot's id ('' before any frame). */
  get boot (): string { return this.cur?.id ?? '' }
  /** Highest seq of the current boot placed as new (-1: none). */
  get top (): number { return this.cur?.top ?? -1 }
  /** The current boot's shift, ms. */
  get shift (): number { return this.cur?.current ?? 0 }

  /**
   * Continues from a snapshot (a restart, a take-over): the boot, the newest frame's timeline
   * time and, when kept, the boot's highest seq and shift. Without them the first frames of the
   * boot are ordered by capture time until one is new.
   */
  restore (boot: string, lastT: number, top: number | undefined, shift: number | undefined): void {
    if (boot === '' || !Number.isFinite(lastT)) return
    const b = new BootClock(boot)
    if (top !== undefined && Number.isSafeInteger(top) && top > 0) b.top = top
    if (shift !== undefined && Number.isFinite(shift) && shift > 0) b.setShift(b.top > 0 ? b.top : NaN, shift)
    this.cur = b
    this.past.length = 0
    this.lastT = lastT
    this.ecgEnd = -Infinity
  }

  /** Places frame `f` arriving at gateway time `nowGw`: sets `late` and `t`. */
  place (f: Frame, nowGw: number): void {
    const c = f.capturedAtMs
    const seq = orderSeq(f.seq)
    const b = this.cur
    if (b === null) { this.switchTo(new BootClock(f.bootId), seq, f, nowGw); return }
    if (f.bootId === b.id) {
      this.curHeardGw = nowGw
      if (!Number.isNaN(seq) && b.top >= 0 && seq > b.top) { this.advance(b, seq, f, nowGw); return }
      // Not newer by seq (or no seq to tell): by capture time on the boot's timeline.
      const t = b.timeOf(seq, c)
      if (t > this.lastT) {
        if (!Number.isNaN(seq) && seq > b.top) b.top = seq
        this.newest(t, f, nowGw)
        return
      }
      this.late = true
      this.t = t
      return
    }
    let p: BootClock | undefined
    for (let i = 0; i < this.past.length; i++) if (this.past[i]!.id === f.bootId) { p = this.past[i]; break }
    const t = p === undefined ? c : p.timeOf(seq, c)
    const quiet = nowGw - this.curHeardGw >= REBOOT_QUIET_MS
    const seqNewer = p !== undefined && !Number.isNaN(seq) && p.top >= 0 && seq > p.top
    if (t > this.lastT || (quiet && (p === undefined || seqNewer))) {
      this.past.push(b)
      if (p !== undefined) this.past.splice(this.past.indexOf(p), 1)
      else if (this.past.length > PAST_BOOTS) this.past.shift()
      this.switchTo(p ?? new BootClock(f.bootId), seq, f, nowGw)
      return
    }
    this.late = true
    this.t = t
  }

  private switchTo (b: BootClock, seq: number, f: Frame, nowGw: number): void {
    this.cur = b
    this.curHeardGw = nowGw
    this.advance(b, seq, f, nowGw)
  }

  /** A frame new by its seq (or the first of a boot): continues the timeline. */
  private advance (b: BootClock, seq: number, f: Frame, nowGw: number): void {
    const c = f.capturedAtMs
    let s = b.current
    const w = f.waveforms[0]
    if (w !== undefined && Math.abs(c + s + w.offsetMs - this.ecgEnd) <= 1000 / w.sampleRateHz) {
      // The exact continuation of the last ECG: no step, even when it starts before the newest
      // frame (an ECG chunk is sent when full, after a vitals frame measured meanwhile).
    } else if (c >= this.lastT) {
      // The device clock is not behind the timeline: it needs no shift (any more).
      s = 0
    } else if (this.lastGw === -Infinity && c + s >= this.lastT) {
      // The first frame after a restore (a gateway restart, a take-over): how long the unit was
      // silent is unknown, and the boot's kept shift is what is known of its clock. Pulled back to
      // the newest frame held instead, it sat before the backlog redelivered after it, which
      // then counted as newer and replaced its readings (a low blood pressure, cleared).
    } else {
      // Where the frame continues the timeline: after a silence (a restart, a link down), as
      // much later as the gateway clock says; else an ECG chunk right after the last ECG (while
      // ECG streams), a frame without ECG one usual interval after the newest frame.
      const elapsed = nowGw - this.lastGw
      const silence = Number.isFinite(elapsed) && elapsed > MAX_CARRIED_GAP_MS
      const ecgOn = w !== undefined && !silence && this.ecgEnd >= this.lastT - MAX_CARRIED_GAP_MS
      const target = silence
        ? Math.max(this.ecgEnd, this.lastT + elapsed)
        : w === undefined ? Math.max(this.ecgEnd, this.lastT + this.gap) : ecgOn ? this.ecgEnd - w.offsetMs : this.lastT
      // The shift kept is right when it puts the frame after the newest one (after the last ECG,
      // for ECG) and not further ahead than where it continues. Else the clock was set back (or
      // the frame stamped when its measurement began), or the shift came from one early-stamped
      // frame rather than a step: the frame continues the timeline.
      const lo = ecgOn ? target : this.lastT
      if (c + s < lo || c + s > Math.max(target, this.lastT) + CONTINUATION_SLACK_MS) s = Math.max(0, target - c)
    }
    b.setShift(seq, s, b.top, this.lastT, c + s)
    if (!Number.isNaN(seq) && seq > b.top) b.top = seq
    this.newest(c + s, f, nowGw)
  }

  private newest (t: number, f: Frame, nowGw: number): void {
    if (t > this.lastT) {
      if (this.lastT > -Infinity) this.gap = Math.min(t - this.lastT, MAX_CARRIED_GAP_MS)
      this.lastT = t
    }
    this.lastGw = nowGw
    const w = f.waveforms[0]
    if (w !== undefined) {
      const end = t + w.offsetMs + w.samples.length * 1000 / w.sampleRateHz
      if (end > this.ecgEnd) this.ecgEnd = end
    }
    this.late = false
    this.t = t
  }
}
