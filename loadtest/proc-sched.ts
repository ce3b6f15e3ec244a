/**
 * Linux scheduler views of a process's threads, for benchmarks about CPU priority (issue 12,
 * goal 2): each thread's CPU time and the time it spent runnable but waiting for a CPU
 * (/proc/<pid>/task/<tid>/schedstat, ns), its nice value, and renicing every thread of a process
 * (setpriority(2) on a pid changes its main thread only; threads started later inherit from the
 * thread that starts them).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'

export interface ThreadSched { tid: number, cpuNs: number, waitNs: number, nice: number }

/** Every thread of `pid` now (threads that end meanwhile are left out). */
export function threadsOf (pid: number): ThreadSched[] {
  let tids: string[]
  try { tids = readdirSync(`/proc/${pid}/task`) } catch { return [] }
  const out: ThreadSched[] = []
  for (const t of tids) {
    try {
      const [cpu, wait] = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').trim().split(' ').map(Number)
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8')
      const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19 - 3])
      out.push({ tid: Number(t), cpuNs: cpu!, waitNs: wait!, nice })
    } catch { /* the thread ended */ }
  }
  return out
}

/** Sets every thread of `pid` to nice `nice`; returns how many threads were set and the first error. */
export function reniceAll (pid: number, nice: number): { threads: number, error: string | null } {
  let threads = 0
  let error: string | null = null
  for (const t of threadsOf(pid)) {
    try {
      setPriority(t.tid, nice)
      threads++
    } catch (err) {
      error ??= (err as Error).message
    }
  }
  return { threads, error }
}

/** This process's nice value (its main thread's). */
export function ownNice (): number { return getPriority(process.pid) }

/** CPU and run-queue wait between two views, per second of wall time, for some of the threads. */
export interface SchedDelta {
  /** CPU seconds per second (1 = one core). */
  cpu: number
  /** Seconds runnable but waiting for a CPU, per second (summed over the threads). */
  wait: number
}

export function schedDelta (before: ThreadSched[], after: ThreadSched[], wallS: number, pick: (tid: number) => boolean = () => true): SchedDelta {
  const was = new Map(before.map(t => [t.tid, t]))
  let cpu = 0
  let wait = 0
  for (const t of after) {
    if (!pick(t.tid)) continue
    const b = was.get(t.tid)
    cpu += t.cpuNs - (b?.cpuNs ?? 0)
    wait += t.waitNs - (b?.waitNs ?? 0)
  }
  return { cpu: Math.round(cpu / 1e9 / wallS * 1000) / 1000, wait: Math.round(wait / 1e9 / wallS * 1000) / 1000 }
}
