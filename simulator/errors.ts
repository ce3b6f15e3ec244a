/**
 * The simulator's error catalogue. Callers (the CLI, `ambulink demo`, tests) match on `code`.
 */
export type SimulatorErrorCode =
  | 'AMB_ERR_SIM_OPTION_INVALID'
  | 'AMB_ERR_SIM_CONNECT_REFUSED'
  | 'AMB_ERR_SIM_CONNECT_TIMEOUT'
  | 'AMB_ERR_SIM_STATE'
  | 'AMB_ERR_SIM_NOT_RECORDING'
  | 'AMB_ERR_SIM_CREDENTIALS'

export const SIMULATOR_ERRORS: Readonly<Record<SimulatorErrorCode, { description: string, retry: boolean }>> = {
  AMB_ERR_SIM_OPTION_INVALID: { description: 'a fleet or frame option is missing or out of range', retry: false },
  AMB_ERR_SIM_CONNECT_REFUSED: { description: 'the broker refused a unit\'s CONNECT (CONNACK return code, e.g. Not authorized)', retry: false },
  AMB_ERR_SIM_CONNECT_TIMEOUT: { description: 'not every unit connected within startTimeoutMs', retry: true },
  AMB_ERR_SIM_STATE: { description: 'start() called twice, or after stop()', retry: false },
  AMB_ERR_SIM_NOT_RECORDING: { description: 'ackedFrames() needs the recordAckedFrames option', retry: false },
  AMB_ERR_SIM_CREDENTIALS: { description: 'the credentials file is unreadable or not a {unitId: token} JSON object', retry: false }
}

export class SimulatorError extends Error {
  override readonly name = 'SimulatorError'
  readonly code: SimulatorErrorCode
  /** The unit concerned, when there is one. */
  readonly unitId: string | undefined
  /** MQTT CONNACK return code (3.1.1) or reason code (5.0), for AMB_ERR_SIM_CONNECT_REFUSED. */
  readonly mqttReturnCode: number | undefined

  constructor (code: SimulatorErrorCode, message: string, options: { cause?: unknown, unitId?: string, mqttReturnCode?: number } = {}) {
    super(message, { cause: options.cause })
    this.code = code
    this.unitId = options.unitId
    this.mqttReturnCode = options.mqttReturnCode
  }

  canRetry (): boolean {
    return SIMULATOR_ERRORS[this.code].retry
  }
}
