// The README is part of the contract: every configuration option and every frame rejection code
// must be documented there (as fastify tests that every error code is documented).
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { FRAME_ERRORS } from '../decoders/index.js'
import { OPTIONS, optionsMarkdown } from '../gateway/config.js'
import { GATEWAY_ERRORS } from '../gateway/errors.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

describe('README', () => {
  it.each(Object.values(OPTIONS).map(o => [o.env]))('documents %s', env => {
    expect(readme).toContain('`' + env + '`')
  })
  it.each(Object.keys(FRAME_ERRORS).map(c => [c]))('documents %s', code => {
    expect(readme).toContain('`' + code + '`')
  })
  it('shows the configuration table exactly as `ambulink config --markdown` prints it', () => {
    expect(readme).toContain(optionsMarkdown())
  })
  it('names the test command that .ci/run calls', () => {
    expect(readFileSync(new URL('../.ci/run', import.meta.url), 'utf8')).toMatch(/npm test/)
    expect(readme).toMatch(/npm test/)
  })
  it('documents every gateway error code', () => {
    for (const code of Object.keys(GATEWAY_ERRORS)) expect(readme, code).toContain(code)
  })
})
