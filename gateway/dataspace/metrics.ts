/** The dataspace's Prometheus metrics, on the gateway's registry (names prefixed `ambulink_`). */
import { Counter, Gauge, type Registry } from 'prom-client'

export function createDataspaceMetrics (registry: Registry) {
  const r = { registers: [registry] }
  /** Live values read at scrape time; the dataspace points these at its components. */
  const sources = { liveSubscribers: (): number => 0 }
  return {
    sources,
    accesses: new Counter({ name: 'ambulink_dataspace_accesses_total', help: 'Dataspace accesses by endpoint and outcome (granted, refused)', labelNames: ['endpoint', 'outcome'], ...r }),
    refused: new Counter({ name: 'ambulink_dataspace_refused_total', help: 'Dataspace accesses refused, by reason code', labelNames: ['code'], ...r }),
    rows: new Counter({ name: 'ambulink_dataspace_rows_total', help: 'Rows released in extracts', labelNames: ['dataset'], ...r }),
    suppressedRows: new Counter({ name: 'ambulink_dataspace_suppressed_rows_total', help: 'Rows withheld from extracts (k-anonymity classes, position cells)', labelNames: ['dataset'], ...r }),
    liveMessages: new Counter({ name: 'ambulink_dataspace_live_messages_total', help: 'Messages sent on dataspace live streams', labelNames: ['dataset'], ...r }),
    liveCutoffs: new Counter({ name: 'ambulink_dataspace_live_cutoffs_total', help: 'Live-stream clients cut off for reading too slowly (AMB_ERR_DATASPACE_SLOW_CONSUMER)', ...r }),
    liveSubscribers: new Gauge({ name: 'ambulink_dataspace_live_subscribers', help: 'Open dataspace live streams', ...r, collect () { this.set(sources.liveSubscribers()) } }),
    auditIntegrityFailures: new Counter({ name: 'ambulink_audit_integrity_failures_total', help: 'Audit appends refused because the head did not check out (signature, rollback, unsigned entries): an operator must investigate', ...r })
  }
}

export type DataspaceMetrics = ReturnType<typeof createDataspaceMetrics>
