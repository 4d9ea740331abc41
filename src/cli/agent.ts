// `skiff agent [flags]`: runs a node agent (the kubelet, cluster DNS, the
// service proxy, and later the network) that joins a cluster, until SIGINT
// or SIGTERM. `skiff agent --cleanup` removes its network state.

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { clientsFromKubeconfig, type RuntimeKind, readKubeconfig, startAgent } from '../agent/agent.ts';
import { startCertificateRenewal } from '../agent/cert-renewal.ts';
import { type AgentCredentials, JoinError, joinCluster } from '../agent/join.ts';
import { hostPort, type LoadBalancer, startLoadBalancer } from '../agent/loadbalancer.ts';
import type { NodeRegistryOptions } from '../agent/registries.ts';
import { type KubeletConfig, KubeletConfigError, parseKubeletArgs } from '../kubelet/config.ts';
import { defaultNodeName } from '../kubelet/node-status.ts';
import { FLANNEL_BACKENDS, type FlannelBackend } from '../network/node.ts';
import { AGENT_BOOTSTRAP_USER } from '../server/node-token.ts';
import { createLog, type Log } from '../util/log.ts';
import { FLANNEL_FLAGS, FLANNEL_FLAGS_USAGE, flannelOptions } from './flannel-flags.ts';
import {
  INGRESS_FLAGS,
  INGRESS_FLAGS_USAGE,
  type IngressFlagValues,
  ingressOptions,
} from './ingress-flags.ts';
import { REGISTRY_FLAGS, REGISTRY_FLAGS_USAGE, RegistriesError, registryOptions } from './registry-flags.ts';

/** How long `skiff agent` waits for a server it cannot reach before giving up. */
const JOIN_WAIT_MS = 120_000;

export const agentUsage = `Usage: skiff agent --server URL --token TOKEN [flags]
       skiff agent --kubeconfig FILE [flags]

Joins this machine to a cluster as a node: registers the Node, keeps its
Lease, and runs the pods the scheduler binds to it.

Joining with a token: \`skiff server\` writes the cluster's join token to
<server-data-dir>/node-token. Its format is k3s's:

  K10<sha256 of the cluster CA certificate>::node:<secret>

The agent fetches the CA from <server>/cacerts, refuses to go on unless its
sha256 is the token's (another cluster, or someone in between, never sees
the secret), then proves the secret to the server over TLS verified against
that CA and gets a client certificate for system:node:<node-name> in group
system:nodes, which it keeps, with the CA, in <data-dir>/agent/kubelet.kubeconfig.
The node's service proxy and cluster DNS get their own certificates the same
way (system:kube-proxy in kube-proxy.kubeconfig, system:skiff-dns in
dns.kubeconfig), so each talks to the API with only what it needs. With
--hollow-nodes, every hollow node in the process shares one credential,
system:skiff-hollow-fleet, as kubemark's hollow nodes do.

The token does not buy any node name: the agent also sends a password of its
own (<data-dir>/agent/node-password, made once), and the server keeps a hash
of it in the Secret kube-system/<node-name>.node-password.skiff from the name's
first join on; another password for that name is refused. Deleting the Node
deletes the Secret (as k3s): to rejoin a reinstalled machine under its old
name, delete its Node first.

Joining with a kubeconfig: <server-data-dir>/agent-kubeconfig.yaml holds a
bootstrap certificate (user system:skiff-agent); copy it to the node and
pass it with --kubeconfig. It buys the same credentials as the token does
and may do nothing else. Any other kubeconfig is used as it is, by the
kubelet, the proxy and the DNS alike.

Flags:
  --server URL                      the API server, https://HOST:6443 (default: the kubeconfig's)
  --token TOKEN                     the join token (or the SKIFF_TOKEN environment variable)
  --token-file FILE                 read the join token from FILE
  --kubeconfig FILE                 credentials (a client certificate and the CA) instead of a token
  --data-dir DIR                    the agent's state (default /var/lib/skiff as root, ~/.skiff otherwise)
  --node-name NAME                  the Node's name (default: the hostname, lower-cased)
  --node-ip IP                      the Node's InternalIP (default: the first non-loopback IPv4)
  --node-label KEY=VALUE            an extra Node label (repeatable)
  --kubelet-arg KEY=VALUE           an upstream kubelet flag, as k3s's (repeatable; e.g.
                                    cgroup-root=/skiff, kube-reserved=cpu=100m,memory=256Mi,
                                    eviction-hard=memory.available<200Mi; see docs/node-resources.md)
  --runtime cri|hollow              containers through containerd (default), or none at all
  --container-runtime-endpoint URL  use this containerd instead of starting one (cri)
  --hollow-nodes N                  run N hollow nodes (hollow-0 ...) in this process
  --cluster-cidr CIDR               the cluster's pod range (default 10.42.0.0/16)
  --default-local-storage-path DIR         local-path volumes' root on the node (default <data-dir>/storage)
  --service-cidr CIDR               the cluster's Service range (default 10.43.0.0/16)
  --proxy-mode nftables|iptables    the service proxy's backend (default nftables)
${REGISTRY_FLAGS_USAGE}
${INGRESS_FLAGS_USAGE}
${FLANNEL_FLAGS_USAGE}
  --disable-apiserver-lb            talk to --server only, without the client-side load balancer
                                    that fails over to every server in the kubernetes endpoints
  --lb-server-port PORT             the load balancer's port on 127.0.0.1 (default: any free one;
                                    k3s uses 6444)

       skiff agent --cleanup [--data-dir DIR] [--cluster-cidr CIDR] [--service-cidr CIDR]

Removes what a Skiff node added to this machine's network (the proxy's
nftables table or iptables chains, routes, pod bridges, CNI config and
state, the cluster DNS address) and exits. Stop the agent first.
`;

