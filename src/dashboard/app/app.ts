// The app shell: login, then the layout (header, navigation) around the
// page the URL names.

import { useCallback, useEffect, useState } from 'preact/hooks';
import { clearAccessCache } from './access.ts';
import { ApiError, describeError, request, session } from './api.ts';
import { ErrorBox, Modal } from './components.ts';
import { groupSegment, type Session, SessionContext, useSession } from './context.ts';
import { discover } from './discovery.ts';
import { html } from './html.ts';
import { GO_TO, LIST_KEYS, useGlobalKeys } from './keys.ts';
import { CreatePage } from './pages/create.ts';
import { DetailPage } from './pages/detail.ts';
import { EventsPage } from './pages/events.ts';
import { ExecPage } from './pages/exec.ts';
import { ListPage } from './pages/list.ts';
import { LoginPage } from './pages/login.ts';
import { LogsPage } from './pages/logs.ts';
import { MapPage } from './pages/map.ts';
import { OverviewPage } from './pages/overview.ts';
import { href, type Route, useRoute } from './router.ts';
import { ThemeToggle } from './theme.ts';

/** Who the credentials are, by SelfSubjectReview (kubectl auth whoami). */
export async function whoami(token?: string): Promise<string> {
  const review = await request('/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    method: 'POST',
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    ...(token ? { token } : {}),
  });
  return review.status?.userInfo?.username ?? 'unknown';
}

type LoginState =
  | { phase: 'checking' }
  | { phase: 'login'; error?: string }
  | { phase: 'in'; session: Session };

export function App() {
  const [state, setState] = useState<LoginState>({ phase: 'checking' });
  const logout = useCallback(() => {
    session.token = undefined;
    clearAccessCache();
    setState({ phase: 'login' });
  }, []);
  const enter = useCallback(
    async (local: boolean) => {
      const [username, types] = await Promise.all([whoami(), discover()]);
      setState({ phase: 'in', session: { username, types, local, logout } });
    },
    [logout],
  );
  useEffect(() => {
    // Local mode (skiff dashboard) answers without a token; the server's
    // own /dashboard/ needs one (anonymous requests get 401).
    const hadToken = Boolean(session.token);
    enter(!hadToken).catch((err) => {
      if (hadToken) session.token = undefined;
      const expired = hadToken && err instanceof ApiError && err.code === 401;
      setState({
        phase: 'login',
        ...(expired ? { error: 'Your token is no longer valid: log in again.' } : {}),
      });
    });
  }, [enter]);

  if (state.phase === 'checking') return html`<main class="center"><p>Connecting…</p></main>`;
  if (state.phase === 'login')
    return html`<${LoginPage}
      error=${state.error}
      onLogin=${async (token: string) => {
        try {
          await whoami(token);
          session.token = token;
          clearAccessCache();
          await enter(false);
        } catch (err) {
          session.token = undefined;
          setState({ phase: 'login', error: describeError(err) });
        }
      }}
    />`;
  return html`<${SessionContext.Provider} value=${state.session}><${Layout} /><//>`;
}

/** The kinds shown first in the navigation, as kubectl's most used. */
const PINNED = [
  ['', 'pods'],
  ['apps', 'deployments'],
  ['apps', 'statefulsets'],
  ['apps', 'daemonsets'],
  ['apps', 'replicasets'],
  ['', 'replicationcontrollers'],
  ['batch', 'jobs'],
  ['batch', 'cronjobs'],
  ['', 'services'],
  ['networking.k8s.io', 'ingresses'],
  ['', 'configmaps'],
  ['', 'secrets'],
  ['', 'persistentvolumeclaims'],
  ['', 'nodes'],
  ['', 'namespaces'],
] as const;

