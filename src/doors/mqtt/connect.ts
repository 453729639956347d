/** CONNECT on the MQTT door: who the connection is (username and password) and its attachment to the relay. */
import type { AuthenticateError } from 'aedes';
import { toIotcError } from '../../core/errors.js';
import type { Role } from '../../core/sharing.js';
import { TOKEN_PREFIX } from '../../core/tokens.js';
import type { Device, Side } from '../../store/types.js';
import type { DoorContext, Session } from './session.js';
import { aliasPublish, sensorFromTopic } from './topics.js';

/**
 * Checks an API token for a device (username `ID:client`, password = the token): the device and the token's
 * account's role on it (owner, operator, viewer). Rejects E_AUTH for a wrong token or a device the account cannot see.
 */
export type MqttUserAuthenticator = (token: string, deviceId: string, address: string) => Promise<{ device: Device; userId: number; role: Role }>;

/** `ID` is the device side; `ID:client` (or `ID:device`) names the side explicitly. */
function parseUsername(username: string | undefined): { deviceId: string; side: Side } | null {
  if (!username) return null;
  const m = /^([^:]{1,64})(?::(device|client))?$/.exec(username);
  return m ? { deviceId: m[1], side: (m[2] as Side | undefined) ?? 'device' } : null;
}

function authError(returnCode: 2 | 3 | 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/** Before authentication: notes the will topic (checked once the device is known) and scopes the client id to the device. */
export function preConnect(session: Session | undefined, accepting: boolean, packet: { clientId: string; username?: string; will?: { topic: string } }, done: (err: Error | null, ok: boolean) => void): void {
  if (!session || !accepting) return done(new Error('not accepting connections'), false);
  session.willTopic = packet.will?.topic ?? null;
  // Client ids live in one broker for every user: prefix them with the device, so two users' sketches
  // that both call themselves "ESP8266Client" cannot take each other's sessions over.
  const who = parseUsername(packet.username);
  if (who && packet.clientId) packet.clientId = `${who.deviceId}:${who.side}/${packet.clientId}`;
  done(null, true);
}

/** The device key (or an account's API token, client side) checked by the relay, then the connection attached to it. */
export function authenticate(ctx: DoorContext, session: Session | undefined, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void {
  if (!session) return done(authError(3, 'no session'), null);
  const who = parseUsername(username);
  if (!who || !password || password.length === 0) {
    ctx.log.info({ remote: session.remote }, 'mqtt refused: username must be the device id (ID or ID:client) and password the key');
    return done(authError(4, 'username = device id, password = device key'), null);
  }
  const secret = password.toString('utf8');
  // A shared account (or the owner) acting through its own API token: always the client side, with its role.
  const viaToken = ctx.users !== undefined && who.side === 'client' && secret.startsWith(TOKEN_PREFIX);
  const authenticated = viaToken
    ? ctx.users!(secret, who.deviceId, session.remote).then(({ device, userId, role }) => {
        session.receiver.grant = { userId, role };
        return device;
      })
    : ctx.relay.authenticate(who.deviceId, secret, session.remote);
  authenticated.then(async (device) => {
    if (session.willTopic !== null && sensorFromTopic(session.willTopic, device.id) === null && aliasPublish(session.willTopic) === null) {
      ctx.log.info({ deviceId: device.id, remote: session.remote, topic: session.willTopic.slice(0, 100) }, 'mqtt refused: will topic outside the device\'s own topics');
      return done(authError(5, 'the will topic must be devices/ID/SENSOR of this device (or a Tasmota/ESPHome default topic)'), null);
    }
    session.device = device;
    session.side = who.side;
    try {
      const attachment = await ctx.relay.attach(device, session.receiver);
      if (session.closed) attachment.detach();
      else session.attachment = attachment;
      session.handshake.settle();
    } catch (err) {
      const e = toIotcError(err);
      ctx.log.info({ deviceId: device.id, code: e.code }, 'mqtt refused: could not attach');
      return done(authError(3, e.message), null);
    }
    done(null, true);
  }, (err) => {
    const e = toIotcError(err);
    if (e.code === 'E_AUTH') ctx.log.info({ deviceId: who.deviceId.slice(0, 20), remote: session.remote }, 'mqtt refused: wrong device id or key');
    else if (e.code === 'E_RATE_LIMITED') ctx.log.info({ deviceId: who.deviceId.slice(0, 20), remote: session.remote }, `mqtt refused: ${e.message}`);
    else if (e.code === 'E_INTERNAL') ctx.log.error({ err }, 'mqtt authentication failed');
    done(authError(e.code === 'E_AUTH' ? 4 : 3, e.message), null);
  });
}
