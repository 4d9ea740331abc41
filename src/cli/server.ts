// `skiff server [flags]`: runs the control plane until SIGINT or SIGTERM.

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { NodeRegistryOptions } from '../agent/registries.ts';
import { parseGoDuration } from '../api/duration.ts';
import { type AdmissionPluginName, parseAdmissionPlugins } from '../apiserver/admission/chain.ts';
import { type AuthorizationMode, parseAuthorizationModes } from '../server/authorization.ts';
import { startServer } from '../server/server.ts';
import { createLog } from '../util/log.ts';
import { REGISTRY_FLAGS, REGISTRY_FLAGS_USAGE, RegistriesError, registryOptions } from './registry-flags.ts';

export const serverUsage = `Usage: skiff server [flags]

Runs the Kubernetes API server on an embedded store and writes an admin
kubeconfig to <data-dir>/kubeconfig.yaml.

Flags:
  --data-dir DIR              where state, certificates and kubeconfig live
                              (default /var/lib/skiff as root, ~/.skiff otherwise)
  --datastore-endpoint URL    sqlite:// (default), sqlite:///path.db,
                              etcd://host:port[,host:port...], memory://
  --bind-address IP           address to listen on (default 0.0.0.0)
  --https-listen-port PORT    API port (default 6443)
  --advertise-address IP      address written into the kubeconfig (default 127.0.0.1)
  --service-cidr CIDR         ClusterIP range (default 10.43.0.0/16)
  --cluster-cidr CIDR         pod network range (default 10.42.0.0/16)
  --default-local-storage-path DIR local-path volumes' root on the node (default <data-dir>/storage)
  --disable-agent             do not run a node agent in this process
  --node-name NAME            the server's node (default: the hostname, lower-cased)
  --node-ip IP                the server's node's InternalIP (default: the first
                              non-loopback IPv4)
  --node-monitor-grace-period DURATION  how long a node may go without a
                              heartbeat before it turns NotReady (default 40s,
                              as kube-controller-manager's flag)
  --disable-scheduler         do not run the scheduler in this process (as k3s)
  --disable-controller-manager  do not run the controllers in this process (as k3s)
  --runtime cri|hollow        the agent's container runtime: containerd (default),
                              or hollow (no containers, for tests and scale)
  --hollow-nodes N            the agent runs N hollow nodes (hollow-0 ...) instead
  --authorization-mode MODES  comma-separated, in order: Node, RBAC, AlwaysAllow
                              (default Node,RBAC as kube-apiserver's; system:masters
                              is always allowed)
  --token-auth-file FILE      static bearer tokens, upstream's CSV format:
                              token,user,uid,"group1,group2"
  --audit-policy-file FILE    an audit.k8s.io/v1 Policy; with --audit-log-path
  --audit-log-path FILE       audit events as JSON lines (- for stdout)
  --secrets-encryption        encrypt Secrets at rest with a managed aescbc key
                              (as k3s; see skiff secrets-encrypt)
  --encryption-provider-config FILE  upstream's EncryptionConfiguration instead
  --disable-admission-plugins NAMES  comma-separated default-on admission plugins
                              to turn off: LimitRanger, ServiceAccount, Priority,
                              NodeRestriction, PodSecurity, DefaultStorageClass,
                              StorageObjectInUseProtection, ResourceQuota
  --max-mutating-requests-inflight N  writes from clients that run at once; the
                              rest wait their turn in arrival order, as API
                              Priority and Fairness queues them (default 32;
                              0: no limit). Upstream's flag of this name answers
                              429 past the limit instead.
${REGISTRY_FLAGS_USAGE}
  --disable-metrics           record and serve no Prometheus metrics (/metrics);
                              for measuring what they cost
  --controller-manager-secure-port PORT  the controller manager's /metrics, HTTPS
                              on 127.0.0.1 (default 10257, as upstream; 0: off)
  --scheduler-secure-port PORT  the scheduler's /metrics, HTTPS on 127.0.0.1
                              (default 10259, as upstream; 0: off)
  --disable-metrics-server    no metrics-server: kubectl top and HPAs get no
                              resource metrics (k3s's --disable metrics-server)
  --metric-resolution D       how often metrics-server scrapes the kubelets
                              (default 15s, as upstream)
  --horizontal-pod-autoscaler-sync-period D  how often each HPA is evaluated
                              (default 15s)
  --horizontal-pod-autoscaler-downscale-stabilization D  the scale-down window
                              HPAs without behavior get (default 5m)
  --horizontal-pod-autoscaler-cpu-initialization-period D  (default 5m)
  --horizontal-pod-autoscaler-initial-readiness-delay D  (default 30s)
  --event-ttl D               how long Events are kept (default 1h, as upstream)
  --enable-pprof              serve CPU profiles and heap snapshots of this server
                              on /debug/pprof/ (cluster-admin only; see
                              skiff debug profile)
`;

