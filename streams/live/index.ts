// The live hub's public surface (the wire format itself is ./protocol.ts, shared with the page).
export * from './hub.js'
export type { ClientMessage, ServerMessage, UnitResume, News2View, TrendSign } from './protocol.js'
