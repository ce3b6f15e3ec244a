/**
 * `ambulink permit grant|list|revoke` and `ambulink audit [list|verify]`. The permit token is
 * printed alone on stdout (it is a credential: nowhere else, and only its claims are kept);
 * everything meant for people goes to stderr.
 *
 * The CLI plays the health data access body's part of issuing permits (EHDS Art. 68) with the
 * key under DATA_DIR/dataspace; see the README (Dataspace) for permits issued by an outside body.
 */
import { createPublicKey } from 'node:crypto'
import { readFile, realpath } from 'node:fs/promises'
import { isAbsolute, relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import {
  DATASET_NAMES,
  DataspaceError,
  LEVELS,
  auditLogPath,
  grantableFields,
  isDatasetName,
  listGrants,
  listRevocations,
  newestPublishedHead,
  normalisePermitRequest,
  openKeys,
  readAudit,
  recordGrant,
  recordRevocation,
  signPermit,
  verifyAudit,
  writeAnchor,
  type AuditEvent,
  type SignedHead,
  type DatasetName,
  type ProtectionLevel
} from '../streams/index.js'
import { parseTime } from '../streams/index.js'
import { loadConfig, type Config } from '../gateway/config.js'
import { listUsers } from '../gateway/credentials.js'
import { auditHeadPath, dataspaceOptions, influxReader, latestAnchor, openAuditLog } from '../gateway/dataspace/service.js'

export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
}

const processIo: CliIo = {
  stdout: t => { process.stdout.write(t) },
  stderr: t => { process.stderr.write(t) }
}

const PERMIT_USAGE = `usage:
  ambulink permit grant --researcher NAME --datasets vitals,alerts --purpose TEXT
                        --from ISO --to ISO --expires ISO
                        [--level anonymised|pseudonymised|aggregated|statistical] [--fields heart_rate,spo2,alerts.kind,age,...]
  ambulink permit list
  ambulink permit revoke ID [--reason TEXT]
`
const AUDIT_USAGE = `usage:
  ambulink audit [list] [--json]      every dataspace access and permit change, oldest first
  ambulink audit verify [--key FILE] [--heads LOG]
                                      exits 1 if an entry was altered, removed, rolled back or signed by nobody
                                      (FILE: the audit public key kept outside DATA_DIR; default DATASPACE_AUDIT_PUBLIC_KEY;
                                      LOG: the gateway's shipped log stream, whose "audit head signed" lines are
                                      checked as anchors too, besides InfluxDB's)
  ambulink audit recover --reason TEXT
                                      after investigating: brings a log whose head does not check out back into
                                      service, recording what was done (and why) in the log itself
`

function bad (message: string): DataspaceError {
  return new DataspaceError('AMB_ERR_PERMIT_BAD_GRANT', message)
}

/**
 * The audit log as a command opens it: every head it signs goes to InfluxDB before the command
 * returns (issue #10, item 2), so a rollback behind it is caught by the next process; without
 * InfluxDB (or when the write fails) the gateway's periodic anchor publishes it.
 */
async function openCliAuditLog (config: Config): Promise<Awaited<ReturnType<typeof openAuditLog>>> {
  const keys = await openKeys(config.dataDir)
  const reader = influxReader(config, dataspaceOptions(config))
  return await openAuditLog(config, keys, undefined, reader === null ? undefined : async (head: SignedHead) => { await writeAnchor(reader, head, 2000).catch(() => {}) })
}

async function appendAudit (config: Config, event: AuditEvent): Promise<void> {
  const { audit } = await openCliAuditLog(config)
  try {
    await audit.append(event)
  } finally {
    await audit.close()
  }
}

