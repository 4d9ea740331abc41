// Logging in: a bearer token, checked by the API itself (SelfSubjectReview).

import { useState } from 'preact/hooks';
import { ErrorBox } from '../components.ts';
import { html } from '../html.ts';
import { ThemeToggle } from '../theme.ts';

export function LoginPage(props: { error?: string; onLogin(token: string): Promise<void> }) {
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  return html`<main class="center login">
    <div class="card">
      <div class="row"><h1>Skiff dashboard</h1><span class="spacer"></span><${ThemeToggle} /></div>
      <form
        onSubmit=${async (e: Event) => {
          e.preventDefault();
          setBusy(true);
          await props.onLogin(token.trim());
          setBusy(false);
        }}
      >
        <label for="token">Bearer token</label>
        <textarea
          id="token"
          name="token"
          rows="4"
          autocomplete="off"
          spellcheck="false"
          placeholder="eyJhbGciOi…"
          value=${token}
          onInput=${(e: Event) => setToken((e.target as HTMLTextAreaElement).value)}
        ></textarea>
        <${ErrorBox} error=${props.error} />
        <button type="submit" disabled=${busy || !token.trim()}>Log in</button>
      </form>
      <p class="hint">
        A ServiceAccount's token: <code>kubectl create token NAME -n NAMESPACE</code>. You see and may do what
        its RBAC roles allow. On the server's machine, <code>skiff dashboard</code> opens the dashboard with the
        admin kubeconfig instead.
      </p>
    </div>
  </main>`;
}
