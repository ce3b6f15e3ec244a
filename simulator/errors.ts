/**
 * The simulator's error catalogue. Callers (the CLI, `ambulink demo`, tests) match on `code`.
 */
import { catalogue, CodedError, createError, type ErrorDefinition } from '../decoders/index.js'

export type SimulatorErrorCode =
  | 'AMB_ERR_SIM_OPTION_INVALID'
  | 'AMB_ERR_SIM_CONNECT_REFUSED'
  | 'AMB_ERR_SIM_CONNECT_TIMEOUT'
  | 'AMB_ERR_SIM_STATE'
  | 'AMB_ERR_SIM_NOT_RECORDING'
  | 'AMB_ERR_SIM_CREDENTIALS'

/** `status` is nominal (the simulator answers no HTTP); `retry` says whether trying again may help. */
export const SIMULATOR_ERRORS: Readonly<Record<SimulatorErrorCode, ErrorDefinition<SimulatorErrorCode>>> = catalogue<SimulatorErrorCode>(
  createError('AMB_ERR_SIM_OPTION_INVALID', 'a fleet or frame option is missing or out of range', 400),
  createError('AMB_ERR_SIM_CONNECT_REFUSED', 'the broker refused a unit\'s CONNECT (CONNACK return code, e.g. Not authorized)', 400),
  createError('AMB_ERR_SIM_CONNECT_TIMEOUT', 'not every unit connected within startTimeoutMs', 503, { retry: true }),
  createError('AMB_ERR_SIM_STATE', 'start() called twice, or after stop()', 400),
  createError('AMB_ERR_SIM_NOT_RECORDING', 'ackedFrames() needs the recordAckedFrames option', 400),
  createError('AMB_ERR_SIM_CREDENTIALS', 'the credentials file is unreadable or not a {unitId: token} JSON object', 400)
)

export class SimulatorError extends CodedError<SimulatorErrorCode> {
  override readonly name = 'SimulatorError'
  /** The unit concerned, when there is one. */
  readonly unitId: string | undefined
  /** MQTT CONNACK return code (3.1.1) or reason code (5.0), for AMB_ERR_SIM_CONNECT_REFUSED. */
  readonly mqttReturnCode: number | undefined

  constructor (code: SimulatorErrorCode, message: string, options: { cause?: unknown, unitId?: string, mqttReturnCode?: number } = {}) {
    super(SIMULATOR_ERRORS[code], message, { cause: options.cause })
    this.unitId = options.unitId
    this.mqttReturnCode = options.mqttReturnCode
  }
}
