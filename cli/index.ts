/**
 * `ambulink` command line. Secrets (device tokens, user passwords) are printed alone on stdout
 * and nowhere else; everything meant for people goes to stderr.
 */
import { parseArgs } from 'node:util'
import { ConfigError, describeOptions, loadConfig, optionsMarkdown } from '../gateway/config.js'
import { addDevice, addUser, listDevices, listUsers, revokeDevice, revokeUser, ROLES, type DefaultView, type Role } from '../gateway/credentials.js'
import { createLogger } from '../gateway/logger.js'
import { runUntilSignal } from './lifecycle.js'

const USAGE = `ambulink <command>

  serve                              run the gateway
  demo [--units N] [--leads 12|1]    gateway + simulated ambulance fleet
  device add <unit>                  create a unit; prints its token (only a hash is stored)
  device list | device revoke <unit>
  user add <name> --role clinician|researcher|admin [--view ed|cath|stroke]
                                     prints the generated password; --view: default team view
  user list | user revoke <name>
  config [--markdown]                configuration options and defaults
  simulate --url URL --units N --credentials FILE     stream a simulated fleet into a gateway
  bench [--quick] [--units N] [--gateways N]         benchmark against InfluxDB and Mosquitto
                                     (private servers on 127.0.0.1; JSON on stdout; --help)
  permit grant --researcher NAME --datasets vitals,alerts --purpose TEXT --from ISO --to ISO
               --expires ISO [--level anonymised|pseudonymised|aggregated|statistical] [--fields f1,f2]
                                     issue a data permit; prints its token (the README (Dataspace))
  permit list | permit revoke <id>
  audit [list] | audit verify | audit recover   the dataspace access log; verify exits 1 if it was tampered with
  replay <case|folder>… [--speed N|--as-fast-as-possible] [--json]
                                     run clinical cases through the alert engine (docs/clinical-safety.md)

Configuration (environment):
${describeOptions()}
`

export async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  try {
    switch (cmd) {
      case 'serve': return await serve()
      case 'demo': return await (await import('./demo.js')).runDemo(rest)
      case 'device': return await device(rest)
      case 'user': return await user(rest)
      case 'config':
        // The configuration table, as the README shows it (kept equal by test/docs.test.ts).
        process.stdout.write((rest[0] === '--markdown' ? optionsMarkdown() : describeOptions()) + '\n')
        return 0
      case 'simulate': return await (await import('./simulate.js')).runSimulateCli(rest)
      case 'bench': return await (await import('./bench.js')).runBenchCli(rest)
      case 'permit': return await (await import('./dataspace.js')).runPermitCli(rest)
      case 'audit': return await (await import('./dataspace.js')).runAuditCli(rest)
      case 'replay': return await (await import('./replay.js')).runReplayCli(rest)
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stderr.write(USAGE)
        return cmd === undefined ? 2 : 0
      default:
        process.stderr.write(`unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`)
        return 2
    }
  } catch (err) {
    const code = (err as { code?: unknown }).code
    // Bad input (our coded errors, and parseArgs' unknown or malformed options) is a usage
    // error: exit 2 with one line, not a stack trace.
    if (err instanceof ConfigError || (typeof code === 'string' && (code.startsWith('AMB_ERR_') || code.startsWith('ERR_PARSE_ARGS_')))) {
      process.stderr.write(`ambulink: ${(err as Error).message}\n`)
      return 2
    }
    throw err
  }
}

async function device (args: string[]): Promise<number> {
  const { dataDir } = loadConfig()
  const [sub, unit] = args
  if (sub === 'add' && unit !== undefined) {
    process.stdout.write(await addDevice(dataDir, unit) + '\n')
    return 0
  }
  if (sub === 'revoke' && unit !== undefined) {
    const had = await revokeDevice(dataDir, unit)
    process.stderr.write(had ? `revoked ${unit}\n` : `no unit ${unit}\n`)
    return had ? 0 : 1
  }
  if (sub === 'list') {
    for (const d of await listDevices(dataDir)) process.stdout.write(`${d.unit}\t${d.createdAt}\n`)
    return 0
  }
  process.stderr.write('usage: ambulink device add <unit> | list | revoke <unit>\n')
  return 2
}

async function user (args: string[]): Promise<number> {
  const { dataDir } = loadConfig()
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { role: { type: 'string' }, view: { type: 'string' } } })
  const [sub, name] = positionals
  if (sub === 'add' && name !== undefined) {
    const role = values.role as Role | undefined
    if (role === undefined || !ROLES.includes(role)) {
      process.stderr.write(`--role must be one of ${ROLES.join(', ')}\n`)
      return 2
    }
    // An unknown --view is refused by addUser (AMB_ERR_DASHBOARD_BAD_REQUEST: exit 2).
    process.stdout.write(await addUser(dataDir, name, role, values.view as DefaultView | undefined) + '\n')
    return 0
  }
  if (sub === 'revoke' && name !== undefined) {
    const had = await revokeUser(dataDir, name)
    process.stderr.write(had ? `revoked ${name}\n` : `no user ${name}\n`)
    return had ? 0 : 1
  }
  if (sub === 'list') {
    for (const u of await listUsers(dataDir)) process.stdout.write(`${u.name}\t${u.role}\t${u.createdAt}\n`)
    return 0
  }
  process.stderr.write('usage: ambulink user add <name> --role R [--view V] | list | revoke <name>\n')
  return 2
}

async function serve (): Promise<number> {
  const config = loadConfig()
  const log = createLogger(config.logLevel)
  // Loaded here, not at the top: `device`/`user` need none of the server stack (fastify, aedes,
  // protobufjs…), and skipping it cuts their start-up by a third.
  const { startGateway } = await import('../gateway/server.js')
  const gw = await startGateway(config, { log })
  return await runUntilSignal(gw)
}
