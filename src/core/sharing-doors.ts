import { IotcError } from './errors.js';
import type { Hub } from './hub.js';
import type { MqttUserAuthenticator } from '../doors/mqtt/door.js';

/**
 * MQTT log-in with an API token (username `ID:client`, password = the token): the token's account must be
 * the owner or a shared account; any other answer is the same E_AUTH a wrong key gets, so ids cannot be probed.
 * Wrong tokens count against the address like every API token failure.
 */
export function mqttUserAuthenticator(hub: Hub): MqttUserAuthenticator {
  return async (token, deviceId, address) => {
    const user = await hub.authLimits.apiToken(address, () => hub.tokens.authenticate(token));
    const grant = await hub.sharing.grantOf(user.id, deviceId);
    if (!grant) throw new IotcError('E_AUTH');
    return { device: grant.device, userId: user.id, role: grant.role };
  };
}