async function insideDataDir (config: Config, path: string): Promise<boolean> {
  const real = async (p: string): Promise<string> => await realpath(p).catch(() => resolve(p))
  const rel = relative(await real(config.dataDir), await real(path))
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

async function verify (config: Config, keyPath: string | undefined, io: CliIo, headsPath?: string): Promise<number> {
  const path = keyPath ?? config.dataspaceAuditPublicKey
  let publicKey = null
  if (path === undefined) {
    io.stderr('AMB_ERR_AUDIT_TAMPERED: no pinned audit public key: give --key FILE or set DATASPACE_AUDIT_PUBLIC_KEY (the key beside the log is replaced together with it, so it proves nothing)\n')
  } else if (await insideDataDir(config, path)) {
    io.stderr(`AMB_ERR_AUDIT_TAMPERED: ${path} is inside DATA_DIR: a key beside the log proves nothing; keep a copy elsewhere and verify with it\n`)
    return 1
  } else {
    publicKey = createPublicKey(await readFile(path, 'utf8'))
  }
  const latest = await latestAnchor(config)
  let anchor = latest.anchor
  if (latest.why !== null) io.stderr(`note: ${latest.why}\n`)
  if (headsPath !== undefined && publicKey !== null) {
    // The log stream the gateway printed (shipped outside DATA_DIR): every head it signed.
    const shipped = newestPublishedHead(await readFile(headsPath, 'utf8'), publicKey)
    if (shipped === null) io.stderr(`note: ${headsPath} holds no audit head that verifies with the pinned key\n`)
    else if (anchor === null || shipped.counter > anchor.counter) anchor = shipped
  }
  const r = await verifyAudit({ logPath: auditLogPath(config.dataDir), headPath: auditHeadPath(config), publicKey, anchor })
  for (const n of r.notes) io.stderr(`note: ${n}\n`)
  if (r.ok) {
    io.stderr(`audit log intact: ${r.entries} entries, chain and signed head verified with the pinned key${anchor !== null ? `, not behind the anchor (entry ${anchor.seq}, counter ${anchor.counter})` : ''}\n`)
    return 0
  }
  for (const e of r.errors) io.stderr(`AMB_ERR_AUDIT_TAMPERED: ${e}\n`)
  io.stderr(`audit log verification FAILED (${r.errors.length} problem${r.errors.length === 1 ? '' : 's'} in ${r.entries} entries)\n`)
  return 1
}

async function recover (config: Config, reason: string | undefined, io: CliIo): Promise<number> {
  if (reason === undefined || reason.trim() === '') { io.stderr(`--reason is required: say what was investigated\n${AUDIT_USAGE}`); return 2 }
  const { audit } = await openCliAuditLog(config)
  try {
    const r = await audit.recover(reason.trim())
    io.stderr(r.recorded === 'nothing' ? `${r.message}\n` : `recorded ${r.recorded}: ${r.message}\n${r.recorded === 'audit.anomaly' ? '`audit verify` keeps failing for this chain (the evidence stays); archive it when the investigation is closed\n' : ''}`)
    return 0
  } finally {
    await audit.close()
  }
}

/** `--fields`: `field` (on every granted dataset that has it) or `dataset.field`. */
export function parseFields (raw: string | undefined, datasets: DatasetName[]): Partial<Record<DatasetName, string[]>> | undefined {
  if (raw === undefined) return undefined
  const out: Partial<Record<DatasetName, string[]>> = {}
  for (const item of raw.split(',').map(s => s.trim()).filter(s => s !== '')) {
    const dot = item.indexOf('.')
    const targets = dot >= 0 ? [item.slice(0, dot)] : datasets.filter(d => grantableFields(d).includes(item))
    const field = dot >= 0 ? item.slice(dot + 1) : item
    if (targets.length === 0) throw bad(`no granted dataset has a field ${JSON.stringify(item)}`)
    for (const d of targets) {
      if (!isDatasetName(d) || !datasets.includes(d)) throw bad(`--fields names ${JSON.stringify(d)}, which is not in --datasets`)
      ;(out[d] ??= []).push(field)
    }
  }
  for (const d of datasets) if (out[d] === undefined) throw bad(`--fields grants nothing on ${d}`)
  return out
}

async function grant (config: Config, args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      researcher: { type: 'string' },
      datasets: { type: 'string' },
      fields: { type: 'string' },
      purpose: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      expires: { type: 'string' },
      level: { type: 'string', default: 'anonymised' }
    }
  })
  for (const k of ['researcher', 'datasets', 'purpose', 'from', 'to', 'expires'] as const) {
    if (values[k] === undefined) throw bad(`--${k} is required\n${PERMIT_USAGE}`)
  }
  const researcher = values.researcher!
  const user = (await listUsers(config.dataDir)).find(u => u.name === researcher)
  if (user === undefined) throw bad(`no user ${researcher}: add one with \`ambulink user add ${researcher} --role researcher\``)
  if (user.role !== 'researcher') throw bad(`${researcher} has role ${user.role}; permits are issued to researchers only`)
  if (user.accountId === null) throw bad(`${researcher} was added before accounts had ids: add them again (\`ambulink user add ${researcher} --role researcher\`) to bind permits to their account`)
  const datasets = values.datasets!.split(',').map(s => s.trim()).filter(s => s !== '')
  for (const d of datasets) if (!isDatasetName(d)) throw bad(`unknown dataset ${JSON.stringify(d)}; datasets are ${DATASET_NAMES.join(', ')}`)
  const ds = datasets as DatasetName[]
  const level = values.level as ProtectionLevel
  if (!LEVELS.includes(level)) throw bad(`--level must be one of ${LEVELS.join(', ')}`)
  const time = (raw: string, name: string): number => {
    try { return parseTime(raw, `--${name}`) } catch (err) { throw bad((err as Error).message) }
  }
  const permit = normalisePermitRequest({
    researcher,
    accountId: user.accountId,
    datasets: ds,
    fields: parseFields(values.fields, ds),
    fromMs: time(values.from!, 'from'),
    toMs: time(values.to!, 'to'),
    purpose: values.purpose!,
    level,
    expiresAtMs: time(values.expires!, 'expires')
  })
  const keys = await openKeys(config.dataDir)
  if (keys.permitPrivateKey === null) throw bad('only the permit public key is installed (permits come from an outside body): this gateway cannot issue permits')
  const token = signPermit(permit, keys.permitPrivateKey)
  await recordGrant(config.dataDir, permit)
  await appendAudit(config, {
    kind: 'permit.grant',
    outcome: 'recorded',
    permit: permit.id,
    researcher,
    dataset: permit.datasets.join(','),
    level: permit.level,
    purpose: permit.purpose,
    from: new Date(permit.fromMs).toISOString(),
    to: new Date(permit.toMs).toISOString()
  })
  io.stdout(token + '\n')
  io.stderr(`granted permit ${permit.id} to ${researcher}: ${permit.datasets.join(', ')} (${permit.level}), data ${new Date(permit.fromMs).toISOString()}..${new Date(permit.toMs).toISOString()}, expires ${new Date(permit.expiresAtMs).toISOString()}\n`)
  return 0
}

