// The setup every test file loads (test/yield-to-runner.ts): the worker's event loop turns
// between two tests, so replies of vitest's main process (read only when the loop polls) are
// read after each test, not only once a whole run of synchronous tests is over.
import { describe, expect, it } from 'vitest'

describe('between two tests the event loop turns', () => {
  let turned = false
  it('a synchronous test schedules a macrotask', () => {
    setImmediate(() => { turned = true })
    expect(turned).toBe(false)
  })
  it('which has run when the next test starts', () => {
    expect(turned).toBe(true)
  })
})
