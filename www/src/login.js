// The login form (slice "weblogin", docs/UI.md): a chunk auth.js loads when
// "Log in" is clicked; POST /auth/login, then the page reloads as the user.
// It imports nothing of the app (so esbuild makes no shared chunk): auth.js
// hands it html and useState.
export const makeLogin = (html, useState) =>
  function Login() {
    const [err, setErr] = useState('');
    const submit = async (e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      const r = await fetch('/auth/login', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: f.get('username'), password: f.get('password') }),
      }).catch((x) => ({ statusText: x.message }));
      if (r.ok) location.reload();
      else setErr((await r.json?.().catch(() => null))?.error || r.statusText || 'login failed');
    };
    return html`<form class="login" onSubmit=${submit}>
      <label>Username <input name="username" autocomplete="username" required /></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>
      <button type="submit" class="primary">Log in</button>
      ${err && html`<p class="error">${err}</p>`}</form>`;
  };
