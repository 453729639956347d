import type { FastifyInstance, FastifyReply } from 'fastify';
import { IotcError } from '../core/errors.js';
import { tokenName } from '../core/tokens.js';
import { signUpInput } from '../core/accounts.js';
import type { User } from '../store/types.js';
import { serverAddress } from './address.js';
import type { FormState } from './pages/auth.js';
import { accountDeletedPage, accountPage, deleteAccountPage, tokensPage } from './pages/account.js';
import type { PageKit } from './page-kit.js';
import { parseCookies, serializeCookie, SESSION_COOKIE } from './session.js';
import { secretMatches } from '../core/secrets.js';

/** Carries a new API token from the form's POST to the page that shows it, once (as new device keys are). */
const NEW_TOKEN_COOKIE = 'iotc_newtoken';

/** The account page (name, password, deletion) and the API token page (create, list with last use, revoke). */
export function registerAccountPages(app: FastifyInstance, kit: PageKit): void {
  const { hub, log } = kit;
  const { accounts, tokens, store } = hub;

  /**
   * Checks a password given to confirm an action: null when right, else the status to answer (the form says why).
   * Wrong ones count against the account's log-in limit: a stolen session must not become a password oracle.
   */
  async function passwordOk(reply: FastifyReply, user: User, password: string, form: FormState, fieldName: string): Promise<number | null> {
    if (!password || password.length > 1024) {
      form.errors[fieldName] = 'Enter your password.';
      return 400;
    }
    try {
      if (await hub.authLimits.forAccount('log-in', user.email, async () => ((await accounts.passwordMatches(user.id, password)) ? true : null))) return null;
    } catch (err) {
      if (!(err instanceof IotcError && err.code === 'E_RATE_LIMITED')) throw err;
      reply.header('Retry-After', String(err.retryAfterSeconds ?? 60));
      form.message = err.message;
      return 429;
    }
    form.errors[fieldName] = 'That is not your current password.';
    return 401;
  }

  app.get('/account', async (req, reply) => {
    const signed = await kit.needUser(req, reply);
    if (!signed) return reply;
    const q = req.query as Record<string, string>;
    const notice = q.renamed !== undefined ? 'Your name was saved.' : q.password !== undefined ? 'Your password was changed; your other logins were ended.' : undefined;
    return kit.sendPage(reply, accountPage(signed.viewer, {}, notice));
  });

  app.post('/account/name', async (req, reply) => {
    const signed = await kit.guarded(req, reply);
    if (!signed) return reply;
    const name = kit.field(req.body, 'name');
    const parsed = signUpInput.shape.name.safeParse(name);
    if (!parsed.success) {
      const form: FormState = { values: { name }, errors: { name: kit.fieldErrors(parsed.error)._ ?? 'Enter your name.' } };
      return kit.sendPage(reply, accountPage(signed.viewer, { name: form }), 400);
    }
    await accounts.renameUser(signed.user.id, parsed.data);
    return reply.redirect('/account?renamed', 303);
  });

  app.post('/account/password', async (req, reply) => {
    const signed = await kit.guarded(req, reply);
    if (!signed) return reply;
    const form: FormState = { values: {}, errors: {} };
    const next = kit.field(req.body, 'password');
    const parsed = signUpInput.shape.password.safeParse(next);
    if (!parsed.success) form.errors.password = kit.fieldErrors(parsed.error)._ ?? 'Enter a new password.';
    const status = Object.keys(form.errors).length ? 400 : await passwordOk(reply, signed.user, kit.field(req.body, 'current'), form, 'current');
    if (status !== null) return kit.sendPage(reply, accountPage(signed.viewer, { password: form }), status);
    await accounts.changePassword(signed.user.id, kit.field(req.body, 'current'), next);
    // Whoever else was logged in with the old password is logged out; this browser stays in.
    const ended = await store.deleteUserSessions(signed.user.id, signed.session.idHash);
    log.info({ userId: signed.user.id, endedSessions: ended }, 'password changed');
    return reply.redirect('/account?password', 303);
  });

  app.get('/account/delete', async (req, reply) => {
    const signed = await kit.needUser(req, reply);
    if (!signed) return reply;
    return kit.sendPage(reply, deleteAccountPage(signed.viewer, (await accounts.listDevices(signed.user.id)).length));
  });

  app.post('/account/delete', async (req, reply) => {
    const signed = await kit.guarded(req, reply);
    if (!signed) return reply;
    const confirm = kit.field(req.body, 'confirm');
    const form: FormState = { values: { confirm }, errors: {} };
    if (confirm.trim() !== 'DELETE') form.errors.confirm = 'Type DELETE (in capitals) to confirm.';
    const status = Object.keys(form.errors).length ? 400 : await passwordOk(reply, signed.user, kit.field(req.body, 'password'), form, 'password');
    if (status !== null) return kit.sendPage(reply, deleteAccountPage(signed.viewer, (await accounts.listDevices(signed.user.id)).length, form), status);
    await accounts.deleteAccount(signed.user.id, kit.field(req.body, 'password'));
    log.info({ userId: signed.user.id }, 'account deleted');
    reply.header('Set-Cookie', serializeCookie(SESSION_COOKIE, '', { secure: kit.secure(req), maxAgeSeconds: 0 }));
    return reply.redirect('/account/deleted', 303);
  });

  app.get('/account/deleted', async (_req, reply) => kit.sendPage(reply, accountDeletedPage()));

  // ---- API tokens ----

  app.get('/tokens', async (req, reply) => {
    const signed = await kit.needUser(req, reply);
    if (!signed) return reply;
    const q = req.query as Record<string, string>;
    const list = await tokens.list(signed.user.id);
    const httpBase = serverAddress(req.raw, kit.trustProxy).httpBase;
    let created;
    const sent = parseCookies(req.headers.cookie)[NEW_TOKEN_COOKIE];
    if (sent !== undefined) {
      reply.header('Set-Cookie', serializeCookie(NEW_TOKEN_COOKIE, '', { secure: kit.secure(req), maxAgeSeconds: 0, path: '/tokens' }));
      // Shown only if it is one of this user's live tokens (revoked or another account's: nothing).
      const row = (await store.listApiTokens(signed.user.id)).find((t) => secretMatches(sent, t.tokenHash));
      if (row) created = { id: row.id, name: row.name, token: sent };
    }
    const notice = q.revoked !== undefined ? 'The token was revoked: it no longer works.' : undefined;
    return kit.sendPage(reply, tokensPage(signed.viewer, list, httpBase, { created, notice }));
  });

  app.post('/tokens', async (req, reply) => {
    const signed = await kit.guarded(req, reply);
    if (!signed) return reply;
    const name = kit.field(req.body, 'name');
    const parsed = tokenName.safeParse(name);
    if (!parsed.success) {
      const form: FormState = { values: { name }, errors: { name: kit.fieldErrors(parsed.error)._ ?? 'Enter a name.' } };
      const httpBase = serverAddress(req.raw, kit.trustProxy).httpBase;
      return kit.sendPage(reply, tokensPage(signed.viewer, await tokens.list(signed.user.id), httpBase, { form }), 400);
    }
    const made = await tokens.create(signed.user.id, parsed.data);
    log.info({ userId: signed.user.id, tokenId: made.id }, 'API token created');
    // Post/redirect/get: a reload shows the list, never makes a second token; the token rides in a one-time cookie.
    reply.header('Set-Cookie', serializeCookie(NEW_TOKEN_COOKIE, made.token, { secure: kit.secure(req), maxAgeSeconds: 120, path: '/tokens' }));
    return reply.redirect(`/tokens?created=${made.id}`, 303);
  });

  app.post<{ Params: { id: string } }>('/tokens/:id/revoke', async (req, reply) => {
    const signed = await kit.guarded(req, reply);
    if (!signed) return reply;
    const id = /^\d{1,15}$/.test(req.params.id) ? Number(req.params.id) : NaN;
    try {
      if (!Number.isSafeInteger(id)) throw new IotcError('E_NOT_FOUND', 'No such token');
      await tokens.revoke(signed.user.id, id);
    } catch (err) {
      if (!(err instanceof IotcError && err.code === 'E_NOT_FOUND')) throw err;
      const httpBase = serverAddress(req.raw, kit.trustProxy).httpBase;
      const form: FormState = { values: {}, errors: {}, message: 'There is no such token in your account. It may have been revoked already.' };
      return kit.sendPage(reply, tokensPage(signed.viewer, await tokens.list(signed.user.id), httpBase, { form }), 404);
    }
    log.info({ userId: signed.user.id, tokenId: id }, 'API token revoked');
    return reply.redirect('/tokens?revoked', 303);
  });
}
