// The docs are part of the contract: every configuration option and every rejection code must be
// documented in docs/ (as fastify tests that every error code is documented), and the README
// stays the front door (the two commands, the layout, links).
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { REPLAY_ERRORS } from '../cli/replay-case.js'
import { FRAME_ERRORS } from '../decoders/index.js'
import { CONFIG_ERRORS, OPTIONS, optionsMarkdown } from '../gateway/config.js'
import { GATEWAY_ERRORS } from '../gateway/errors.js'
import { SIMULATOR_ERRORS } from '../simulator/index.js'
import { ALERT_ERRORS, DATASPACE_ERRORS, DSP_ERRORS, DURABLE_ERRORS, STREAM_ERRORS } from '../streams/index.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const doc = (name: string): string => readFileSync(new URL(`../docs/${name}`, import.meta.url), 'utf8')
const errorsDoc = doc('errors.md')

describe('docs', () => {
  it.each(Object.values(OPTIONS).map(o => [o.env]))('documents %s', env => {
    expect(doc('configuration.md')).toContain('`' + env + '`')
  })
  // Every catalogue built with createError (decoders/errors-factory.ts), configuration included.
  const catalogues = { FRAME_ERRORS, GATEWAY_ERRORS, CONFIG_ERRORS, STREAM_ERRORS, DURABLE_ERRORS, ALERT_ERRORS, DATASPACE_ERRORS, DSP_ERRORS, SIMULATOR_ERRORS, REPLAY_ERRORS }
  const allCodes = Object.entries(catalogues).flatMap(([name, cat]) => Object.keys(cat).map(code => [code, name]))
  it.each(allCodes)('documents %s (%s)', code => {
    expect(errorsDoc).toContain('`' + code + '`')
  })
  it('finds every code the product uses in a catalogue, and no code in two', () => {
    const used = new Set(execFileSync('grep', ['-rhoE', 'AMB_ERR_[A-Z0-9_]+', 'decoders', 'streams', 'gateway', 'cli', 'simulator'], { cwd: new URL('..', import.meta.url), encoding: 'utf8' })
      .split('\n').filter(Boolean))
    const declared = allCodes.map(([code]) => code!)
    expect(new Set(declared).size).toBe(declared.length)
    for (const code of used) expect(declared, code).toContain(code)
  })
  it('shows the configuration table exactly as `ambulink config --markdown` prints it', () => {
    expect(doc('configuration.md')).toContain(optionsMarkdown())
  })
  it('keeps the README the front door: at most 250 lines, linking every document', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(250)
    for (const f of readdirSync(new URL('../docs/', import.meta.url))) {
      if (f.endsWith('.md')) expect(readme, f).toContain(`(docs/${f})`)
    }
  })
  it('names the test command that .ci/run calls', () => {
    expect(readFileSync(new URL('../.ci/run', import.meta.url), 'utf8')).toMatch(/npm test/)
    expect(readme).toMatch(/npm test/)
  })
  it('names only metrics that exist in the operations runbook', () => {
    const defined = new Set(execFileSync('grep', ['-rhoE', "name: 'ambulink_[a-z0-9_]+'", 'gateway', 'streams'], { cwd: new URL('..', import.meta.url), encoding: 'utf8' })
      .split('\n').filter(Boolean).map(l => l.slice("name: '".length, -1)))
    const named = [...doc('operations.md').matchAll(/`(ambulink_[a-z0-9_]+)/g)].map(m => m[1]!)
    expect(named.length).toBeGreaterThan(10)
    for (const m of named) expect(defined, m).toContain(m)
  })
})
