import { catalogue, CodedError, createError, type ErrorDefinition } from '../decoders/index.js'

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
  | 'AMB_ERR_OFFLINE_QUEUE_FULL'
  | 'AMB_ERR_ORIGIN_NOT_ALLOWED'
  | 'AMB_ERR_DASHBOARD_BAD_REQUEST'
  | 'AMB_ERR_FORBIDDEN_ORIGIN'
  | 'AMB_ERR_FORBIDDEN_ROLE'
  | 'AMB_ERR_NOT_FOUND'
  | 'AMB_ERR_UNAVAILABLE'
  | 'AMB_ERR_INTERNAL'

interface GatewayErrorDefinition extends ErrorDefinition<GatewayErrorCode> {
  /** MQTT 3.1.1 CONNACK return code, where the refusal happens at CONNECT. */
  readonly mqttReturnCode?: number
}

function gatewayError (code: GatewayErrorCode, message: string, status: number, extra: { mqttReturnCode?: number } = {}): GatewayErrorDefinition {
  return Object.freeze({ ...createError(code, message, status), ...extra })
}

export const GATEWAY_ERRORS: Readonly<Record<GatewayErrorCode, GatewayErrorDefinition>> = catalogue<GatewayErrorCode>(
  gatewayError('AMB_ERR_UNAUTHENTICATED', 'missing or wrong unit id / token (or user name / password)', 401, { mqttReturnCode: 4 }),
  gatewayError('AMB_ERR_FORBIDDEN_TOPIC', 'publish to a topic outside the client\'s own units/{unit}/ (or $SYS)', 403),
  gatewayError('AMB_ERR_FORBIDDEN_SUBSCRIBE', 'subscription the client\'s role does not allow', 403),
  gatewayError('AMB_ERR_CLIENT_ID', 'MQTT client id must be the unit id (or start with "<unit>:")', 400, { mqttReturnCode: 2 }),
  gatewayError('AMB_ERR_BAD_NAME', 'unit or user name does not match the id pattern', 400),
  gatewayError('AMB_ERR_UNSUPPORTED_MEDIA', 'HTTP telemetry must be application/x-protobuf or application/octet-stream', 415),
  gatewayError('AMB_ERR_PACKET_TOO_LARGE', 'an MQTT packet declared more than MAX_PACKET_BYTES; the connection is closed', 413),
  gatewayError('AMB_ERR_PACKET_MALFORMED', 'an MQTT fixed header had a remaining length longer than 4 bytes; the connection is closed', 400),
  gatewayError('AMB_ERR_TOO_MANY_CONNECTIONS', 'the address already holds MAX_CONNECTIONS_PER_IP connections', 429),
  gatewayError('AMB_ERR_SUBSCRIBER_TOO_SLOW', 'a subscriber stopped reading while messages queued for it; it is disconnected', 503),
  gatewayError('AMB_ERR_TLS_HANDSHAKE', 'MQTTS handshake failed (with TLS_CA: no valid client certificate)', 401),
  gatewayError('AMB_ERR_BAD_STATUS', 'units/{unit}/status (publish or will) takes only "online" or "offline" at QoS 0 or 1', 400, { mqttReturnCode: 5 }),
  gatewayError('AMB_ERR_TOPIC_TOO_LONG', 'topic or topic filter longer than MAX_TOPIC_LENGTH', 400),
  gatewayError('AMB_ERR_TOO_MANY_SUBSCRIPTIONS', 'the client already holds MAX_SUBSCRIPTIONS_PER_CLIENT subscriptions', 429),
  gatewayError('AMB_ERR_TOO_MANY_INFLIGHT', 'the client left MAX_INFLIGHT_PER_CLIENT QoS 1 messages unacknowledged; it is disconnected', 503),
  gatewayError('AMB_ERR_OFFLINE_QUEUE_FULL', 'a persistent (clean=false) client\'s queue of undelivered QoS 1 messages reached MAX_QUEUED_PER_CLIENT; the least important one was dropped (superseded, cleared, status, then low before medium before high priority)', 503),
  gatewayError('AMB_ERR_ORIGIN_NOT_ALLOWED', 'a browser opened /mqtt from an Origin not in MQTT_WS_ALLOWED_ORIGINS (nor the gateway\'s own)', 403),
  gatewayError('AMB_ERR_DASHBOARD_BAD_REQUEST', 'dashboard: a malformed team view, or an unknown assignment action or unit', 400),
  gatewayError('AMB_ERR_FORBIDDEN_ORIGIN', 'dashboard: a login or live WebSocket from an Origin other than the gateway\'s own', 403),
  gatewayError('AMB_ERR_FORBIDDEN_ROLE', 'dashboard: the account is not a clinician\'s (researchers use the dataspace)', 403),
  gatewayError('AMB_ERR_NOT_FOUND', 'dashboard: no such alert, or no ECG snapshot for it', 404),
  gatewayError('AMB_ERR_UNAVAILABLE', 'dashboard: the alert engine is not running', 503),
  gatewayError('AMB_ERR_INTERNAL', 'an unexpected server error; the answer says only "internal error" (details are logged)', 500),
) as Readonly<Record<GatewayErrorCode, GatewayErrorDefinition>>

export class AuthError extends CodedError<GatewayErrorCode> {
  override readonly name = 'AuthError'
  /** MQTT 3.1.1 CONNACK return code, for aedes. */
  readonly returnCode: number | undefined

  constructor (code: GatewayErrorCode, message: string) {
    super(GATEWAY_ERRORS[code], message)
    this.returnCode = GATEWAY_ERRORS[code].mqttReturnCode
  }
}