function Layout() {
  const s = useSession();
  const route = useRoute();
  const [help, setHelp] = useState(false);
  useGlobalKeys(() => setHelp(true));
  const pinned = PINNED.map(([g, r]) => s.types.find((t) => t.group === g && t.resource === r)).filter(
    (t) => t !== undefined,
  );
  const others = s.types.filter((t) => !pinned.includes(t));
  const ns = route.query.get('ns') ?? undefined;
  const current =
    route.parts[0] === 'r' ? `${route.parts[1]}/${route.parts[2]}` : route.parts[0] || 'overview';
  const link = (to: string, label: string, key: string) =>
    html`<li><a href=${to} aria-current=${current === key ? 'page' : undefined}>${label}</a></li>`;
  return html`<div class="layout">
    <header class="topbar">
      <a class="brand" href="#/">Skiff</a>
      <span class="spacer"></span>
      <span class="user" title="Logged in as">${s.username}${s.local ? ' (local)' : ''}</span>
      <${ThemeToggle} />
      ${s.local ? null : html`<button type="button" class="ghost" onClick=${s.logout}>Log out</button>`}
    </header>
    <nav class="sidebar" aria-label="Pages">
      <ul>
        ${link('#/', 'Overview', 'overview')} ${link('#/map', 'Live map', 'map')}
        ${link('#/events', 'Events', 'events')} ${link('#/create', 'Create from YAML', 'create')}
      </ul>
      <h2>Resources</h2>
      <ul>
        ${pinned.map((t) =>
          link(
            href(['r', groupSegment(t.group), t.resource], { ns: t.namespaced ? ns : undefined }),
            t.kind,
            `${groupSegment(t.group)}/${t.resource}`,
          ),
        )}
      </ul>
      <details>
        <summary>All kinds (${others.length})</summary>
        <ul>
          ${others.map((t) =>
            link(
              href(['r', groupSegment(t.group), t.resource], { ns: t.namespaced ? ns : undefined }),
              t.group ? `${t.kind} (${t.group})` : t.kind,
              `${groupSegment(t.group)}/${t.resource}`,
            ),
          )}
        </ul>
      </details>
    </nav>
    <main class="content">${page(route)}</main>
    ${help ? html`<${KeysHelp} onClose=${() => setHelp(false)} />` : null}
  </div>`;
}

/** The keyboard shortcuts, in a dialog ("?" opens it, Escape closes it). */
function KeysHelp({ onClose }: { onClose(): void }) {
  return html`<${Modal} label="Keyboard shortcuts" class="keys" onClose=${onClose}>
    <h2>Keyboard shortcuts</h2>
    <dl>
      ${Object.entries(GO_TO).map(([k, g]) => html`<dt><kbd>g</kbd> <kbd>${k}</kbd></dt><dd>${g.label}</dd>`)}
      ${LIST_KEYS.map(([k, what]) => html`<dt><kbd>${k}</kbd></dt><dd>${what}</dd>`)}
    </dl>
    <div class="buttons"><button type="button" onClick=${onClose}>Close</button></div>
  <//>`;
}

function page(route: Route) {
  const [head, ...rest] = route.parts;
  switch (head) {
    case undefined:
    case 'overview':
      return html`<${OverviewPage} />`;
    case 'map':
      return html`<${MapPage} namespace=${route.query.get('ns') ?? ''} />`;
    case 'events':
      return html`<${EventsPage} namespace=${route.query.get('ns') ?? ''} />`;
    case 'create':
      return html`<${CreatePage} namespace=${route.query.get('ns') ?? 'default'} />`;
    case 'logs':
      return html`<${LogsPage} namespace=${rest[0]} name=${rest[1]} container=${route.query.get('c') ?? ''} />`;
    case 'exec':
      return html`<${ExecPage} namespace=${rest[0]} name=${rest[1]} container=${route.query.get('c') ?? ''} />`;
    case 'r':
      if (rest.length >= 4)
        return html`<${DetailPage}
          group=${rest[0]}
          resource=${rest[1]}
          namespace=${rest[2] === '_' ? '' : rest[2]}
          name=${rest[3]}
        />`;
      return html`<${ListPage} group=${rest[0]} resource=${rest[1]} query=${route.query} />`;
    default:
      return html`<${ErrorBox} error=${`No page ${location.hash}`} />`;
  }
}
