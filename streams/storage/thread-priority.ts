/**
 * Lowers the scheduling priority of the calling thread only (issue 12, goal 2): the sink's worker
 * thread calls it at its start, so on a box it shares with InfluxDB the thread that serves MQTT
 * and evaluates alerts gets the CPU first and the drain takes what is left.
 *
 * Linux: `/proc/thread-self` names `<pid>/task/<tid>`, and setpriority(2) on a thread id applies
 * to that thread alone (a process's threads each have their own nice value). Raising the nice
 * value needs no privilege; it is capped at 19, the lowest priority. Elsewhere, or if any step
 * fails, nothing changes and the result carries a notice saying why.
 */
import { readlinkSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'

/** Lowest priority (highest nice value) on Linux. */
export const NICE_MAX = 19

export interface ThreadPriority {
  /** The thread's id (Linux), or null where it could not be read. */
  tid: number | null
  /** Nice value before and after; null where it could not be read. */
  niceBefore: number | null
  nice: number | null
  /** Why the request was not applied in full (unsupported, capped, refused); null when it was. */
  notice: string | null
}

/** Raises the calling thread's nice value by `increment` (0: leaves it, reports it). */
export function lowerThreadPriority (increment: number): ThreadPriority {
  let tid: number
  try {
    const m = /^\d+\/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'))
    if (m === null) throw new Error('/proc/thread-self does not name a task')
    tid = Number(m[1])
  } catch (err) {
    const notice = increment === 0 ? null : `thread priorities are not supported here (${(err as Error).message}): the sink worker runs at the gateway's priority`
    return { tid: null, niceBefore: null, nice: null, notice }
  }
  const niceBefore = getPriority(tid)
  if (increment === 0) return { tid, niceBefore, nice: niceBefore, notice: null }
  const want = niceBefore + increment
  const target = Math.min(NICE_MAX, want)
  try {
    setPriority(tid, target)
  } catch (err) {
    return { tid, niceBefore, nice: getPriority(tid), notice: `could not lower the sink worker's priority (${(err as Error).message})` }
  }
  const notice = target < want ? `the sink worker's nice value is capped at ${NICE_MAX} (the gateway runs at ${niceBefore}; asked for +${increment})` : null
  return { tid, niceBefore, nice: getPriority(tid), notice }
}
