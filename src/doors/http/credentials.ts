import type { FastifyRequest } from 'fastify';
import { IotcError } from '../../core/errors.js';
import type { Hub } from '../../core/hub.js';
import { hashSecret } from '../../core/secrets.js';
import type { Device, Side, User } from '../../store/types.js';
import type { RateLimits } from './rate-limits.js';
import type { Action, Role } from '../../core/sharing.js';

/** Who is calling, once checked: a device key (either side) or an API token of the owner or a shared account (the client side). */
export interface Caller {
  device: Device;
  side: Side;
  via: 'key' | 'token' | 'session';
  /** 'owner' for the device key; the token's account's role otherwise. */
  role: Role;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function queryParam(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
}

/** The bearer token, if the request carries one; a malformed Authorization header is an error, not "absent". */
export function bearerToken(req: FastifyRequest): string | null {
  const auth = header(req, 'authorization');
  if (auth === undefined) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (!m) throw new IotcError('E_AUTH', 'Authorization must be "Bearer <API token>"');
  return m[1];
}

/** The side a device-key caller writes as: the device unless `side=client` or `X-Device-Side: client`. */
function requestedSide(req: FastifyRequest): Side {
  const side = queryParam(req, 'side') ?? header(req, 'x-device-side') ?? 'device';
  if (side !== 'device' && side !== 'client') throw new IotcError('E_VALIDATION', 'side must be "device" or "client"');
  return side;
}

/** The account of the web app's login cookie on a request, or null: lets the app's own pages read with it. */
export type SessionUser = (req: FastifyRequest) => Promise<number | null>;

/** Checks credentials and rate limits; every route that touches a device goes through here first. */
export class CallerAuth {
  constructor(
    private readonly hub: Hub,
    private readonly limits: RateLimits,
    private readonly sessionUser: SessionUser | null = null,
  ) {}

  /** The token's user, rate-limited per token. */
  async user(req: FastifyRequest): Promise<User> {
    const token = bearerToken(req);
    if (token === null) throw new IotcError('E_AUTH', 'This route needs "Authorization: Bearer <API token>"');
    // Wrong tokens are counted per address (req.ip: the proxy's word for it only with IOTC_TRUST_PROXY).
    const user = await this.hub.authLimits.apiToken(req.ip, () => this.hub.tokens.authenticate(token));
    // Keyed by the token's hash: the map never holds a usable secret.
    this.limits.take(`token:${hashSecret(token)}`);
    return user;
  }

  /**
   * A device key (X-Device-Key header or `key` query, for the device in the path or the `device` query)
   * or an API token whose account may do `action` (the owner's, or a shared account's: see Sharing.authorize).
   * A key for one device used on another device's path is refused.
   */
  async caller(req: FastifyRequest, pathDeviceId?: string, action: Action = 'read'): Promise<Caller> {
    const key = header(req, 'x-device-key') ?? queryParam(req, 'key');
    const token = key === undefined ? bearerToken(req) : null;
    if (key === undefined && token === null) {
      throw new IotcError('E_AUTH', 'Give the device key (X-Device-Key header or key query parameter) or "Authorization: Bearer <API token>"');
    }
    const queryDevice = queryParam(req, 'device');
    if (pathDeviceId !== undefined && queryDevice !== undefined && queryDevice !== pathDeviceId) {
      throw new IotcError('E_FORBIDDEN', 'The device in the query is not the device in the path: a key opens only its own device');
    }
    const deviceId = pathDeviceId ?? queryDevice;
    if (token !== null) {
      const user = await this.user(req);
      if (!deviceId) throw new IotcError('E_VALIDATION', 'Give the device id (device query parameter)');
      const { device, role } = await this.hub.sharing.authorize(user.id, deviceId, action);
      return { device, side: 'client', via: 'token', role };
    }
    if (!deviceId) throw new IotcError('E_AUTH', 'Give the device id (device query parameter)');
    const side = requestedSide(req);
    const device = await this.hub.relay.authenticate(deviceId.slice(0, 64), key!, req.ip);
    this.limits.take(`key:${device.id}`);
    return { device, side, via: 'key', role: 'owner' };
  }

  /**
   * caller() for reading, or, for a request with neither key nor token, the account signed in to the web app
   * (its pages show a device's pictures by their URL): the same authorize as every door, so an account the
   * device is shared with reads as its role allows and any other finds no such device.
   */
  async reader(req: FastifyRequest, pathDeviceId: string): Promise<Caller> {
    const bare = header(req, 'x-device-key') === undefined && queryParam(req, 'key') === undefined && header(req, 'authorization') === undefined;
    const userId = bare && this.sessionUser ? await this.sessionUser(req) : null;
    if (userId === null) return this.caller(req, pathDeviceId);
    this.limits.take(`session:${userId}`);
    const { device, role } = await this.hub.sharing.authorize(userId, pathDeviceId, 'read');
    return { device, side: 'client', via: 'session', role };
  }

  /** A password log-in: limited per address and, whatever the address, per account (failures only). */
  logIn<T>(req: FastifyRequest, email: string, check: () => Promise<T | null>): Promise<T | null> {
    return this.hub.authLimits.logIn(email, req.ip, check);
  }

  /** A sign-up: limited per address, and per email when it is already taken. */
  signUp<T>(req: FastifyRequest, email: string, attempt: () => Promise<T | null>): Promise<T | null> {
    return this.hub.authLimits.signUp(email, req.ip, attempt);
  }
}
