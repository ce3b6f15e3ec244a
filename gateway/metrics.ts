/**
 * Prometheus metrics (prom-client), one registry per gateway so several gateways can live in
 * one process (tests). Every name is prefixed `ambulink_`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export function createMetrics (defaults = true) {
  const registry = new Registry()
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'ambulink_' })
  const r = { registers: [registry] }
  /** Live values read at scrape time; the gateway points these at its components. */
  const sources = {
    spoolBytes: (): number => 0,
    spoolPendingBytes: (): number => 0,
    spoolLagSeconds: async (): Promise<number> => 0,
    connectedClients: (): number => 0,
    alertsOpen: (): number => 0
  }
  return {
    registry,
    sources,
    framesAccepted: new Counter({ name: 'ambulink_frames_accepted_total', help: 'Frames decoded, validated and spooled', labelNames: ['transport'], ...r }),
    framesRejected: new Counter({ name: 'ambulink_frames_rejected_total', help: 'Frames refused, by reason code', labelNames: ['reason'], ...r }),
    framesReplayed: new Counter({ name: 'ambulink_frames_replayed_total', help: 'Accepted frames whose (boot, seq) was seen before (device resends; idempotent)', ...r }),
    frameConsumerErrors: new Counter({ name: 'ambulink_frame_consumer_errors_total', help: 'Frames a live consumer (alert engine, live hub, roster, research stream) failed on; the frame was kept and acknowledged all the same', labelNames: ['consumer'], ...r }),
    frameBytes: new Counter({ name: 'ambulink_frame_bytes_total', help: 'Bytes of accepted frames', ...r }),
    pointsSpooled: new Counter({ name: 'ambulink_points_spooled_total', help: 'Points appended to the spool', ...r }),
    pointsWritten: new Counter({ name: 'ambulink_points_written_total', help: 'Points acknowledged by InfluxDB', ...r }),
    pointsRejected: new Counter({ name: 'ambulink_points_rejected_total', help: 'Lines InfluxDB refused (moved to dead letters)', ...r }),
    influxWriteSeconds: new Histogram({ name: 'ambulink_influx_write_duration_seconds', help: 'InfluxDB write request latency', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], ...r }),
    influxRetries: new Counter({ name: 'ambulink_influx_write_retries_total', help: 'Failed InfluxDB writes that will be retried', ...r }),
    sinkWorkerCrashes: new Counter({ name: 'ambulink_sink_worker_crashes_total', help: 'Crashes of the InfluxDB sink\'s worker thread (restarted with backoff; its batches retried from the spool)', ...r }),
    influxUp: new Gauge({ name: 'ambulink_influx_up', help: '1 while InfluxDB writes succeed, 0 while failing, absent without InfluxDB', ...r }),
    storedLagSeconds: new Histogram({ name: 'ambulink_receive_to_stored_seconds', help: 'From frame receipt to InfluxDB acknowledgement (first frame of each batch)', buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], ...r }),
    spoolBytes: new Gauge({ name: 'ambulink_spool_bytes', help: 'Bytes on disk in the spool', ...r, collect () { this.set(sources.spoolBytes()) } }),
    spoolPendingBytes: new Gauge({ name: 'ambulink_spool_pending_bytes', help: 'Spooled bytes not yet acknowledged by InfluxDB', ...r, collect () { this.set(sources.spoolPendingBytes()) } }),
    spoolMaxBytes: new Gauge({ name: 'ambulink_spool_max_bytes', help: 'Spool bound (maxSpoolBytes)', ...r }),
    spoolLagSeconds: new Gauge({ name: 'ambulink_spool_lag_seconds', help: 'Age of the oldest spooled record not yet in InfluxDB', ...r, async collect () { this.set(await sources.spoolLagSeconds()) } }),
    spoolRefused: new Counter({ name: 'ambulink_spool_refused_total', help: 'Appends the spool refused (frame not acknowledged), by reason code', labelNames: ['reason'], ...r }),
    spoolFault: new Gauge({ name: 'ambulink_spool_fault', help: '1 while the disk under the spool refuses writes (full or failing), else 0', ...r }),
    spoolRotationFailures: new Counter({ name: 'ambulink_spool_rotation_failures_total', help: 'Spool segment rotations that failed (the current segment kept taking appends)', ...r }),
    spoolAppendSeconds: new Histogram({ name: 'ambulink_spool_append_duration_seconds', help: 'Append + group-commit fsync latency (what a device waits for its PUBACK)', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], ...r }),
    spoolUndrainable: new Counter({ name: 'ambulink_spool_undrainable_total', help: 'Spooled frames the sink could not turn into line protocol (refused by the decoder, or an internal error), by reason code: dead-lettered, the drain goes on', labelNames: ['reason'], ...r }),
    deadLetters: new Counter({ name: 'ambulink_dead_letters_total', help: 'Entries written to the dead-letter store', labelNames: ['source'], ...r }),
    deadLettersDropped: new Counter({ name: 'ambulink_dead_letters_dropped_total', help: 'Dead letters not kept because the store is at its bound', ...r }),
    mqttRefused: new Counter({ name: 'ambulink_mqtt_refused_total', help: 'MQTT connections, publishes and subscriptions refused, by reason code', labelNames: ['reason'], ...r }),
    mqttOfflineDropped: new Counter({ name: 'ambulink_mqtt_offline_dropped_total', help: 'QoS 1 messages dropped from a persistent client\'s full queue (MAX_QUEUED_PER_CLIENT), by what they were: superseded, cleared, other, low, medium, high', labelNames: ['kind'], ...r }),
    httpRefused: new Counter({ name: 'ambulink_http_refused_total', help: 'HTTP requests refused before decoding, by reason code', labelNames: ['reason'], ...r }),
    connectedClients: new Gauge({ name: 'ambulink_mqtt_connected_clients', help: 'Connected MQTT clients', ...r, collect () { this.set(sources.connectedClients()) } }),
    alertsTotal: new Counter({ name: 'ambulink_alerts_total', help: 'Alert events (raised, updated, escalated, acknowledged, cleared) by kind and priority', labelNames: ['kind', 'priority', 'event'], ...r }),
    alertsOpen: new Gauge({ name: 'ambulink_alerts_open', help: 'Alerts open now', ...r, collect () { this.set(sources.alertsOpen()) } })
  }
}

export type Metrics = ReturnType<typeof createMetrics>
