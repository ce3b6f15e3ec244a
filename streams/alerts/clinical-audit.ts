/**
 * The clinical audit trail of decisions a clinician makes in the alert engine (today: the SpO2
 * scale of an encounter). Who, when, what, for which unit and encounter — one JSON line each,
 * appended to DATA_DIR/alerts/clinical-audit.ndjson and fdatasync'd before the call resolves, so
 * the decision is never applied without its record. Append-only: nothing here rewrites the file.
 *
 * Why not the dataspace's hash-chained audit log (streams/dataspace/audit.ts): that one records
 * data releases under permits; a clinical decision belongs with the alert state it changes.
 */
import { constants as fsc } from 'node:fs'
import { mkdir, open } from 'node:fs/promises'
import { join } from 'node:path'
import { GroupCommitFile } from '../storage/group-commit.js'

export interface ClinicalAuditRecord {
  /** Unix ms. */
  at: number
  /** The clinician (session user). */
  by: string
  action: 'spo2_scale'
  unit: string
  /** Pseudonymous encounter id. */
  encounter: string
  value: number
}

export const CLINICAL_AUDIT_FILE = 'clinical-audit.ndjson'

export class ClinicalAudit {
  private constructor (private readonly writer: GroupCommitFile) {}

  static async open (dir: string): Promise<ClinicalAudit> {
    await mkdir(dir, { recursive: true })
    const fh = await open(join(dir, CLINICAL_AUDIT_FILE), fsc.O_RDWR | fsc.O_CREAT | fsc.O_APPEND)
    return new ClinicalAudit(new GroupCommitFile(fh, (await fh.stat()).size))
  }

  /** Resolves once the record is on stable storage. */
  append (r: ClinicalAuditRecord): Promise<void> {
    return this.writer.append(Buffer.from(JSON.stringify(r) + '\n'))
  }

  close (): Promise<void> { return this.writer.close() }
}