async function list (config: Config, io: CliIo): Promise<number> {
  const revoked = new Map((await listRevocations(config.dataDir)).map(r => [r.id, r]))
  const now = Date.now()
  io.stdout('id\tresearcher\tlevel\tdatasets\tfrom\tto\texpires\tstatus\n')
  for (const p of await listGrants(config.dataDir)) {
    const status = revoked.has(p.id) ? `revoked ${revoked.get(p.id)!.at}` : p.expiresAtMs <= now ? 'expired' : 'active'
    io.stdout([p.id, p.researcher, p.level, p.datasets.join(','), new Date(p.fromMs).toISOString(), new Date(p.toMs).toISOString(), new Date(p.expiresAtMs).toISOString(), status].join('\t') + '\n')
  }
  return 0
}

async function revoke (config: Config, args: string[], io: CliIo): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { reason: { type: 'string', default: 'revoked by the data holder' } } })
  const id = positionals[0]
  if (id === undefined) { io.stderr(PERMIT_USAGE); return 2 }
  const p = (await listGrants(config.dataDir)).find(g => g.id === id)
  if (p === undefined) { io.stderr(`no permit ${id}\n`); return 1 }
  if ((await listRevocations(config.dataDir)).some(r => r.id === id)) { io.stderr(`permit ${id} was already revoked\n`); return 0 }
  await recordRevocation(config.dataDir, id, values.reason)
  await appendAudit(config, { kind: 'permit.revoke', outcome: 'recorded', permit: id, researcher: p.researcher, reason: values.reason })
  io.stderr(`revoked permit ${id} (a running gateway refuses it within CREDENTIALS_POLL_MS and closes its live streams)\n`)
  return 0
}

export async function runPermitCli (args: string[], io: CliIo = processIo, config: Config = loadConfig()): Promise<number> {
  const [sub, ...rest] = args
  switch (sub) {
    case 'grant': return await grant(config, rest, io)
    case 'list': return await list(config, io)
    case 'revoke': return await revoke(config, rest, io)
    default:
      io.stderr(PERMIT_USAGE)
      return 2
  }
}

export async function runAuditCli (args: string[], io: CliIo = processIo, config: Config = loadConfig()): Promise<number> {
  const { positionals, values } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean', default: false }, key: { type: 'string' }, heads: { type: 'string' }, reason: { type: 'string' } } })
  const sub = positionals[0] ?? 'list'
  if (sub === 'list') {
    if (!values.json) io.stdout('seq\tat\tkind\toutcome\tstatus\tcode\tresearcher\tpermit\tdataset\trows\tsuppressed\n')
    for await (const e of readAudit(auditLogPath(config.dataDir))) {
      if (values.json) { io.stdout(JSON.stringify(e) + '\n'); continue }
      io.stdout([e.seq, e.at, e.kind, e.outcome, e.status ?? '', e.code ?? '', e.researcher ?? '', e.permit ?? '', e.dataset ?? '', e.rows ?? '', e.suppressedRows ?? ''].join('\t') + '\n')
    }
    return 0
  }
  if (sub === 'verify') return await verify(config, values.key, io, values.heads)
  if (sub === 'recover') return await recover(config, values.reason, io)
  io.stderr(AUDIT_USAGE)
  return 2
}
