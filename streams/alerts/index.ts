// The alert engine's public surface: the engine, its contract types, rules and NEWS2.
export { AlertEngine, ALERT_ENGINE_DEFAULTS, alertsDir, type AlertEngineOptions, type AlertEngineEvents } from './engine.js'
export { AlertError, ALERT_ERRORS, type AlertErrorCode } from './errors.js'
export { alertEventToLine, eventTimeMs, eventTimeUs } from './line-protocol.js'
export { news2, NEWS2_PARAMS, NEWS2_STALENESS_DEFAULTS, type News2Result, type News2Param, type News2Parameter, type News2Readings, type News2Band, type News2Trigger, type Reading } from './news2.js'
export { DEFAULT_RULES, loadRulesFile, parseRulesConfig, type ThresholdRule } from './rules.js'
export type { News2Point } from './unit-state.js'
export type { Alert, AlertEvent, AlertEventType, AlertKind, AlertPriority } from './types.js'
export { JournalStateStore, type AlertStateStore, type UnitSnapshot } from './state-store.js'
