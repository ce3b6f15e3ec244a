/**
 * Fault injection for test/sink-drain-failure.test.ts: `AMBULINK_FAULT_DRAIN_UNIT=<unit>` makes
 * the step that turns a spooled frame of that unit into line protocol throw a plain Error, as a
 * bug in the decoder or the line-protocol writer would. No real part produces that on demand: a
 * frame the spool holds was validated at ingest by the same decoder, so only a bug (or a decoder
 * changed by an upgrade) can make it fail when draining, and a test cannot write such a bug.
 *
 * Read once per expander (the sink's worker thread reads its own when it starts). Unset
 * (production), it costs one comparison per frame record.
 */
export function drainFaultUnit (): string | null {
  const unit = process.env.AMBULINK_FAULT_DRAIN_UNIT
  return unit === undefined || unit === '' ? null : unit
}
