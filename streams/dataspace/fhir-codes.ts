/**
 * The code systems and codes the FHIR R4 output uses, in one place, each with its source.
 *
 * - LOINC (http://loinc.org): vital signs (decoders/vitals.ts), age 30525-0, and the ECG panel
 *   34534-8 "12 lead EKG panel".
 * - IEEE 11073-10101 nomenclature (MDC), FHIR system `urn:oid:2.16.840.1.113883.6.24`: the ECG lead
 *   potentials MDC_ECG_ELEC_POTL_* (partition 2, as in the FHIR R4 example
 *   observation-example-sample-data, which codes lead I 131329, II 131330, III 131389).
 * - SNOMED CT (http://snomed.info/sct): 401303003 "Acute ST segment elevation myocardial
 *   infarction (disorder)" for a suspected STEMI and a STEMI pre-notification, 230690007
 *   "Cerebrovascular accident (disorder)" for a stroke pre-notification.
 * - Where neither LOINC nor SNOMED CT states a finding faithfully (the Los Angeles Motor Scale total,
 *   a FAST screen result, the last-known-well instant, the alert engine's kinds and events, an
 *   ambulance position), a local CodeSystem whose URL comes from configuration
 *   (DATASPACE_FHIR_CODE_SYSTEM); its codes are listed in LOCAL_CODES and in docs/dataspace.md.
 */
export const LOINC = 'http://loinc.org'
export const UCUM = 'http://unitsofmeasure.org'
export const MDC = 'urn:oid:2.16.840.1.113883.6.24'
export const SNOMED = 'http://snomed.info/sct'
export const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category'
export const SECURITY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue'

/** Default local CodeSystem URL (a URN: valid as a FHIR `uri`, resolves nowhere). Set DATASPACE_FHIR_CODE_SYSTEM to your own. */
export const DEFAULT_LOCAL_CODE_SYSTEM = 'urn:ambulink:fhir:codes'

/** LOINC 34534-8 "12 lead EKG panel". */
export const ECG_PANEL_LOINC = '34534-8'
/** MDC_ECG_ELEC_POTL (131328): the ECG lead potential, the parent of the per-lead codes. */
export const ECG_POTL_MDC = { code: '131328', display: 'MDC_ECG_ELEC_POTL' } as const

/** Storage field of each lead (DESIGN.md `ecg` measurement) → its MDC code (IEEE 11073-10101). */
export const LEAD_MDC: Readonly<Record<string, { code: string, display: string }>> = Object.freeze({
  i: { code: '131329', display: 'MDC_ECG_ELEC_POTL_I' },
  ii: { code: '131330', display: 'MDC_ECG_ELEC_POTL_II' },
  v1: { code: '131331', display: 'MDC_ECG_ELEC_POTL_V1' },
  v2: { code: '131332', display: 'MDC_ECG_ELEC_POTL_V2' },
  v3: { code: '131333', display: 'MDC_ECG_ELEC_POTL_V3' },
  v4: { code: '131334', display: 'MDC_ECG_ELEC_POTL_V4' },
  v5: { code: '131335', display: 'MDC_ECG_ELEC_POTL_V5' },
  v6: { code: '131336', display: 'MDC_ECG_ELEC_POTL_V6' },
  iii: { code: '131389', display: 'MDC_ECG_ELEC_POTL_III' },
  avr: { code: '131390', display: 'MDC_ECG_ELEC_POTL_AVR' },
  avl: { code: '131391', display: 'MDC_ECG_ELEC_POTL_AVL' },
  avf: { code: '131392', display: 'MDC_ECG_ELEC_POTL_AVF' }
})

export const SNOMED_STEMI = { system: SNOMED, code: '401303003', display: 'Acute ST segment elevation myocardial infarction' } as const
export const SNOMED_STROKE = { system: SNOMED, code: '230690007', display: 'Cerebrovascular accident' } as const

/** Codes of the local CodeSystem (DATASPACE_FHIR_CODE_SYSTEM). */
export const LOCAL_CODES = Object.freeze({
  position: 'Ambulance position during transport',
  latitude: 'Latitude (WGS 84)',
  longitude: 'Longitude (WGS 84)',
  speed: 'Ground speed',
  heading: 'Heading, clockwise from true north',
  lams: 'Los Angeles Motor Scale total (0-5)',
  fast: 'FAST (face, arm, speech) stroke screen positive',
  'last-known-well': 'Time the patient was last known well',
  'stemi-suspected': 'Paramedic suspects STEMI',
  'alert-threshold': 'Vital-sign threshold alert',
  'alert-news2': 'NEWS2 alert',
  'alert-device_alarm': 'Device alarm',
  'alert-stemi': 'STEMI pre-notification',
  'alert-stroke': 'Stroke pre-notification',
  'alert-signal_loss': 'Signal loss',
  'alert-other': 'Other alert',
  'alert-value': 'Value that triggered the alert',
  'event-raised': 'Alert raised',
  'event-updated': 'Alert updated',
  'event-escalated': 'Alert escalated',
  'event-acknowledged': 'Alert acknowledged',
  'event-cleared': 'Alert cleared',
  'event-other': 'Other alert event'
} as const)

export type LocalCode = keyof typeof LOCAL_CODES

export function local (system: string, code: LocalCode): { system: string, code: string, display: string } {
  return { system, code, display: LOCAL_CODES[code] }
}
