import { defineConfig } from 'vitest/config';

// Integration tests start real servers (influxd, victoria-metrics, mosquitto),
// so: generous timeouts, separate processes per file (pool 'forks', which also
// lets test/support/proc.ts kill leftover children on worker exit), and at
// most 2 files in parallel on the 2-core CI machine.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
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
