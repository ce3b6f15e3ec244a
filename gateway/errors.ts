/** The gateway's error catalogue: authentication, authorisation, transport limits. */
export type GatewayErrorCode =
  | 'AMB_ERR_UNAUTHENTICATED'
  | 'AMB_ERR_FORBIDDEN_TOPIC'
  | 'AMB_ERR_FORBIDDEN_SUBSCRIBE'
  | 'AMB_ERR_CLIENT_ID'
  | 'AMB_ERR_BAD_NAME'
  | 'AMB_ERR_UNSUPPORTED_MEDIA'
  | 'AMB_ERR_PACKET_TOO_LARGE'
  | 'AMB_ERR_PACKET_MALFORMED'
  | 'AMB_ERR_TOO_MANY_CONNECTIONS'
  | 'AMB_ERR_SUBSCRIBER_TOO_SLOW'
  | 'AMB_ERR_TLS_HANDSHAKE'
  | 'AMB_ERR_BAD_STATUS'
  | 'AMB_ERR_TOPIC_TOO_LONG'
  | 'AMB_ERR_TOO_MANY_SUBSCRIPTIONS'
  | 'AMB_ERR_TOO_MANY_INFLIGHT'
  | 'AMB_ERR_ORIGIN_NOT_ALLOWED'
  | 'AMB_ERR_DASHBOARD_BAD_REQUEST'

export const GATEWAY_ERRORS: Readonly<Record<GatewayErrorCode, { status: number, mqttReturnCode?: number, description: string }>> = {
  AMB_ERR_UNAUTHENTICATED: { status: 401, mqttReturnCode: 4, description: 'missing or wrong unit id / token (or user name / password)' },
  AMB_ERR_FORBIDDEN_TOPIC: { status: 403, description: 'publish to a topic outside the client\'s own units/{unit}/ (or $SYS)' },
  AMB_ERR_FORBIDDEN_SUBSCRIBE: { status: 403, description: 'subscription the client\'s role does not allow' },
  AMB_ERR_CLIENT_ID: { status: 400, mqttReturnCode: 2, description: 'MQTT client id must be the unit id (or start with "<unit>:")' },
  AMB_ERR_BAD_NAME: { status: 400, description: 'unit or user name does not match the id pattern' },
  AMB_ERR_UNSUPPORTED_MEDIA: { status: 415, description: 'HTTP telemetry must be application/x-protobuf or application/octet-stream' },
  AMB_ERR_PACKET_TOO_LARGE: { status: 413, description: 'an MQTT packet declared more than MAX_PACKET_BYTES; the connection is closed' },
  AMB_ERR_PACKET_MALFORMED: { status: 400, description: 'an MQTT fixed header had a remaining length longer than 4 bytes; the connection is closed' },
  AMB_ERR_TOO_MANY_CONNECTIONS: { status: 429, description: 'the address already holds MAX_CONNECTIONS_PER_IP connections' },
  AMB_ERR_SUBSCRIBER_TOO_SLOW: { status: 503, description: 'a subscriber stopped reading while messages queued for it; it is disconnected' },
  AMB_ERR_TLS_HANDSHAKE: { status: 401, description: 'MQTTS handshake failed (with TLS_CA: no valid client certificate)' },
  AMB_ERR_BAD_STATUS: { status: 400, mqttReturnCode: 5, description: 'units/{unit}/status (publish or will) takes only "online" or "offline" at QoS 0 or 1' },
  AMB_ERR_TOPIC_TOO_LONG: { status: 400, description: 'topic or topic filter longer than MAX_TOPIC_LENGTH' },
  AMB_ERR_TOO_MANY_SUBSCRIPTIONS: { status: 429, description: 'the client already holds MAX_SUBSCRIPTIONS_PER_CLIENT subscriptions' },
  AMB_ERR_TOO_MANY_INFLIGHT: { status: 503, description: 'the client left MAX_INFLIGHT_PER_CLIENT QoS 1 messages unacknowledged; it is disconnected' },
  AMB_ERR_ORIGIN_NOT_ALLOWED: { status: 403, description: 'a browser opened /mqtt from an Origin not in MQTT_WS_ALLOWED_ORIGINS (nor the gateway\'s own)' },
  AMB_ERR_DASHBOARD_BAD_REQUEST: { status: 400, description: 'dashboard: a malformed team view, or an unknown assignment action or unit' }
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