export async function runAgent(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      server: { type: 'string' },
      kubeconfig: { type: 'string' },
      token: { type: 'string' },
      'token-file': { type: 'string' },
      'data-dir': { type: 'string' },
      'node-name': { type: 'string' },
      'node-ip': { type: 'string' },
      'node-label': { type: 'string', multiple: true },
      'kubelet-arg': { type: 'string', multiple: true },
      runtime: { type: 'string', default: 'cri' },
      'container-runtime-endpoint': { type: 'string' },
      'hollow-nodes': { type: 'string' },
      'cluster-cidr': { type: 'string', default: '10.42.0.0/16' },
      'default-local-storage-path': { type: 'string' },
      'service-cidr': { type: 'string', default: '10.43.0.0/16' },
      'proxy-mode': { type: 'string', default: 'nftables' },
      ...REGISTRY_FLAGS,
      ...FLANNEL_FLAGS,
      ...INGRESS_FLAGS,
      'disable-apiserver-lb': { type: 'boolean', default: false },
      'lb-server-port': { type: 'string', default: '0' },
      cleanup: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(agentUsage);
    return 0;
  }
  if (values.cleanup) {
    const { cleanupNode } = await import('../proxy/node.ts');
    await cleanupNode({
      dataDir:
        values['data-dir'] ??
        (process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`),
      clusterCIDR: values['cluster-cidr']!,
      serviceCIDR: values['service-cidr']!,
      log: createLog({ component: 'agent' }),
    });
    return 0;
  }
  let registry: NodeRegistryOptions;
  try {
    registry = registryOptions(values);
  } catch (err) {
    if (!(err instanceof RegistriesError)) throw err;
    console.error(`skiff agent: ${err.message}`);
    return 2;
  }
  let ingressFlags: IngressFlagValues;
  try {
    ingressFlags = ingressOptions(values);
  } catch (err) {
    console.error(`skiff agent: ${(err as Error).message}`);
    return 2;
  }
  const proxyMode = values['proxy-mode'];
  if (proxyMode !== 'nftables' && proxyMode !== 'iptables') {
    console.error(`skiff agent: --proxy-mode must be nftables or iptables, not ${proxyMode}`);
    return 2;
  }
  const flannel = flannelOptions(values);
  if ('error' in flannel) {
    console.error(`skiff agent: ${flannel.error}`);
    return 2;
  }
  const token =
    values.token ??
    (values['token-file']
      ? readFileSync(values['token-file'], 'utf8').trim()
      : values.kubeconfig
        ? undefined
        : process.env.SKIFF_TOKEN);
  if (token && values.kubeconfig) {
    console.error('skiff agent: give either --token or --kubeconfig, not both');
    return 2;
  }
  if (token && !values.server) {
    console.error(
      `skiff agent: --token needs --server URL (the API server, https://HOST:6443)\n\n${agentUsage}`,
    );
    return 2;
  }
  if (!token && !values.kubeconfig) {
    console.error(
      `skiff agent: --server URL --token TOKEN (or --kubeconfig FILE) is required\n\n${agentUsage}`,
    );
    return 2;
  }
  const hollowNodes = values['hollow-nodes'] ? Number(values['hollow-nodes']) : undefined;
  const runtime = (hollowNodes ? 'hollow' : values.runtime) as RuntimeKind;
  if (runtime !== 'cri' && runtime !== 'hollow') {
    console.error(`skiff agent: --runtime must be cri or hollow, not ${values.runtime}`);
    return 2;
  }
  if (hollowNodes !== undefined && !(Number.isInteger(hollowNodes) && hollowNodes > 0)) {
    console.error(`skiff agent: invalid --hollow-nodes ${values['hollow-nodes']}`);
    return 2;
  }
  const nodeLabels: Record<string, string> = {};
  for (const l of values['node-label'] ?? []) {
    const i = l.indexOf('=');
    nodeLabels[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  let kubeletConfig: KubeletConfig;
  try {
    kubeletConfig = parseKubeletArgs(values['kubelet-arg'] ?? []);
  } catch (err) {
    if (!(err instanceof KubeletConfigError)) throw err;
    console.error(`skiff agent: ${err.message}`);
    return 2;
  }
  const dataDir =
    values['data-dir'] ?? (process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`);
  const log = createLog({ component: 'agent' });
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled rejection', { error: String(reason), stack: (reason as Error | undefined)?.stack });
  });
  let credentials: AgentCredentials;
  // A server that cannot be reached yet (still starting, or across a network
  // that is coming back) is waited for, as k3s's agent waits: with backoff,
  // up to JOIN_WAIT_MS. Every other refusal (a wrong token, a CA that does
  // not match) ends the command at once.
  const giveUp = Date.now() + JOIN_WAIT_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      credentials = await agentCredentials(values, token, hollowNodes !== undefined, dataDir, log);
      break;
    } catch (err) {
      if (!(err instanceof JoinError)) throw err;
      if (!err.unreachable || Date.now() >= giveUp) {
        console.error(`skiff agent: cannot join ${values.server ?? 'the cluster'}: ${err.message}`);
        return 1;
      }
      const waitMs = Math.min(10_000, 500 * 2 ** Math.min(attempt - 1, 5));
      log.warn('waiting for the server', { server: values.server, error: err.message, retryInMs: waitMs });
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
  // Every component talks through the load balancer (agent/loadbalancer.ts),
  // which fails over to any live server; --server is only where it starts.
  let lb: LoadBalancer | undefined;
  if (!values['disable-apiserver-lb']) {
    const lbPort = Number(values['lb-server-port']);
    if (!Number.isInteger(lbPort) || lbPort < 0 || lbPort > 65535) {
      console.error(`skiff agent: invalid --lb-server-port ${values['lb-server-port']}`);
      return 2;
    }
    lb = await startLoadBalancer({
      defaultServer: hostPort(values.server ?? readKubeconfig(credentials.kubelet).server),
      listenPort: lbPort,
      log,
    });
  }
  const server = lb?.url ?? values.server;
  const clients = clientsFromKubeconfig(credentials.kubelet, server);
  lb?.watchEndpoints(clients);
  const proxyClients = credentials.proxy ? clientsFromKubeconfig(credentials.proxy, server) : undefined;
  const dnsClients = credentials.dns ? clientsFromKubeconfig(credentials.dns, server) : undefined;
  const networkPolicyClients = credentials.networkPolicy
    ? clientsFromKubeconfig(credentials.networkPolicy, server)
    : undefined;
  const ingressClients = credentials.ingress ? clientsFromKubeconfig(credentials.ingress, server) : undefined;
  // The server's, unless this node was given its own (as k3s's agents take the server's).
  const served = credentials.config?.flannelBackend;
  if (
    !flannel.flannelBackend &&
    served !== undefined &&
    !FLANNEL_BACKENDS.includes(served as FlannelBackend)
  ) {
    console.error(
      `skiff agent: the server's --flannel-backend ${served} is not one this agent knows (upgrade it)`,
    );
    return 1;
  }
  const flannelBackend = flannel.flannelBackend ?? (served as FlannelBackend | undefined) ?? 'vxlan';
  const agent = await startAgent({
    clients,
    ...(proxyClients ? { proxyClients } : {}),
    ...(dnsClients ? { dnsClients } : {}),
    ...(networkPolicyClients ? { networkPolicyClients } : {}),
    ...(ingressClients ? { ingressClients } : {}),
    ...ingressFlags,
    // The server's --disable ingress holds for every node, as k3s's.
    ...(credentials.config?.disableIngress ? { disableIngress: true } : {}),
    dataDir,
    runtime,
    ...(values['node-name'] ? { nodeName: values['node-name'] } : {}),
    ...(values['node-ip'] ? { nodeIP: values['node-ip'] } : {}),
    ...(Object.keys(nodeLabels).length ? { nodeLabels } : {}),
    kubeletConfig,
    ...(values['container-runtime-endpoint']
      ? { containerRuntimeEndpoint: values['container-runtime-endpoint'] }
      : {}),
    ...(hollowNodes ? { hollowNodes } : {}),
    ...(clients.clusterCA ? { clusterCA: clients.clusterCA } : {}),
    clusterCIDR: values['cluster-cidr']!,
    serviceCIDR: values['service-cidr']!,
    ...(values['default-local-storage-path']
      ? { defaultLocalStoragePath: values['default-local-storage-path'] }
      : {}),
    proxyMode,
    registry,
    ...flannel,
    flannelBackend,
    log,
  });
  // Certificates bought with the token (or the bootstrap kubeconfig) are
  // bought again before they expire, through the load balancer (cert-renewal.ts).
  const renewal =
    credentials.kubelet !== values.kubeconfig
      ? startCertificateRenewal({
          current: () => readKubeconfig(credentials.kubelet).cert,
          renew: async () => {
            const fresh = await agentCredentials(
              { ...values, server },
              token,
              hollowNodes !== undefined,
              dataDir,
              log,
            );
            const pairs = [
              [clients, fresh.kubelet],
              [proxyClients, fresh.proxy],
              [dnsClients, fresh.dns],
              [networkPolicyClients, fresh.networkPolicy],
              [ingressClients, fresh.ingress],
            ] as const;
            for (const [c, path] of pairs) if (c && path) c.reloadCertificate(path);
          },
          log,
        })
      : undefined;
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log('shutting down');
  renewal?.stop();
  await agent.stop();
  for (const c of [clients, proxyClients, dnsClients, networkPolicyClients, ingressClients]) c?.close();
  await lb?.close();
  return 0;
}

/**
 * The kubeconfigs the agent's components use. A token, or the server's
 * bootstrap kubeconfig (agent-kubeconfig.yaml, user system:skiff-agent),
 * buys the node its own credentials (join.ts); any other kubeconfig is used
 * as it is, by every component.
 */
async function agentCredentials(
  values: { server?: string | undefined; kubeconfig?: string | undefined; 'node-name'?: string | undefined },
  token: string | undefined,
  hollowFleet: boolean,
  dataDir: string,
  log: Log,
): Promise<AgentCredentials> {
  const join = { nodeName: values['node-name'] ?? defaultNodeName(), dataDir, hollowFleet, log };
  if (token) return joinCluster({ server: values.server!, token, ...join });
  const path = values.kubeconfig!;
  const kc = readKubeconfig(path, values.server);
  const commonName = kc.cert ? /^CN=(.*)$/m.exec(new X509Certificate(kc.cert).subject)?.[1] : undefined;
  if (commonName !== AGENT_BOOTSTRAP_USER || !kc.ca || !kc.key) return { kubelet: path };
  return joinCluster({
    server: kc.server,
    bootstrap: {
      caPem: kc.ca.toString('utf8'),
      cert: kc.cert!.toString('utf8'),
      key: kc.key.toString('utf8'),
    },
    ...join,
  });
}
