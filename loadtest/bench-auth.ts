/**
 * Timing micro-check for issue #10, item 11: what one credential check costs, per class of
 * attempt, through the gateway's own CredentialStore on a throwaway DATA_DIR. Device tokens
 * (HMAC) should cost microseconds whether the unit exists or not; passwords (scrypt) tens of
 * milliseconds whether the user exists or not; so the time of an answer tells nothing about
 * which names are registered, only about the shape of the secret the caller sent.
 *
 *   node --import tsx loadtest/bench-auth.ts [--rounds 2000] [--password-rounds 20]
 * Prints one JSON object: per class, the median and p90 in microseconds.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { addDevice, addUser, CredentialStore } from '../gateway/credentials.js'
import { numberFlags, percentiles } from '../testkit/fault-harness.js'

const f = numberFlags(process.argv.slice(2), { rounds: 2000, passwordRounds: 20 })
const dir = await mkdtemp(join(tmpdir(), 'ambulink-bench-auth-'))
try {
  const token = await addDevice(dir, 'amb-01')
  await addUser(dir, 'dr-lee', 'clinician')
  const store = await CredentialStore.open(dir, 0)
  const wrongToken = 'amb_' + 'A'.repeat(43)
  const time = async (n: number, fn: () => Promise<unknown>): Promise<ReturnType<typeof percentiles>> => {
    const us: number[] = []
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint()
      await fn()
      us.push(Number(process.hrtime.bigint() - t0) / 1000)
    }
    return percentiles(us)
  }
  const classes = {
    deviceRightToken: await time(f.rounds, () => store.verify('amb-01', token)),
    deviceWrongToken: await time(f.rounds, () => store.verify('amb-01', wrongToken)),
    unknownNameToken: await time(f.rounds, () => store.verify('amb-99', wrongToken)),
    userNameToken: await time(f.rounds, () => store.verify('dr-lee', wrongToken)),
    userWrongPassword: await time(f.passwordRounds, () => store.verify('dr-lee', 'wrong-password')),
    unknownNamePassword: await time(f.passwordRounds, () => store.verify('nobody', 'wrong-password')),
    deviceNamePassword: await time(f.passwordRounds, () => store.verify('amb-01', 'wrong-password'))
  }
  store.close()
  const out: Record<string, { p50Us: number, p90Us: number, count: number }> = {}
  for (const [k, v] of Object.entries(classes)) out[k] = { p50Us: v.p50, p90Us: v.p90, count: v.count }
  console.log(JSON.stringify({ bench: 'auth', classes: out }))
} finally {
  await rm(dir, { recursive: true, force: true })
}
