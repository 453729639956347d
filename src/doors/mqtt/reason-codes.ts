/** MQTT 5 reason codes this door uses. */
export const REASON = {
  success: 0x00,
  unspecified: 0x80,
  malformed: 0x81,
  protocolError: 0x82,
  unsupportedVersion: 0x84,
  clientIdNotValid: 0x85,
  badCredentials: 0x86,
  notAuthorized: 0x87,
  serverUnavailable: 0x88,
  serverShuttingDown: 0x8b,
  badAuthMethod: 0x8c,
  topicNameInvalid: 0x90,
  packetTooLarge: 0x95,
  messageRateTooHigh: 0x96,
  quotaExceeded: 0x97,
  topicAliasInvalid: 0x94,
  payloadFormatInvalid: 0x99,
} as const;

/** 3.1.1 CONNACK return codes → MQTT 5 reason codes. */
export const CONNACK_REASON = [REASON.success, REASON.unsupportedVersion, REASON.clientIdNotValid, REASON.serverUnavailable, REASON.badCredentials, REASON.notAuthorized];
