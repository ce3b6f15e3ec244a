// `ambulink bench --influx-nice N` (issue 12, goal 2): parsed, bounded, reported in the
// options the bench prints, 0 unless asked for.
import { describe, expect, it } from 'vitest'
import { BENCH_USAGE, parseBenchArgs } from '../loadtest/bench-options.js'

describe('bench options: --influx-nice', () => {
  it('defaults to 0 in both modes, takes 0..19, refuses more, and is in the usage text', () => {
    expect(parseBenchArgs(['--quick']).influxNice).toBe(0)
    expect(parseBenchArgs([]).influxNice).toBe(0)
    expect(parseBenchArgs(['--quick', '--influx-nice', '10']).influxNice).toBe(10)
    expect(parseBenchArgs(['--quick', '--influx-nice', '19']).influxNice).toBe(19)
    expect(() => parseBenchArgs(['--quick', '--influx-nice', '20'])).toThrow(/--influx-nice must be within 0..19, got 20/)
    expect(() => parseBenchArgs(['--quick', '--influx-nice=-1'])).toThrow(/--influx-nice must be a whole number/)
    expect(BENCH_USAGE).toMatch(/--influx-nice N/)
  })
})
