import { defineConfig } from 'vitest/config';

// Integration tests start real servers (influxd, victoria-metrics, mosquitto),
// so: generous timeouts, separate processes per file (pool 'forks', which also
// lets test/support/proc.ts kill leftover children on worker exit), and at
// most 2 files in parallel on the 2-core CI machine.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One event-loop turn after each test, so a run of synchronous tests cannot hold vitest's
    // worker RPC replies past their fixed 60 s ("Timeout calling onTaskUpdate"; the file says why).
    setupFiles: ['test/yield-to-runner.ts'],
    // A worker (one per test file) gets this long to exit once its file is done, and the run this
    // long to close. vitest's 10 s is short on a loaded 2-core machine for a worker whose exit
    // kills its servers (InfluxDB, Chromium): it then reports "Failed to terminate worker" and
    // exits on its close timer as for a hanging process.
    teardownTimeout: 60_000,
    testTimeout: 60_000,
    // Hooks start InfluxDB, gateways and brokers: on a loaded machine one setup ran past 60 s
    // (test/alerts-e2e.test.ts's: InfluxDB, an in-process gateway, mosquitto_sub).
    hookTimeout: 120_000,
    // expect.poll() gives up after 1 s by default: too short for a page under Chromium to
    // re-render on a loaded 2-core machine. Bounded waits for state, not timing claims.
    expect: { poll: { timeout: 20_000 } },
    pool: 'forks',
    fileParallelism: true,
    poolOptions: {
      forks: { minForks: 1, maxForks: 2 },
    },
  },
});
