/**
 * streams/: what happens to a validated frame. Four parts, each with its own index:
 * - storage/: the durable spool (fsync'd before PUBACK), dead letters, line protocol, the sink;
 * - alerts/: the alert engine (rules, NEWS2, device alarms, STEMI/stroke, signal loss);
 * - live/: the live hub feeding the clinicians' dashboards;
 * - dataspace/: permits, protection, extracts, the live research stream, the audit log.
 * gateway/ and cli/ import from here, never from the files behind it.
 */
export * from './storage/index.js'
export * from './alerts/index.js'
export * from './live/index.js'
export * from './dataspace/index.js'
