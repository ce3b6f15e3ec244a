/** The gateway's error catalogue: authentication, authorisation, transport limits. */
export type GatewayErrorCode =
  | 'AMB_ERR_UNAUTHENTICATED'
  | 'AMB_ERR_FORBIDDEN_TOPIC'
  | 'AMB_ERR_FORBIDDEN_SUBSCRIBE'
  | 'AMB_ERR_CLIENT_ID'
  | 'AMB_ERR_BAD_NAME'
  | 'AMB_ERR_UNSUPPORTED_MEDIA'

export const GATEWAY_ERRORS: Readonly<Record<GatewayErrorCode, { status: number, mqttReturnCode?: number, description: string }>> = {
  AMB_ERR_UNAUTHENTICATED: { status: 401, mqttReturnCode: 4, description: 'missing or wrong unit id / token (or user name / password)' },
  AMB_ERR_FORBIDDEN_TOPIC: { status: 403, description: 'publish to a topic outside the client\'s own units/{unit}/ (or $SYS)' },
  AMB_ERR_FORBIDDEN_SUBSCRIBE: { status: 403, description: 'subscription the client\'s role does not allow' },
  AMB_ERR_CLIENT_ID: { status: 400, mqttReturnCode: 2, description: 'MQTT client id must be the unit id (or start with "<unit>:")' },
  AMB_ERR_BAD_NAME: { status: 400, description: 'unit or user name does not match the id pattern' },
  AMB_ERR_UNSUPPORTED_MEDIA: { status: 415, description: 'HTTP telemetry must be application/x-protobuf or application/octet-stream' }
}

export class AuthError extends Error {
  override readonly name = 'AuthError'
  readonly code: GatewayErrorCode
  readonly statusCode: number
  /** MQTT 3.1.1 CONNACK return code, for aedes. */
  readonly returnCode: number | undefined

  constructor (code: GatewayErrorCode, message: string) {
    super(message)
    this.code = code
    this.statusCode = GATEWAY_ERRORS[code].status
    this.returnCode = GATEWAY_ERRORS[code].mqttReturnCode
  }

  canRetry (): boolean { return false }
}
