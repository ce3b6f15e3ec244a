/**
 * CPU time of a process (all its threads: libuv's pool included), from /proc/<pid>/stat. On a
 * shared, loaded machine wall-clock rates swing with the neighbours; CPU seconds per frame move
 * far less, so the benchmark reports both.
 */
import { readFile } from 'node:fs/promises'

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on Linux for decades). */
const CLOCK_TICKS_PER_S = 100

/** utime + stime of `pid`, seconds; 0 if the process is gone. */
export async function processCpuSeconds (pid: number): Promise<number> {
  let stat: string
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return 0
  }
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S
}

/** CPU seconds several processes use while `fn` runs. */
export async function measureCpu<T> (pids: readonly number[], fn: () => Promise<T>): Promise<{ result: T, cpuSeconds: number[], selfCpuSeconds: number }> {
  const before = await Promise.all(pids.map(processCpuSeconds))
  const self0 = process.cpuUsage()
  const result = await fn()
  const self = process.cpuUsage(self0)
  const after = await Promise.all(pids.map(processCpuSeconds))
  return { result, cpuSeconds: after.map((a, i) => Math.round((a - before[i]!) * 100) / 100), selfCpuSeconds: Math.round((self.user + self.system) / 1e4) / 100 }
}

/** Resident set size of `pid` in bytes (VmRSS); 0 if the process is gone. */
export async function processRssBytes (pid: number): Promise<number> {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))
    return m === null ? 0 : Number(m[1]) * 1024
  } catch {
    return 0
  }
}
