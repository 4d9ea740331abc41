// `skiff hosts`: a cluster of hosts on this machine (src/hosts/hosts.ts),
// each a network namespace with its own agent and containerd, for trying
// a multi-node cluster on one machine as kind does. scripts/up.sh --hosts N
// runs it.

import { parseArgs } from 'node:util';
import {
  openHostsCluster,
  readState,
  registeredDataDir,
  serverRunning,
  startHostsCluster,
} from '../hosts/hosts.ts';

export const hostsUsage = `Usage: skiff hosts up --data-dir DIR --hosts N [flags] [-- SERVER FLAGS]
       skiff hosts down --data-dir DIR
       skiff hosts kill --data-dir DIR NODE
       skiff hosts start --data-dir DIR NODE

up     makes 1 + N hosts, each a network namespace on the bridge skiffh<id>
       (198.18.<id>.1/24): the server with its own node ("server", on
       198.18.<id>.10) and N agents (host-1 on .11, host-2 on .12, ...), each
       with its own containerd and data dir (<data-dir>/hosts/<node>); waits
       until every node is Ready. The admin kubeconfig, <data-dir>/kubeconfig.yaml,
       reaches the API at the server's address from this machine.
down   removes the hosts: every process, container, mount and namespace, and
       the bridge. The data dir stays (up starts the cluster again from it).
kill   stops a host abruptly: its agent and containerd get SIGKILL and its link
       goes down; its containers keep running, as on a host cut off.
start  brings a killed host back: link up, its agent started again.

Flags:
  --data-dir DIR              the server's data dir (default /var/lib/skiff as root)
  --hosts N                   agent hosts besides the server's (up)
  --id I                      which 198.18.I.0/24, bridge and namespaces (default 0)
  --https-listen-port PORT    the API port (default 6443)
  --cluster-cidr CIDR         (default 10.42.0.0/16)
  --service-cidr CIDR         (default 10.43.0.0/16)
`;

export async function runHosts(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      'data-dir': { type: 'string' },
      hosts: { type: 'string' },
      id: { type: 'string', default: '0' },
      'https-listen-port': { type: 'string', default: '6443' },
      'cluster-cidr': { type: 'string' },
      'service-cidr': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const [verb, ...rest] = positionals;
  if (values.help || !verb) {
    console.log(hostsUsage);
    return values.help ? 0 : 2;
  }
  const say = (line: string) => console.error(`skiff hosts: ${line}`);
  const dataDir =
    values['data-dir'] ?? (process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`);
  try {
    switch (verb) {
      case 'up': {
        const agents = Number(values.hosts);
        const id = Number(values.id);
        if (!(Number.isInteger(agents) && agents >= 1 && agents <= 100)) {
          console.error(`skiff hosts up: --hosts must be 1 to 100, not ${values.hosts}`);
          return 2;
        }
        const owner = await registeredDataDir(id);
        if (owner !== undefined && (await serverRunning(owner))) {
          if (owner === dataDir) {
            say(`already running (${dataDir}); skiff hosts down --data-dir ${dataDir} stops it`);
            return 0;
          }
          console.error(
            `skiff hosts up: hosts id ${id} is in use by ${owner}; give another --id, or stop that one`,
          );
          return 1;
        }
        await startHostsCluster({
          id,
          dataDir,
          agents,
          httpsPort: Number(values['https-listen-port']),
          ...(values['cluster-cidr'] ? { clusterCIDR: values['cluster-cidr'] } : {}),
          ...(values['service-cidr'] ? { serviceCIDR: values['service-cidr'] } : {}),
          serverArgs: rest,
          log: say,
        });
        say(`every node is Ready; KUBECONFIG=${dataDir}/kubeconfig.yaml`);
        return 0;
      }
      case 'down':
        if (!readState(dataDir)) {
          say(`no hosts for ${dataDir}; nothing to do`);
          return 0;
        }
        await openHostsCluster(dataDir, say).stop();
        say('hosts removed');
        return 0;
      case 'kill':
      case 'start': {
        const node = rest[0];
        if (!node) {
          console.error(`skiff hosts ${verb}: which NODE?\n\n${hostsUsage}`);
          return 2;
        }
        const cluster = openHostsCluster(dataDir, say);
        await (verb === 'kill' ? cluster.killHost(node) : cluster.startHost(node));
        return 0;
      }
      default:
        console.error(`skiff hosts: unknown verb ${verb}\n\n${hostsUsage}`);
        return 2;
    }
  } catch (err) {
    console.error(`skiff hosts ${verb}: ${(err as Error).message}`);
    return 1;
  }
}
