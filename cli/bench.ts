/**
 * `ambulink bench`: the benchmark lives in loadtest/ (it starts private InfluxDB, Mosquitto and
 * gateway processes through testkit/). This file is the one place the product reaches into the
 * load tools, and only when the command is run (a dynamic import): the dependency rule allows
 * exactly this edge, so `serve` never loads benchmark or test code.
 */
export async function runBenchCli (argv: string[]): Promise<number> {
  const { runBenchCli: run } = await import('../loadtest/bench.js')
  return await run(argv)
}
