/**
 * The one table of vital signs: storage field name, unit, IEEE 11073-10101 (MDC) code, LOINC
 * code, and the plausibility range a value must fall in to be stored. The ranges catch sensor
 * garbage and unit mix-ups (e.g. Fahrenheit, kPa); they are deliberately wider than any clinical
 * alarm limit, so an extreme but real value is stored and alerted on, never rejected.
 */
export interface VitalSignInfo {
  /** VitalSign enum number in telemetry.proto. */
  readonly sign: number
  /** Enum name without its prefix, lower case: the InfluxDB field name in `vitals`. */
  readonly field: string
  readonly unit: string
  /** UCUM unit code, for FHIR export. */
  readonly ucum: string
  /** MDC reference id (partition 2, SCADA) or null where IEEE 11073 defines none. */
  readonly mdc: number | null
  readonly mdcRefId: string | null
  /** LOINC code (FHIR vital-signs profile where one applies), or null where none fits. */
  readonly loinc: string | null
  readonly min: number
  readonly max: number
  /** True when only whole numbers are meaningful (ACVPU level, O2 flag). */
  readonly integer: boolean
}

function sign (s: VitalSignInfo): VitalSignInfo { return Object.freeze(s) }

export const VITAL_SIGNS: readonly VitalSignInfo[] = Object.freeze([
  sign({ sign: 1, field: 'heart_rate', unit: 'bpm', ucum: '/min', mdc: 147842, mdcRefId: 'MDC_ECG_HEART_RATE', loinc: '8867-4', min: 0, max: 350, integer: false }),
  sign({ sign: 2, field: 'pulse_rate', unit: 'bpm', ucum: '/min', mdc: 149530, mdcRefId: 'MDC_PULS_OXIM_PULS_RATE', loinc: '8889-8', min: 0, max: 350, integer: false }),
  sign({ sign: 3, field: 'spo2', unit: '%', ucum: '%', mdc: 150456, mdcRefId: 'MDC_PULS_OXIM_SAT_O2', loinc: '59408-5', min: 0, max: 100, integer: false }),
  sign({ sign: 4, field: 'nibp_systolic', unit: 'mmHg', ucum: 'mm[Hg]', mdc: 150021, mdcRefId: 'MDC_PRESS_BLD_NONINV_SYS', loinc: '8480-6', min: 0, max: 350, integer: false }),
  sign({ sign: 5, field: 'nibp_diastolic', unit: 'mmHg', ucum: 'mm[Hg]', mdc: 150022, mdcRefId: 'MDC_PRESS_BLD_NONINV_DIA', loinc: '8462-4', min: 0, max: 300, integer: false }),
  sign({ sign: 6, field: 'nibp_mean', unit: 'mmHg', ucum: 'mm[Hg]', mdc: 150023, mdcRefId: 'MDC_PRESS_BLD_NONINV_MEAN', loinc: '8478-0', min: 0, max: 320, integer: false }),
  sign({ sign: 7, field: 'respiratory_rate', unit: 'breaths/min', ucum: '/min', mdc: 151562, mdcRefId: 'MDC_RESP_RATE', loinc: '9279-1', min: 0, max: 150, integer: false }),
  sign({ sign: 8, field: 'etco2', unit: 'mmHg', ucum: 'mm[Hg]', mdc: 151708, mdcRefId: 'MDC_AWAY_CO2_ET', loinc: '19889-5', min: 0, max: 150, integer: false }),
  sign({ sign: 9, field: 'temperature', unit: '°C', ucum: 'Cel', mdc: 150364, mdcRefId: 'MDC_TEMP_BODY', loinc: '8310-5', min: 20, max: 46, integer: false }),
  // ACVPU (NEWS2): 0=Alert, 1=new Confusion, 2=Voice, 3=Pain, 4=Unresponsive. IEEE 11073 has no
  // term for it; LOINC 67775-7 is "Level of responsiveness".
  sign({ sign: 10, field: 'consciousness_acvpu', unit: 'ACVPU level', ucum: '{score}', mdc: null, mdcRefId: null, loinc: '67775-7', min: 0, max: 4, integer: true }),
  // Supplemental oxygen (NEWS2): 0 = air, 1 = on oxygen. No MDC or LOINC term states exactly this
  // yes/no; we leave the codes empty rather than borrow a near miss.
  sign({ sign: 11, field: 'supplemental_o2', unit: 'flag', ucum: '1', mdc: null, mdcRefId: null, loinc: null, min: 0, max: 1, integer: true })
])

/** VitalSign enum number → info; index 0 (UNSPECIFIED) and unknown numbers are undefined. */
export const VITAL_SIGN_BY_NUMBER: readonly (VitalSignInfo | undefined)[] = (() => {
  const table: (VitalSignInfo | undefined)[] = []
  for (const s of VITAL_SIGNS) table[s.sign] = s
  return Object.freeze(table)
})()

/** Lead enum number → InfluxDB field name in `ecg`. */
export const LEAD_FIELDS: readonly string[] = Object.freeze(
  ['', 'i', 'ii', 'iii', 'avr', 'avl', 'avf', 'v1', 'v2', 'v3', 'v4', 'v5', 'v6']
)
