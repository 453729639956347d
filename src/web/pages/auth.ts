import { html } from '../html.js';
import type { Html } from '../html.js';
import { alert, field, layout } from './layout.js';

export interface FormState {
  values: Record<string, string>;
  errors: Record<string, string>;
  /** A message about the whole form (rate limit, expired form, wrong password). */
  message?: string;
}

export const emptyForm = (): FormState => ({ values: {}, errors: {} });

export function landingPage(): Html {
  return layout({
    title: 'Connect your devices',
    viewer: null,
    body: html`<section class="hero">
  <h1>See your sensors move.<br>Flip your lamp from anywhere on your network.</h1>
  <p class="lead">IOTcommunicate is a hub you run yourself. Your ESP32, Arduino or Raspberry Pi sends readings over a WebSocket;
  you watch them live in the browser, chart their history and send commands back — no cloud account needed.</p>
  <p class="actions"><a class="btn" href="/signup">Create an account</a> <a class="btn btn-ghost" href="/login">Log in</a></p>
</section>
<section class="steps">
  <div class="card step"><span class="step-no">1</span><h2>Create a device</h2><p>Give it a name and get its id, its key and a ready-to-paste connection URL.</p></div>
  <div class="card step"><span class="step-no">2</span><h2>Paste the URL</h2><p>Copy-paste examples for Arduino (ESP32/ESP8266), Python and JavaScript, filled in with your own id and key.</p></div>
  <div class="card step"><span class="step-no">3</span><h2>Watch and control</h2><p>Live values and charts on the device page, a switch for your lamp, and CSV export of the history.</p></div>
</section>`,
  });
}

/** IOTC_SIGNUP: open shows the form, invite asks for a code too, closed says whom to ask. */
export type SignUpMode = 'open' | 'invite' | 'closed';

export function signUpPage(csrf: string, form: FormState, mode: SignUpMode = 'open'): Html {
  const v = form.values;
  if (mode === 'closed') {
    return layout({
      title: 'Sign up',
      viewer: null,
      nav: 'signup',
      body: html`<section class="auth card">
  <h1>Sign-up is closed</h1>
  <p>This hub does not take new accounts on its own: ask the person who runs it to make one for you.</p>
  <p class="switch-auth">Already have an account? <a href="/login">Log in</a></p>
</section>`,
    });
  }
  return layout({
    title: 'Sign up',
    viewer: null,
    nav: 'signup',
    body: html`<section class="auth card">
  <h1>Create your account</h1>
  <p class="muted">Free, on your own server. You will create your first device right after.</p>
  ${form.message ? alert('error', form.message) : ''}
  <form method="post" action="/signup" novalidate>
    <input type="hidden" name="_csrf" value="${csrf}">
    ${field({ name: 'name', label: 'Your name', value: v.name, error: form.errors.name, autocomplete: 'name', required: true, autofocus: !v.name, maxlength: 100 })}
    ${field({ name: 'email', label: 'Email', type: 'email', value: v.email, error: form.errors.email, autocomplete: 'email', required: true })}
    ${field({ name: 'password', label: 'Password', type: 'password', error: form.errors.password, autocomplete: 'new-password', required: true, hint: 'At least 8 characters.' })}
    ${mode === 'invite' ? field({ name: 'invite', label: 'Invitation code', value: v.invite, error: form.errors.invite, autocomplete: 'off', required: true, hint: 'This hub takes new accounts by invitation: ask the person who runs it for a code.', placeholder: 'XXXX-XXXX-XXXX-XXXX' }) : ''}
    <button class="btn btn-block" type="submit">Sign up</button>
  </form>
  <p class="switch-auth">Already have an account? <a href="/login">Log in</a></p>
</section>`,
  });
}

export function logInPage(csrf: string, form: FormState, next: string | undefined, notice?: string): Html {
  const v = form.values;
  return layout({
    title: 'Log in',
    viewer: null,
    nav: 'login',
    body: html`<section class="auth card">
  <h1>Log in</h1>
  ${notice ? alert('info', notice) : ''}
  ${form.message ? alert('error', form.message) : ''}
  <form method="post" action="/login" novalidate>
    <input type="hidden" name="_csrf" value="${csrf}">
    ${next ? html`<input type="hidden" name="next" value="${next}">` : ''}
    ${field({ name: 'email', label: 'Email', type: 'email', value: v.email, error: form.errors.email, autocomplete: 'username', required: true, autofocus: true })}
    ${field({ name: 'password', label: 'Password', type: 'password', error: form.errors.password, autocomplete: 'current-password', required: true })}
    <button class="btn btn-block" type="submit">Log in</button>
  </form>
  <p class="switch-auth">New here? <a href="/signup">Create an account</a></p>
</section>`,
  });
}
