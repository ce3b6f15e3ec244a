/**
 * Trace points of the alert path (issue 12, goal 2) on node:diagnostics_channel. Publishing
 * costs one check when nobody listens; a benchmark preloads a subscriber into a gateway child
 * (loadtest/alert-path.ts) to time each stage of publish → alert in the gateway itself:
 *
 * - `ambulink:frame:received` { unit }: a device's telemetry publish reached the MQTT handler
 *   (aedes authorizePublish), before it is decoded and spooled;
 * - `ambulink:alert:emitted` { unit, type, id }: the alert engine emitted an event (evaluation is
 *   done; it is handed to MQTT, the spool and dashboards);
 * - `ambulink:alert:delivered` { unit, type, id }: aedes' callback for that event's publish on
 *   `alerts/{unit}`: its delivery to every MQTT subscriber was handed to their sockets.
 *
 * The payloads carry unit ids only (no encounter ids, nothing clinical).
 */
import { channel } from 'node:diagnostics_channel'

export interface FrameReceivedTrace { unit: string }
export interface AlertTrace { unit: string, type: string, id: string }

export const TRACE_CHANNELS = Object.freeze({
  frameReceived: 'ambulink:frame:received',
  alertEmitted: 'ambulink:alert:emitted',
  alertDelivered: 'ambulink:alert:delivered'
})

export const traceFrameReceived = channel(TRACE_CHANNELS.frameReceived)
export const traceAlertEmitted = channel(TRACE_CHANNELS.alertEmitted)
export const traceAlertDelivered = channel(TRACE_CHANNELS.alertDelivered)
