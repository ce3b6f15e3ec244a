// The ingest path tells device resends from new frames by comparing 64-bit seq decimals without
// BigInt (gateway/ingest.ts decimalAbove): it must order them exactly as the numbers do.
import { describe, expect, it } from 'vitest'
import { decimalAbove } from '../gateway/ingest.js'

describe('decimalAbove', () => {
  it('orders uint64 decimals as BigInt does, across digit counts and at the edges', () => {
    const values = [0n, 1n, 9n, 10n, 99n, 100n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n]
    let x = 0x243f6a8885a308d3n
    for (let i = 0; i < 400; i++) { x = (x * 6364136223846793005n + 1442695040888963407n) % 2n ** 64n; values.push(x >> BigInt(i % 64)) }
    for (const a of values) {
      for (const b of [a, a + 1n, a > 0n ? a - 1n : 0n, values[Number(a % BigInt(values.length))]!]) {
        expect(decimalAbove(a.toString(), b.toString()), `${a} > ${b}`).toBe(a > b)
      }
    }
  })
})
