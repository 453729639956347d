/**
 * What every part of the OpenAPI document (openapi.ts and the openapi-*.ts by area) writes alike: references to
 * components, JSON bodies and answers, the API's error answers by status, the usual security requirements.
 */
export type Json = Record<string, unknown>;

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const json = (schema: Json, description: string) => ({ description, content: { 'application/json': { schema } } });
export const p = (name: string) => ({ $ref: `#/components/parameters/${name}` });
export const body = (schema: Json, description: string) => ({ required: true, description, content: { 'application/json': { schema } } });

const ERROR_TEXT: Record<number, string> = {
  400: 'Malformed request or invalid field (E_BAD_MESSAGE, E_VALIDATION)',
  401: 'Missing or wrong device key or API token (E_AUTH)',
  403: 'A key used for another device than the one named (E_FORBIDDEN), or a limit of the hub reached: devices or API tokens per account, rules, open calls (E_LIMIT, the message names the setting)',
  404: 'No such device, sensor, token or route (E_NOT_FOUND); another user\'s device is "not found" too',
  409: 'Already exists (E_CONFLICT)',
  413: 'Body larger than the limit (E_TOO_LARGE)',
  429: 'Rate limit reached (E_RATE_LIMITED); wait Retry-After seconds',
  503: 'The store is unavailable or the server is shutting down (E_UNAVAILABLE, E_SHUTTING_DOWN)',
};

export function errors(...statuses: number[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const s of statuses) {
    const r: Json = json(ref('Error'), ERROR_TEXT[s]);
    if (s === 429 || s === 503) r.headers = { 'Retry-After': { description: 'Seconds to wait before trying again', schema: { type: 'integer', minimum: 0 } } };
    out[String(s)] = r;
  }
  return out;
}

/** Routes a device key or the owner's API token may use. */
export const deviceAuth = [{ deviceKey: [] }, { deviceKeyQuery: [] }, { apiToken: [] }];
export const tokenAuth = [{ apiToken: [] }];
