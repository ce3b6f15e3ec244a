// The live hub's public surface (the wire format itself is ./protocol.ts, shared with the page).
export * from './hub.js'
export type { Assignment, AssignmentAction, ClientMessage, ServerMessage, UnitResume, News2View, TrendSign, ViewSpec } from './protocol.js'
export { ASSIGNMENT_ACTIONS, DEFAULT_VIEW, parseViewSpec } from './protocol.js'
