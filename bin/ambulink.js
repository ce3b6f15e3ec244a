#!/usr/bin/env node
// Runs the TypeScript sources through tsx (no build step): `npx ambulink <command>`.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../cli/index.ts')
process.exitCode = await main(process.argv.slice(2))
