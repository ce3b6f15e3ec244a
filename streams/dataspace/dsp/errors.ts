/**
 * Errors of the Dataspace Protocol (DSP 2025-1) provider: messages that fail the official JSON
 * schemas, offers the catalogue does not hold, state transitions the protocol forbids, transfer
 * tokens. Each is answered in the DSP error shape of its protocol (CatalogError,
 * ContractNegotiationError, TransferError) with the code in `code` and the reason in `reason`;
 * permit refusals keep the permit codes of the dataspace catalogue. Counted in
 * `ambulink_dataspace_refused_total{code}`.
 */
import { catalogue, CodedError, createError, type CodedErrorOptions, type ErrorDefinition } from '../../../decoders/index.js'

export type DspErrorCode =
  | 'AMB_ERR_DSP_BAD_MESSAGE'
  | 'AMB_ERR_DSP_UNKNOWN_OFFER'
  | 'AMB_ERR_DSP_OFFER_NOT_COVERED'
  | 'AMB_ERR_DSP_NOT_FOUND'
  | 'AMB_ERR_DSP_STATE'
  | 'AMB_ERR_DSP_CALLBACK'
  | 'AMB_ERR_DSP_FORMAT'
  | 'AMB_ERR_DSP_TRANSFER_TOKEN'
  | 'AMB_ERR_DSP_TRANSFER_ONLY_PULL'
  | 'AMB_ERR_DSP_STATE_STORE'

export const DSP_ERRORS: Readonly<Record<DspErrorCode, ErrorDefinition<DspErrorCode>>> = catalogue<DspErrorCode>(
  createError('AMB_ERR_DSP_BAD_MESSAGE', 'a Dataspace Protocol message that is not JSON or does not validate against the official DSP 2025-1 JSON schema of its type (the reason lists the schema errors)', 400),
  createError('AMB_ERR_DSP_UNKNOWN_OFFER', 'a contract request names an offer `@id` the catalogue does not hold, or a `target` other than that offer\'s dataset', 400),
  createError('AMB_ERR_DSP_OFFER_NOT_COVERED', 'the permit presented with a contract request does not cover the offer (dataset not in the permit, or another protection level): the negotiation is TERMINATED with this code', 403),
  createError('AMB_ERR_DSP_NOT_FOUND', 'no such negotiation, agreement, transfer or dataset, or it belongs to another permit (the DSP binding answers 404 to both)', 404),
  createError('AMB_ERR_DSP_STATE', 'the message asks for a state transition the DSP state machine does not allow from the current state (e.g. verifying an agreement that was never sent, restarting a terminated transfer)', 400),
  createError('AMB_ERR_DSP_CALLBACK', 'the `callbackAddress` is not an http(s) URL, or the consumer\'s callback did not acknowledge a message (the process is TERMINATED)', 400),
  createError('AMB_ERR_DSP_FORMAT', 'a transfer request for a format other than HttpData-PULL', 400),
  createError('AMB_ERR_DSP_TRANSFER_TOKEN', 'a pull with a transfer token that is unknown, expired, or whose transfer is not STARTED (suspended, completed, terminated, permit revoked or expired)', 401),
  createError('AMB_ERR_DSP_TRANSFER_ONLY_PULL', 'a DSP transfer token was sent to an endpoint other than the extract it was issued for (the live stream)', 403),
  createError('AMB_ERR_DSP_STATE_STORE', 'the negotiation and transfer state could not be written durably, so the message was not acknowledged; retry later', 503, { retry: true })
)

export class DspError extends CodedError<DspErrorCode> {
  override readonly name = 'DspError'

  constructor (code: DspErrorCode, message: string, options: CodedErrorOptions = {}) {
    super(DSP_ERRORS[code], message, options)
  }
}
