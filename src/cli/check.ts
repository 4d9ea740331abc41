// `skiff check network`: the pod network across nodes as the agents see it
// (src/network/check.ts), through the API with a kubeconfig. Exits 1 when a
// node cannot reach a peer, so scripts can wait on it.

import { parseArgs } from 'node:util';
import { clientsFromKubeconfig } from '../agent/agent.ts';
import { networkCheck } from '../network/check.ts';

export const checkUsage = `Usage: skiff check network [--kubeconfig FILE] [--data-dir DIR]

Prints a table of node-to-node reachability over the pod network (what each
agent's probes of its overlay peers found, as published on its Node), then
each node's backend, public IP, MTU and NetworkUnavailable condition.
Exits 1 when some node cannot reach a peer.

Flags:
  --kubeconfig FILE   default <data-dir>/kubeconfig.yaml
  --data-dir DIR      the server's data dir (default /var/lib/skiff as root, ~/.skiff otherwise)
`;

export async function runCheck(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      kubeconfig: { type: 'string' },
      'data-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    console.log(checkUsage);
    return 0;
  }
  if (positionals[0] !== 'network') {
    console.error(`skiff check: unknown check ${JSON.stringify(positionals[0] ?? '')}\n\n${checkUsage}`);
    return 2;
  }
  const dataDir =
    values['data-dir'] ?? (process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`);
  const clients = clientsFromKubeconfig(values.kubeconfig ?? `${dataDir}/kubeconfig.yaml`);
  try {
    const nodes = await clients.nodes.list(undefined);
    const { text, healthy } = networkCheck(nodes.items);
    process.stdout.write(text);
    return healthy ? 0 : 1;
  } finally {
    clients.close();
  }
}
