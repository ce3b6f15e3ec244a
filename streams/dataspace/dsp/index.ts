/** The Dataspace Protocol (DSP 2025-1) provider's pure parts: schemas, offers, catalogue, state. */
export { DSP_ERRORS, DspError, type DspErrorCode } from './errors.js'
export { DSP_CONTEXT, DSP_MESSAGE_SCHEMAS, dspValidator, loadDspSchemas, productDspValidator, type DspMessageType, type DspValidator } from './validate.js'
export { agreement, allOffers, datasetId, datasetName, notCovered, offer, offerId, offersOf, parseOfferId, ODRL_DATA_PERMIT, ODRL_PROTECTION_LEVEL, ODRL_REIDENTIFY, type OdrlPolicy } from './offers.js'
export { dspCatalog, dspDataset, PULL_FORMAT, type DspCatalogInfo } from './catalog.js'
export {
  CONSUMER_NEGOTIATION_TRANSITIONS, CONSUMER_TRANSFER_TRANSITIONS, DspState, dspStatePath, isTerminalNegotiation, isTerminalTransfer,
  type Negotiation, type NegotiationState, type PermitClaims, type Transfer, type TransferState
} from './state.js'
