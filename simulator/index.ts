/** The simulator's public surface: the fleet, its building blocks for tests, and the CLI. */
export { Fleet, type FleetStats, type UnitReport, type AckedFrame, type StopOptions } from './fleet.js'
export { FLEET_DEFAULTS, type FleetOptions, type FleetProgress, type UnitCredentials } from './fleet-options.js'
export { UnitFrameSource, DEVICE_DEFAULTS, type FrameSourceOptions, type FrameMeta, type SourceFrame, type LeadSet } from './frame-source.js'
export { EcgSynth, ECG_DEFAULTS, ECG_LEAD_NAMES, STEMI_KINDS, type EcgOptions, type StemiKind } from './ecg.js'
export { VitalsSim, PATIENT_PROFILES, type PatientProfile, type AssessmentInfo } from './vitals.js'
export { LUXEMBOURG_ROUTES, HOSPITAL_KIRCHBERG, RouteFollower, type Route, type GeoPoint } from './route.js'
export { SimulatorError, SIMULATOR_ERRORS, type SimulatorErrorCode } from './errors.js'
