// Moved to loadtest/servers/mosquitto.ts so `ambulink bench` can use it without importing from test/;
// one copy, re-exported here for the tests.
export * from '../../loadtest/servers/mosquitto.js'
