/**
 * What the dataspace offers: one dataset per InfluxDB measurement of the storage contract
 * (DESIGN.md), each with the fields a permit may grant. Only what is listed here can ever be
 * selected, so unit, encounter and boot ids, alert messages (free text) and anything added to the
 * storage later stay in by default (data minimisation, EHDS Art. 66(1)).
 *
 * `age` and `sex` are patient attributes joined from the encounter's assessment; they are the
 * quasi-identifiers k-anonymity works on, and a permit grants them like any other field.
 */
import { LEAD_FIELDS, VITAL_SIGNS } from '../../decoders/index.js'

export type DatasetName = 'vitals' | 'ecg' | 'alerts' | 'position' | 'assessment'
export const DATASET_NAMES: readonly DatasetName[] = Object.freeze(['vitals', 'ecg', 'alerts', 'position', 'assessment'])

/** Patient attributes from the assessment, available on every dataset. */
export const DEMOGRAPHIC_FIELDS: readonly string[] = Object.freeze(['age', 'sex'])

export interface DatasetInfo {
  readonly name: DatasetName
  readonly measurement: string
  readonly title: string
  readonly description: string
  readonly keywords: readonly string[]
  /** Measurement fields (or tags read as columns) a permit may grant, in output order. */
  readonly valueFields: readonly string[]
  /** Of those, the ones stored as tags (selected as columns). */
  readonly tagFields: readonly string[]
  /** Fields whose values are words from a closed vocabulary; a value outside it reads 'other'. Every other field is numeric. */
  readonly vocabularies: Readonly<Record<string, ReadonlySet<string>>>
  /** Read from InfluxDB but never released: only makes rows without a released value visible. */
  readonly presenceField: string | null
  /** Served on /dataspace/stream. */
  readonly live: boolean
  /** Has a FHIR mapping (formats/fhir.ts, fhir-resources.ts). */
  readonly fhir: boolean
}

const VITAL_FIELDS = VITAL_SIGNS.map(s => s.field)
const LEADS = LEAD_FIELDS.filter(f => f !== '')

/** Closed vocabularies of the alert contract (streams/alerts/types.ts); anything else reads 'other'. */
export const ALERT_KINDS: ReadonlySet<string> = new Set(['threshold', 'news2', 'device_alarm', 'stemi', 'stroke', 'signal_loss'])
export const ALERT_PRIORITIES: ReadonlySet<string> = new Set(['low', 'medium', 'high'])
export const ALERT_EVENTS: ReadonlySet<string> = new Set(['raised', 'updated', 'escalated', 'acknowledged', 'cleared'])
/** An alert's key is released only when it names a vital sign (a threshold alert); a device alarm code is vendor text. */
export const ALERT_KEYS: ReadonlySet<string> = new Set(VITAL_FIELDS)

export const DATASETS: Readonly<Record<DatasetName, DatasetInfo>> = Object.freeze({
  vitals: {
    name: 'vitals',
    measurement: 'vitals',
    title: 'Pre-hospital vital signs',
    description: 'Numeric vital signs measured in ambulances during emergency cardiac and stroke transports: heart and pulse rate, SpO2, non-invasive blood pressure, respiratory rate, EtCO2, temperature, ACVPU level, supplemental oxygen.',
    keywords: ['vital signs', 'ambulance', 'pre-hospital', 'emergency medical services', 'NEWS2', 'stroke', 'myocardial infarction'],
    valueFields: VITAL_FIELDS,
    tagFields: [],
    vocabularies: {},
    presenceField: null,
    live: true,
    fhir: true
  },
  ecg: {
    name: 'ecg',
    measurement: 'ecg',
    title: 'Pre-hospital ECG waveforms',
    description: 'Electrocardiogram samples (up to 12 leads, microvolts) recorded in ambulances, one record per sample instant.',
    keywords: ['ECG', '12-lead', 'waveform', 'ambulance', 'STEMI', 'pre-hospital'],
    valueFields: LEADS,
    tagFields: [],
    vocabularies: {},
    presenceField: null,
    live: false,
    fhir: true
  },
  alerts: {
    name: 'alerts',
    measurement: 'alerts',
    title: 'Clinical alerts raised during transport',
    description: 'Alert events (raised, updated, escalated, acknowledged, cleared) of the gateway\'s alert engine (vital-sign thresholds, NEWS2, device alarms, STEMI and stroke pre-notifications, signal loss): event, kind, the vital sign of a threshold alert, priority and triggering value; never their free-text messages, device alarm codes or who acknowledged them.',
    keywords: ['alerts', 'NEWS2', 'STEMI', 'stroke', 'early warning score', 'ambulance'],
    valueFields: ['event', 'kind', 'key', 'priority', 'value'],
    tagFields: ['kind', 'key', 'priority'],
    vocabularies: { event: ALERT_EVENTS, kind: ALERT_KINDS, key: ALERT_KEYS, priority: ALERT_PRIORITIES },
    // An alert without a value (a STEMI pre-notification) has only its message as a field.
    presenceField: 'message',
    live: true,
    fhir: true
  },
  position: {
    name: 'position',
    measurement: 'position',
    title: 'Ambulance positions during transport',
    description: 'GNSS positions, speed and heading of the ambulance while carrying the patient; at level anonymised coarsened to about 1 km cells, and cells crossed by fewer than k encounters are withheld.',
    keywords: ['position', 'GNSS', 'transport time', 'ambulance', 'geography'],
    valueFields: ['latitude', 'longitude', 'speed_mps', 'heading_deg'],
    tagFields: [],
    vocabularies: {},
    presenceField: null,
    live: false,
    fhir: true
  },
  assessment: {
    name: 'assessment',
    measurement: 'assessment',
    title: 'Paramedic assessment',
    description: 'The paramedic\'s findings during transport: suspected STEMI, Los Angeles Motor Scale (LAMS, 0-5), FAST stroke screen, and the time the patient was last known well (shifted like every time at level anonymised).',
    keywords: ['STEMI', 'stroke', 'LAMS', 'FAST', 'last known well', 'ambulance', 'pre-hospital'],
    valueFields: ['stemi_suspected', 'lams_score', 'fast_positive', 'last_known_well_ms'],
    tagFields: [],
    vocabularies: {},
    presenceField: null,
    live: false,
    fhir: true
  }
})

/** Fields holding an instant (Unix ms): shifted with the encounter at level anonymised. */
export const INSTANT_FIELDS: ReadonlySet<string> = new Set(['last_known_well_ms'])

export function isDatasetName (s: string): s is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(s)
}

/** Every field a permit may grant on `dataset`, value fields first. */
export function grantableFields (dataset: DatasetName): readonly string[] {
  return [...DATASETS[dataset].valueFields, ...DEMOGRAPHIC_FIELDS]
}
