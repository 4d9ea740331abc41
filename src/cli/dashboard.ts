// `skiff dashboard`: the web UI on 127.0.0.1 with this machine's admin
// kubeconfig, as `kubectl proxy` plus the UI (dashboard/local.ts).

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalDashboard } from '../dashboard/local.ts';
import { defaultDataDir } from './kubectl.ts';

export const dashboardUsage = `Usage: skiff dashboard [flags]

Serves the dashboard on http://127.0.0.1:PORT/dashboard/, logged in with the
admin kubeconfig that \`skiff server\` wrote (or --kubeconfig). Only this
machine can reach it. Other users open https://SERVER:6443/dashboard/ and log
in with a bearer token (kubectl create token SERVICEACCOUNT).

Flags:
  --port PORT          the loopback port (default 9090; 0 for any free one)
  --kubeconfig FILE    the credentials to use (default <data-dir>/kubeconfig.yaml)
  --data-dir DIR       the server's data dir (default /var/lib/skiff as root, ~/.skiff otherwise)
`;

export async function runDashboard(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      port: { type: 'string', default: '9090' },
      kubeconfig: { type: 'string' },
      'data-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(dashboardUsage);
    return 0;
  }
  const kubeconfig = values.kubeconfig ?? join(values['data-dir'] ?? defaultDataDir(), 'kubeconfig.yaml');
  const dashboard = await startLocalDashboard({ kubeconfig, port: Number(values.port) });
  console.log(`skiff dashboard: ${dashboard.url} (as ${kubeconfig}; Ctrl-C stops it)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await dashboard.stop();
  return 0;
}
