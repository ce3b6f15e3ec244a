// Setup of every test file (vitest.config.ts `setupFiles`): after each test, one turn of the
// event loop, so the test worker reads what vitest's main process answered meanwhile.
//
// Why: the worker reports test progress to the main process over an RPC (`onTaskUpdate`, sent at
// most every 100 ms) whose reply must arrive within a fixed 60 s (birpc's default in vitest 3.2;
// no option changes it). A reply is read only when the worker's event loop polls. A run of
// synchronous tests (a table of it.each cases, each measuring 10 s of simulated ECG) never lets
// it: the runner goes from one test to the next through promise callbacks alone. On a loaded
// machine such a run passed 60 s, the timeout's timer fired before the reply already waiting was
// read, and a run whose tests all passed failed with "[vitest-worker]: Timeout calling
// "onTaskUpdate"". With a turn after each test, a reply waits at most one test.
import { afterEach } from 'vitest'

// Taken at load, before any test installs fake timers (vi.useFakeTimers() replaces setImmediate).
const realSetImmediate = globalThis.setImmediate

afterEach(async () => {
  await new Promise<void>(resolve => { realSetImmediate(resolve) })
})
