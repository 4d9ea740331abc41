// `skiff kubeconfig --user NAME [--group G]...`: a kubeconfig for a new user,
// signed by this cluster's CA, so an admin hands out a `view` or `edit` user
// in one step (bind it with `kubectl create rolebinding ... --user NAME`).

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { kubeconfigServer, kubeconfigYaml } from '../pki/kubeconfig.ts';
import { issueLeaf } from '../pki/pki.ts';

export const kubeconfigUsage = `Usage: skiff kubeconfig --user NAME [--group GROUP]... [flags]

Writes a kubeconfig for user NAME (a client certificate signed by the
cluster CA, CN=NAME, O=GROUP...). The user can do nothing until bound to a
role, for example:

  kubectl create rolebinding NAME-view --clusterrole=view --user=NAME -n default

Flags:
  --user NAME        the user name (required)
  --group GROUP      a group the user is in (repeatable)
  --data-dir DIR     the server's data dir (default /var/lib/skiff as root, ~/.skiff otherwise)
  --server URL       the API server URL (default: the admin kubeconfig's)
  -o, --output FILE  write here (mode 0600) instead of standard output
`;

export async function runKubeconfig(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      user: { type: 'string' },
      group: { type: 'string', multiple: true, default: [] },
      'data-dir': { type: 'string' },
      server: { type: 'string' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(kubeconfigUsage);
    return 0;
  }
  const user = values.user;
  if (!user || /[,/\n]/.test(user) || user.startsWith('system:')) {
    console.error('skiff kubeconfig: --user NAME is required (no commas or slashes, not system:*)');
    return 2;
  }
  const dataDir =
    values['data-dir'] ?? (process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`);
  const tls = join(dataDir, 'server', 'tls');
  const caCert = join(tls, 'ca.crt');
  const caKey = join(tls, 'ca.key');
  if (!existsSync(caCert) || !existsSync(caKey)) {
    console.error(`skiff kubeconfig: no cluster CA in ${tls}; run it on a server (or pass its --data-dir)`);
    return 1;
  }
  const server = values.server ?? kubeconfigServer(readFileSync(join(dataDir, 'kubeconfig.yaml'), 'utf8'));
  if (!server) {
    console.error('skiff kubeconfig: cannot tell the server URL; pass --server URL');
    return 2;
  }
  const ca = {
    cert: readFileSync(caCert, 'utf8'),
    key: readFileSync(caKey, 'utf8'),
    certFile: caCert,
    keyFile: caKey,
  };
  const leaf = issueLeaf(ca, { commonName: user, organizations: values.group ?? [], usage: 'client' });
  const yaml = kubeconfigYaml(server, ca.cert, leaf.cert, leaf.key, user);
  if (values.output) {
    writeFileSync(values.output, yaml, { mode: 0o600 });
    console.error(
      `wrote ${values.output} for user ${user}${values.group?.length ? ` (groups ${values.group.join(', ')})` : ''}`,
    );
  } else process.stdout.write(yaml);
  return 0;
}