export async function runServer(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      'data-dir': { type: 'string' },
      'datastore-endpoint': { type: 'string', default: 'sqlite://' },
      'bind-address': { type: 'string', default: '0.0.0.0' },
      'https-listen-port': { type: 'string', default: '6443' },
      'advertise-address': { type: 'string' },
      'service-cidr': { type: 'string', default: '10.43.0.0/16' },
      'cluster-cidr': { type: 'string', default: '10.42.0.0/16' },
      'default-local-storage-path': { type: 'string' },
      'disable-agent': { type: 'boolean', default: false },
      'node-name': { type: 'string' },
      'node-ip': { type: 'string' },
      'node-monitor-grace-period': { type: 'string' },
      'metric-resolution': { type: 'string' },
      'disable-metrics-server': { type: 'boolean', default: false },
      'enable-pprof': { type: 'boolean', default: false },
      'horizontal-pod-autoscaler-sync-period': { type: 'string' },
      'horizontal-pod-autoscaler-downscale-stabilization': { type: 'string' },
      'horizontal-pod-autoscaler-cpu-initialization-period': { type: 'string' },
      'horizontal-pod-autoscaler-initial-readiness-delay': { type: 'string' },
      'event-ttl': { type: 'string' },
      'disable-scheduler': { type: 'boolean', default: false },
      'disable-controller-manager': { type: 'boolean', default: false },
      runtime: { type: 'string', default: 'cri' },
      'hollow-nodes': { type: 'string' },
      'authorization-mode': { type: 'string', default: 'Node,RBAC' },
      'token-auth-file': { type: 'string' },
      'audit-policy-file': { type: 'string' },
      'audit-log-path': { type: 'string' },
      'secrets-encryption': { type: 'boolean', default: false },
      'encryption-provider-config': { type: 'string' },
      'disable-admission-plugins': { type: 'string', default: '' },
      'max-mutating-requests-inflight': { type: 'string', default: '32' },
      ...REGISTRY_FLAGS,
      'disable-metrics': { type: 'boolean', default: false },
      'controller-manager-secure-port': { type: 'string', default: '10257' },
      'scheduler-secure-port': { type: 'string', default: '10259' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    // --no-disable-agent undoes an earlier --disable-agent (tests that want the agent).
    allowNegative: true,
  });
  if (values.help) {
    console.log(serverUsage);
    return 0;
  }
  const port = Number(values['https-listen-port']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`skiff server: invalid --https-listen-port ${values['https-listen-port']}`);
    return 2;
  }
  const hollowNodes = values['hollow-nodes'] ? Number(values['hollow-nodes']) : undefined;
  if (hollowNodes !== undefined && !(Number.isInteger(hollowNodes) && hollowNodes > 0)) {
    console.error(`skiff server: invalid --hollow-nodes ${values['hollow-nodes']}`);
    return 2;
  }
  const agentRuntime = hollowNodes ? 'hollow' : values.runtime;
  if (agentRuntime !== 'cri' && agentRuntime !== 'hollow') {
    console.error(`skiff server: --runtime must be cri or hollow, not ${values.runtime}`);
    return 2;
  }
  let authorizationModes: AuthorizationMode[];
  try {
    authorizationModes = parseAuthorizationModes(values['authorization-mode']!);
  } catch (err) {
    console.error(`skiff server: ${(err as Error).message}`);
    return 2;
  }
  const maxMutatingInflight = Number(values['max-mutating-requests-inflight']);
  if (!Number.isInteger(maxMutatingInflight) || maxMutatingInflight < 0) {
    console.error(
      `skiff server: --max-mutating-requests-inflight must be a whole number, 0 or more, not ${JSON.stringify(values['max-mutating-requests-inflight'])}`,
    );
    return 2;
  }
  const componentPorts: Record<string, number> = {};
  for (const flag of ['controller-manager-secure-port', 'scheduler-secure-port'] as const) {
    const value = Number(values[flag]);
    if (!Number.isInteger(value) || value < 0 || value > 65535) {
      console.error(`skiff server: invalid --${flag} ${values[flag]}`);
      return 2;
    }
    componentPorts[flag] = value;
  }
  let disableAdmissionPlugins: AdmissionPluginName[];
  try {
    disableAdmissionPlugins = parseAdmissionPlugins(values['disable-admission-plugins']!);
  } catch (err) {
    console.error(`skiff server: ${(err as Error).message}`);
    return 2;
  }
  // The registries are the in-process node's: a server without one reads none.
  let registry: NodeRegistryOptions = {};
  try {
    if (!values['disable-agent']) registry = registryOptions(values);
  } catch (err) {
    if (!(err instanceof RegistriesError)) throw err;
    console.error(`skiff server: ${err.message}`);
    return 2;
  }
  // Duration flags (Go's syntax: 40s, 1m30s, 1h), each with an example for its error.
  const durations: Record<string, number> = {};
  for (const [flag, example] of [
    ['node-monitor-grace-period', '40s'],
    ['metric-resolution', '15s'],
    ['horizontal-pod-autoscaler-sync-period', '15s'],
    ['horizontal-pod-autoscaler-downscale-stabilization', '5m'],
    ['horizontal-pod-autoscaler-cpu-initialization-period', '5m'],
    ['horizontal-pod-autoscaler-initial-readiness-delay', '30s'],
    ['event-ttl', '1h'],
  ] as const) {
    const text = values[flag];
    if (text === undefined) continue;
    const parsed = parseGoDuration(text);
    // The stabilization window may be 0 (no window); the rest must be positive.
    const min = flag === 'horizontal-pod-autoscaler-downscale-stabilization' ? 0 : 1;
    if ('error' in parsed || parsed.ms < min) {
      console.error(
        `skiff server: --${flag} must be a duration such as ${example}, not ${JSON.stringify(text)}`,
      );
      return 2;
    }
    durations[flag] = parsed.ms;
  }
  const nodeMonitorGracePeriodMs = durations['node-monitor-grace-period'];
  const dataDir =
    values['data-dir'] ?? (process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`);
  const log = createLog({ component: 'server' });
  // One request's stray promise must not take the whole control plane down
  // (upstream recovers panics per request); log it loudly and keep serving.
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled rejection', { error: String(reason), stack: (reason as Error | undefined)?.stack });
  });
  const server = await startServer(
    {
      dataDir,
      datastoreEndpoint: values['datastore-endpoint']!,
      bindAddress: values['bind-address']!,
      httpsPort: port,
      serviceCIDR: values['service-cidr']!,
      clusterCIDR: values['cluster-cidr']!,
      ...(values['default-local-storage-path']
        ? { defaultLocalStoragePath: values['default-local-storage-path'] }
        : {}),
      disableAgent: values['disable-agent']!,
      scheduler: !values['disable-scheduler'],
      controllers: !values['disable-controller-manager'],
      agentRuntime,
      authorizationModes,
      ...(values['token-auth-file'] ? { tokenAuthFile: values['token-auth-file'] } : {}),
      ...(values['audit-policy-file'] ? { auditPolicyFile: values['audit-policy-file'] } : {}),
      ...(values['audit-log-path'] ? { auditLogPath: values['audit-log-path'] } : {}),
      ...(values['secrets-encryption'] ? { secretsEncryption: true } : {}),
      ...(values['encryption-provider-config']
        ? { encryptionProviderConfig: values['encryption-provider-config'] }
        : {}),
      disableAdmissionPlugins,
      maxMutatingInflight,
      registry,
      ...(values['disable-metrics'] ? { disableMetrics: true } : {}),
      controllerManagerSecurePort: componentPorts['controller-manager-secure-port']!,
      schedulerSecurePort: componentPorts['scheduler-secure-port']!,
      ...(hollowNodes ? { hollowNodes } : {}),
      ...(values['advertise-address'] ? { advertiseAddress: values['advertise-address'] } : {}),
      ...(values['node-name'] ? { nodeName: values['node-name'] } : {}),
      ...(values['node-ip'] ? { nodeIP: values['node-ip'] } : {}),
      ...(nodeMonitorGracePeriodMs !== undefined ? { nodeMonitorGracePeriodMs } : {}),
      ...(values['disable-metrics-server'] ? { disableMetricsServer: true } : {}),
      ...(values['enable-pprof'] ? { enablePprof: true } : {}),
      ...(durations['metric-resolution'] !== undefined
        ? { metricResolutionMs: durations['metric-resolution'] }
        : {}),
      ...(durations['event-ttl'] !== undefined ? { eventTTLMs: durations['event-ttl'] } : {}),
      hpa: {
        ...(durations['horizontal-pod-autoscaler-sync-period'] !== undefined
          ? { syncPeriodMs: durations['horizontal-pod-autoscaler-sync-period'] }
          : {}),
        ...(durations['horizontal-pod-autoscaler-downscale-stabilization'] !== undefined
          ? { downscaleStabilizationMs: durations['horizontal-pod-autoscaler-downscale-stabilization'] }
          : {}),
        ...(durations['horizontal-pod-autoscaler-cpu-initialization-period'] !== undefined
          ? { cpuInitializationPeriodMs: durations['horizontal-pod-autoscaler-cpu-initialization-period'] }
          : {}),
        ...(durations['horizontal-pod-autoscaler-initial-readiness-delay'] !== undefined
          ? { initialReadinessDelayMs: durations['horizontal-pod-autoscaler-initial-readiness-delay'] }
          : {}),
      },
    },
    log,
  );
  console.error(
    `\nSkiff is running. Point kubectl at it:\n\n  export KUBECONFIG=${server.kubeconfig}\n  kubectl get namespaces\n` +
      `\nJoin another machine as a node:\n\n  skiff agent --server ${server.url} --token $(cat ${join(dataDir, 'node-token')})\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log('shutting down', { signal });
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await server.stop();
  return 0;
}
