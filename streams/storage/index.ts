// Storage's public surface: the durable spool, dead letters, the InfluxDB sink, line protocol,
// and the durable-file layer (atomic writes, directory fsync, pid lock files) everything uses.
export * from './spool.js'
export * from './dead-letter.js'
export * from './influx-sink.js'
export * from './line-buffer.js'
export * from './line-protocol.js'
export * from './frame-record.js'
export * from './errors.js'
export * from './durable.js'
