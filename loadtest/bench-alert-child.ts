/**
 * The alert probes (bench-alerts.ts) in a process of their own, driven over IPC by
 * bench-alert-process.ts: the probe devices and the clinician's client then share an event loop
 * only with each other (a few units), not with the fleet of hundreds the bench generates, so
 * publish → alert measures the gateway rather than the load generator. Each event is stamped
 * here, on receipt, and sent to the parent.
 */
import { AlertProbes, type AlertProbeOptions } from './bench-alerts.js'

export type ProbeChildOptions = Omit<AlertProbeOptions, 'log' | 'onEvent' | 'deviceMqttOptions'>

export type ToProbeChild =
  | { op: 'connect', options: ProbeChildOptions }
  | { op: 'start', startMs: number }
  | { op: 'stop', drainMs: number }

export type FromProbeChild =
  | { op: 'connected' }
  | { op: 'event', unit: string, type: 'raised' | 'cleared', sentAt: number, receivedAt: number }
  | { op: 'log', msg: string }
  | { op: 'error', message: string }
  | { op: 'stopped', reports: ReturnType<AlertProbes['reports']>, linkStats: ReturnType<AlertProbes['linkStats']>, unmatched: number }

const send = (m: FromProbeChild): void => { process.send?.(m) }
let probes: AlertProbes | null = null

async function handle (m: ToProbeChild): Promise<void> {
  if (m.op === 'connect') {
    probes = new AlertProbes({ ...m.options, log: msg => { send({ op: 'log', msg }) }, onEvent: e => { send({ op: 'event', ...e }) } })
    await probes.connect()
    send({ op: 'connected' })
  } else if (m.op === 'start') {
    probes?.start(m.startMs)
  } else if (probes !== null) {
    await probes.stop(m.drainMs)
    // The parent disconnects once it has this: then the process exits.
    send({ op: 'stopped', reports: probes.reports(), linkStats: probes.linkStats(), unmatched: probes.unmatched })
  }
}

process.on('message', (m: ToProbeChild) => {
  handle(m).catch((err: Error) => { send({ op: 'error', message: err.message }) })
})
// The parent gone (or done): nothing here may outlive it.
process.on('disconnect', () => { process.exit(0) })
