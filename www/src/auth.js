// Web login in the header (slice "weblogin", docs/UI.md): GET /auth/me once;
// "Log in" loads the form (login.js, a chunk); every POST carries the
// session's X-Kiln-CSRF; app.css hides the buttons of the roles the user
// lacks (body.no-force, .no-stop, .no-cancel, .no-admin).
import { useEffect, useState } from 'preact/hooks';
import { html } from './util.js';

let csrf;
const f0 = window.fetch;
window.fetch = (u, o) =>
  f0(u, csrf && o?.method == 'POST' ? { ...o, headers: { ...o.headers, 'X-Kiln-CSRF': csrf } } : o);

export function Auth() {
  const [me, setMe] = useState();
  const [Form, setForm] = useState();
  useEffect(() => {
    f0('/auth/me')
      .then((r) => r.json())
      .then((d) => {
        csrf = d.csrf;
        const c = d.can, b = document.body.classList;
        for (const k of ['force', 'stop', 'cancel']) b.toggle('no-' + k, !c[k].length);
        b.toggle('no-admin', !c.admin);
        setMe(d);
      }, () => {});
  }, []);
  if (!me) return null;
  if (me.user)
    return html`<button type="button" class="auth"
      onClick=${() => fetch('/auth/logout', { method: 'POST' }).then(() => location.reload())}>Log out ${me.user.username}</button>`;
  return html`<button type="button" class="auth"
    onClick=${() => import('./login.js').then((m) => setForm(() => m.makeLogin(html, useState)))}>Log in</button>${Form && html`<${Form} />`}`;
}
