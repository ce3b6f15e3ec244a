/**
 * FHIR R4 Bundle (type collection), streamed: the head opens `entry: [`, each batch appends
 * entries, the tail closes the array. ECG, alerts, positions and the assessment are mapped in
 * ../fhir-resources.ts. Vital signs become Observations on the core vital-signs
 * profile, coded with the LOINC codes of decoders/vitals.ts and UCUM units; a sign without a LOINC
 * code (supplemental O2) has no faithful FHIR coding and is left out. Each encounter becomes a
 * Patient entry whose id is the permit's pseudonym, referenced as `urn:uuid:<pseudonym>`; its age
 * (exact or banded) is an Observation of LOINC 30525-0 "Age".
 *
 * The Bundle is labelled with the HL7 security label PSEUDED or ANONYED for the permit's level.
 */
import { randomUUID } from 'node:crypto'
import { VITAL_SIGNS, type VitalSignInfo } from '../../../decoders/index.js'
import type { ExtractRecord } from '../extract.js'
import { DEFAULT_LOCAL_CODE_SYSTEM } from '../fhir-codes.js'
import { alertIssue, assessmentObservations, ecgObservations, positionObservation, type Resource } from '../fhir-resources.js'
import { formatUs } from '../protect.js'
import type { Serializer, SerializerContext } from './serializer.js'

const LOINC = 'http://loinc.org'
const UCUM = 'http://unitsofmeasure.org'
const VITAL_SIGNS_PROFILE = 'http://hl7.org/fhir/StructureDefinition/vitalsigns'
const CATEGORY = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs', display: 'Vital Signs' }] }]
const SECURITY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue'
const AGE_LOINC = '30525-0'

const BY_FIELD = new Map<string, VitalSignInfo>(VITAL_SIGNS.map(s => [s.field, s]))

function ageValue (age: number | string): Record<string, unknown> | null {
  const q = (value: number): Record<string, unknown> => ({ value, unit: 'a', system: UCUM, code: 'a' })
  if (typeof age === 'number') return { valueQuantity: q(age) }
  const m = /^(\d+)(?:-(\d+)|\+)$/.exec(age)
  if (m === null) return null
  return { valueRange: m[2] === undefined ? { low: q(Number(m[1])) } : { low: q(Number(m[1])), high: q(Number(m[2])) } }
}

export function fhirSerializer (ctx: SerializerContext): Serializer {
  const { plan } = ctx
  const security = [{ system: SECURITY_SYSTEM, code: ctx.level === 'anonymised' ? 'ANONYED' : 'PSEUDED' }]
  const coded = plan.columns.map(c => {
    const info = BY_FIELD.get(c)
    return info !== undefined && info.loinc !== null ? info : null
  })
  const seen = new Set<string>()
  let first = true
  const entry = (resource: Record<string, unknown>, fullUrl: string): string => {
    const s = (first ? '' : ',') + JSON.stringify({ fullUrl, resource })
    first = false
    return s
  }

  const patient = (r: ExtractRecord): string => {
    const subjectUrl = `urn:uuid:${r.subject}`
    let out = entry({
      resourceType: 'Patient',
      id: r.subject,
      meta: { security },
      ...(plan.withSex && r.sex !== null ? { gender: r.sex } : {})
    }, subjectUrl)
    if (plan.withAge && r.age !== null) {
      const value = ageValue(r.age)
      if (value !== null) {
        const id = randomUUID()
        out += entry({
          resourceType: 'Observation',
          id,
          status: 'final',
          code: { coding: [{ system: LOINC, code: AGE_LOINC, display: 'Age' }] },
          subject: { reference: subjectUrl, type: 'Patient' },
          effectiveDateTime: formatUs(r.timeUs),
          ...value
        }, `urn:uuid:${id}`)
      }
    }
    return out
  }

  const codeSystem = ctx.codeSystem ?? DEFAULT_LOCAL_CODE_SYSTEM
  const dataset = plan.request.dataset
  const periods = new Map<string, number>()
  const resources = (rs: Resource[]): string => {
    let out = ''
    for (const res of rs) out += entry(res, `urn:uuid:${String(res.id)}`)
    return out
  }
  /** The other datasets: one or more resources per record (per run of samples for ECG). */
  const mapped = (records: readonly ExtractRecord[]): string => {
    if (dataset === 'ecg') return resources(ecgObservations(records, plan.columns, periods))
    let out = ''
    for (const r of records) {
      if (dataset === 'alerts') out += resources([alertIssue(r, plan.columns, codeSystem)])
      else if (dataset === 'position') { const o = positionObservation(r, plan.columns, codeSystem); if (o !== null) out += resources([o]) }
      else if (dataset === 'assessment') out += resources(assessmentObservations(r, plan.columns, codeSystem))
    }
    return out
  }

  return {
    contentType: 'application/fhir+json; fhirVersion=4.0; charset=utf-8',
    head: () => `{"resourceType":"Bundle","id":"${randomUUID()}","meta":${JSON.stringify({ security })},"type":"collection","timestamp":"${new Date(ctx.nowMs).toISOString()}","entry":[`,
    tail: () => ']}\n',
    batch (records) {
      let out = ''
      for (const r of records) {
        if (!seen.has(r.subject)) {
          seen.add(r.subject)
          out += patient(r)
        }
      }
      if (dataset !== 'vitals') return out + mapped(records)
      for (const r of records) {
        const when = formatUs(r.timeUs)
        for (let i = 0; i < coded.length; i++) {
          const info = coded[i]
          const v = r.values[i]
          if (info === null || info === undefined || typeof v !== 'number') continue
          const id = randomUUID()
          out += entry({
            resourceType: 'Observation',
            id,
            meta: { profile: [VITAL_SIGNS_PROFILE] },
            status: 'final',
            category: CATEGORY,
            code: { coding: [{ system: LOINC, code: info.loinc }], text: info.field },
            subject: { reference: `urn:uuid:${r.subject}`, type: 'Patient' },
            effectiveDateTime: when,
            valueQuantity: { value: v, unit: info.unit, system: UCUM, code: info.ucum }
          }, `urn:uuid:${id}`)
        }
      }
      return out
    }
  }
}
