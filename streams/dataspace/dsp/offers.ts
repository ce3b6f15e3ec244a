/**
 * What the provider offers over the Dataspace Protocol, as ODRL policies (the DSP 2025-1 compact
 * form): every dataset carries one Offer per protection level, each a permission to `use` for a
 * purpose of EHDS Art. 53(1) under a data permit (Art. 68) at that level, and a prohibition of
 * re-identification (EHDS Art. 61, obligations of health data users: no attempt to re-identify). A consumer gets
 * an Agreement only for an offer its permit covers: the dataset is in the permit and the level
 * is the permit's. The Agreement states the permit's own purpose, id and expiry.
 *
 * ODRL core has no term for a data permit, a protection level or re-identification; those three
 * are this project's IRIs (`urn:ambulink:odrl:*`), documented in docs/dataspace.md.
 */
import { DATASET_NAMES, isDatasetName, type DatasetName } from '../datasets.js'
import { AGGREGATED_DATASETS } from '../aggregate.js'
import { LEVELS, type Permit, type ProtectionLevel } from '../permit.js'

export const ODRL_REIDENTIFY = 'urn:ambulink:odrl:reidentify'
export const ODRL_PROTECTION_LEVEL = 'urn:ambulink:odrl:protectionLevel'
export const ODRL_DATA_PERMIT = 'urn:ambulink:odrl:dataPermit'
/** The regulation an offer's purpose and permit come from (ELI of Regulation (EU) 2025/327). */
export const EHDS_ELI = 'http://data.europa.eu/eli/reg/2025/327/oj'

export interface OdrlConstraint { leftOperand: string, operator: string, rightOperand: unknown }
export interface OdrlRule { action: string, constraint?: OdrlConstraint[] }
export interface OdrlPolicy {
  '@id': string
  '@type': 'Offer' | 'Agreement'
  target?: string
  assigner?: string
  assignee?: string
  timestamp?: string
  permission: OdrlRule[]
  prohibition: OdrlRule[]
}

export function datasetId (name: DatasetName): string { return `urn:ambulink:dataset:${name}` }

export function datasetName (id: string): DatasetName | null {
  const m = /^urn:ambulink:dataset:([a-z]+)$/.exec(id)
  return m !== null && isDatasetName(m[1]!) ? m[1] : null
}

export function offerId (name: DatasetName, level: ProtectionLevel): string { return `urn:ambulink:offer:${name}:${level}` }

export function parseOfferId (id: string): { dataset: DatasetName, level: ProtectionLevel } | null {
  const m = /^urn:ambulink:offer:([a-z]+):([a-z]+)$/.exec(id)
  if (m === null || !isDatasetName(m[1]!) || !(pullLevelsOf(m[1]) as readonly string[]).includes(m[2]!)) return null
  return { dataset: m[1], level: m[2] as ProtectionLevel }
}

const PROHIBIT_REIDENTIFICATION: OdrlRule = { action: ODRL_REIDENTIFY }

/** The Offer of `dataset` at `level`, as carried by the catalogue (no `target`: DSP 2025-1, Dataset). */
export function offer (name: DatasetName, level: ProtectionLevel): OdrlPolicy {
  return {
    '@id': offerId(name, level),
    '@type': 'Offer',
    permission: [{
      action: 'use',
      constraint: [
        { leftOperand: 'purpose', operator: 'isPartOf', rightOperand: 'EHDS Art. 53(1): the purpose stated in the data permit' },
        { leftOperand: ODRL_DATA_PERMIT, operator: 'eq', rightOperand: 'a valid data permit (EHDS Art. 68) naming this dataset' },
        { leftOperand: ODRL_PROTECTION_LEVEL, operator: 'eq', rightOperand: level }
      ]
    }],
    prohibition: [PROHIBIT_REIDENTIFICATION]
  }
}

/**
 * The levels an HTTP-pull transfer can serve for a dataset: `statistical` permits get aggregate
 * queries only (never an extract), and `aggregated` summarises vitals only (aggregate.ts).
 */
export function pullLevelsOf (name: DatasetName): ProtectionLevel[] {
  return LEVELS.filter(l => l !== 'statistical' && (l !== 'aggregated' || AGGREGATED_DATASETS.includes(name)))
}

/** Every offer of a dataset: one per protection level a transfer can serve. */
export function offersOf (name: DatasetName): OdrlPolicy[] { return pullLevelsOf(name).map(l => offer(name, l)) }

export function allOffers (): OdrlPolicy[] { return DATASET_NAMES.flatMap(offersOf) }

/** Why `permit` does not cover the offer, or null when it does. */
export function notCovered (permit: Permit, o: { dataset: DatasetName, level: ProtectionLevel }): string | null {
  if (!permit.datasets.includes(o.dataset)) return `the permit does not name the dataset ${o.dataset}`
  if (permit.level !== o.level) return `the offer is for level ${o.level}; the permit grants level ${permit.level}`
  return null
}

export interface AgreementInput {
  id: string
  dataset: DatasetName
  permit: Permit
  assigner: string
  assignee: string
  atMs: number
}

/** The Agreement for a permit that covers the offer: the offer's terms, bound to the permit. */
export function agreement (a: AgreementInput): OdrlPolicy {
  return {
    '@id': a.id,
    '@type': 'Agreement',
    target: datasetId(a.dataset),
    assigner: a.assigner,
    assignee: a.assignee,
    timestamp: new Date(a.atMs).toISOString(),
    permission: [{
      action: 'use',
      constraint: [
        { leftOperand: 'purpose', operator: 'eq', rightOperand: a.permit.purpose },
        { leftOperand: ODRL_DATA_PERMIT, operator: 'eq', rightOperand: a.permit.id },
        { leftOperand: ODRL_PROTECTION_LEVEL, operator: 'eq', rightOperand: a.permit.level },
        { leftOperand: 'dateTime', operator: 'lt', rightOperand: new Date(a.permit.expiresAtMs).toISOString() }
      ]
    }],
    prohibition: [PROHIBIT_REIDENTIFICATION]
  }
}
