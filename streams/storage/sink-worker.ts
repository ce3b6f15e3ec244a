/**
 * The sink's worker thread (started by sink-thread.ts): runs the jobs the main thread sends
 * (sink-job.ts) and answers each with its outcome, so the drain's CPU (checksums, decoding frame
 * records again, line protocol, gzip, HTTP) stays off the thread that serves MQTT and alerts.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { SinkJobs, type SinkJobTarget, type WriteJob } from './sink-job.js'
import { lowerThreadPriority, type ThreadPriority } from './thread-priority.js'

/** Main → worker. The first `write` of a batch carries its records (transferred, not copied). */
export type ToSinkWorker = { type: 'write', job: WriteJob } | { type: 'forget', id: number }

/** What the worker is started with: the target, and how many nice levels below the gateway it runs. */
export interface SinkWorkerData { target: SinkJobTarget, niceIncrement: number }

/** Worker → main, once, before any job: the worker is up, at this priority. */
export interface SinkWorkerReady { type: 'ready', priority?: ThreadPriority }

const port = parentPort
if (port === null) throw new Error('sink-worker.ts runs as a worker thread (sink-thread.ts starts it)')
const data = workerData as SinkWorkerData
// First, before any job: the drain then always runs below the thread that serves alerts.
const priority = lowerThreadPriority(data.niceIncrement)
const jobs = new SinkJobs(data.target)
port.on('message', (m: ToSinkWorker) => {
  if (m.type === 'forget') {
    jobs.forget(m.id)
    return
  }
  void jobs.run(m.job).then(out => { port.postMessage(out) })
})
port.postMessage({ type: 'ready', priority } satisfies SinkWorkerReady)
