// `skiff server [flags]`: runs the control plane until SIGINT or SIGTERM.

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { NodeRegistryOptions } from '../agent/registries.ts';
import { parseGoDuration } from '../api/duration.ts';
import { parseCronSchedule } from '../api/resources/cron.ts';
import { type AdmissionPluginName, parseAdmissionPlugins } from '../apiserver/admission/chain.ts';
import {
  defaultLeaderElectionTimings,
  type LeaderElectionTimings,
  validateLeaderElectionTimings,
} from '../client/leaderelection.ts';
import { type KubeletConfig, KubeletConfigError, parseKubeletArgs } from '../kubelet/config.ts';
import { defaultNodeName } from '../kubelet/node-status.ts';
import { ensureCA } from '../pki/pki.ts';
import { type AuthorizationMode, parseAuthorizationModes } from '../server/authorization.ts';
import {
  etcdDataDir,
  hasEtcdMember,
  memberAdvertiseIP,
  restoreEtcdSnapshot,
  startEmbeddedEtcd,
} from '../server/embedded-etcd.ts';
import { startServer } from '../server/server.ts';
import {
  type Datastore,
  DEFAULT_SNAPSHOT_CRON,
  DEFAULT_SNAPSHOT_RETENTION,
  datastoreOf,
  defaultSnapshotDir,
  restoreSqliteSnapshot,
} from '../server/snapshots.ts';
import { createLog } from '../util/log.ts';
import { FLANNEL_FLAGS, FLANNEL_FLAGS_USAGE, flannelOptions } from './flannel-flags.ts';
import {
  INGRESS_FLAGS,
  INGRESS_FLAGS_USAGE,
  type IngressFlagValues,
  ingressOptions,
} from './ingress-flags.ts';
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
  --kubelet-arg KEY=VALUE     an upstream kubelet flag for the server's node, as
                              k3s's (repeatable; see docs/node-resources.md)
  --node-monitor-grace-period DURATION  how long a node may go without a
                              heartbeat before it turns NotReady (default 40s,
                              as kube-controller-manager's flag)
  --default-not-ready-toleration-seconds N, --default-unreachable-toleration-seconds N
                              how long a pod with no toleration of its own stays
                              on a node that is not ready, or unreachable, before
                              it is evicted (default 300, as kube-apiserver's)
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
                              DefaultTolerationSeconds, NodeRestriction, PodSecurity, DefaultStorageClass,
                              StorageObjectInUseProtection, DefaultIngressClass, ResourceQuota
  --max-mutating-requests-inflight N  writes from clients that run at once; the
                              rest wait their turn in arrival order, as API
                              Priority and Fairness queues them (default 32;
                              0: no limit). Upstream's flag of this name answers
                              429 past the limit instead.
${REGISTRY_FLAGS_USAGE}
${INGRESS_FLAGS_USAGE}
${FLANNEL_FLAGS_USAGE}
  --disable-metrics           record and serve no Prometheus metrics (/metrics);
                              for measuring what they cost
  --controller-manager-secure-port PORT  the controller manager's /metrics, HTTPS
                              on 127.0.0.1 (default 10257, as upstream; 0: off)
  --scheduler-secure-port PORT  the scheduler's /metrics, HTTPS on 127.0.0.1
                              (default 10259, as upstream; 0: off)
  --disable-metrics-server    no metrics-server: kubectl top and HPAs get no
                              resource metrics (also --disable metrics-server, as k3s)
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

High availability (several servers on one etcd; docs/ha.md):
  --token TOKEN               the cluster's shared secret: the first server seals
                              the CA and keys in the datastore with it, and every
                              other server with the same token unseals them (as
                              k3s's bootstrap data); default: <data-dir>/server/token
  --cluster-init              run an etcd member of this server's own (Debian's
                              etcd, supervised, TLS from the cluster CA, data in
                              <data-dir>/server/db/etcd) and use it, as k3s's
  --server URL                join the cluster of the server at URL with --token:
                              its CA and keys, and an etcd member of this server's
  --etcd-client-port PORT     the embedded member's client port (default 2379)
  --etcd-peer-port PORT       the embedded member's peer port (default 2380)
  --datastore-cafile FILE     TLS to an external etcd: the CA of its certificate
  --datastore-certfile FILE   a client certificate for it, with
  --datastore-keyfile FILE    its key
  --leader-elect, --no-leader-elect  run the controller manager and the scheduler
                              only while this server holds their Lease (default:
                              on with etcd, off with SQLite and memory)
  --leader-elect-lease-duration DURATION  how long a Lease holds (default 15s)
  --leader-elect-renew-deadline DURATION  a leader that cannot renew in this
                              long stops leading (default 10s)
  --leader-elect-retry-period DURATION  how often candidates try (default 2s)

Snapshots (skiff etcd-snapshot; docs/ha.md):
  --etcd-snapshot-schedule-cron SPEC  scheduled snapshots, a cron spec (default
                              "0 */12 * * *" with etcd; with SQLite only when given)
  --etcd-snapshot-retention N  scheduled snapshots to keep (default 5)
  --etcd-snapshot-dir DIR     where snapshots go (default <data-dir>/server/db/snapshots)
  --etcd-disable-snapshots    no scheduled snapshots
  --cluster-reset             with --cluster-reset-restore-path: restore the
                              datastore from a snapshot, then exit (the server
                              must be stopped); start it again without the flag
  --cluster-reset-restore-path FILE  the snapshot to restore
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
      'kubelet-arg': { type: 'string', multiple: true },
      'node-monitor-grace-period': { type: 'string' },
      'default-not-ready-toleration-seconds': { type: 'string' },
      'default-unreachable-toleration-seconds': { type: 'string' },
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
      ...FLANNEL_FLAGS,
      ...INGRESS_FLAGS,
      'disable-metrics': { type: 'boolean', default: false },
      'controller-manager-secure-port': { type: 'string', default: '10257' },
      'scheduler-secure-port': { type: 'string', default: '10259' },
      'leader-elect': { type: 'boolean' },
      'leader-elect-lease-duration': { type: 'string', default: '15s' },
      'leader-elect-renew-deadline': { type: 'string', default: '10s' },
      'leader-elect-retry-period': { type: 'string', default: '2s' },
      token: { type: 'string' },
      'cluster-init': { type: 'boolean', default: false },
      server: { type: 'string' },
      'etcd-client-port': { type: 'string', default: '2379' },
      'etcd-peer-port': { type: 'string', default: '2380' },
      'datastore-cafile': { type: 'string' },
      'datastore-certfile': { type: 'string' },
      'datastore-keyfile': { type: 'string' },
      'cluster-reset': { type: 'boolean', default: false },
      'cluster-reset-restore-path': { type: 'string' },
      'etcd-snapshot-schedule-cron': { type: 'string' },
      'etcd-snapshot-retention': { type: 'string', default: String(DEFAULT_SNAPSHOT_RETENTION) },
      'etcd-snapshot-dir': { type: 'string' },
      'etcd-disable-snapshots': { type: 'boolean', default: false },
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
  // k3s's `--disable metrics-server` is the server's alone (the agent has no
  // metrics-server): taken out here, the rest of --disable is the ingress flags'.
  const disable = (values.disable ?? []).flatMap((d) => d.split(',')).map((d) => d.trim());
  const disableMetricsServer = values['disable-metrics-server'] || disable.includes('metrics-server');
  let ingress: IngressFlagValues;
  try {
    ingress = ingressOptions({ ...values, disable: disable.filter((d) => d !== 'metrics-server') });
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
  let kubeletConfig: KubeletConfig;
  try {
    kubeletConfig = parseKubeletArgs(values['kubelet-arg'] ?? []);
  } catch (err) {
    if (!(err instanceof KubeletConfigError)) throw err;
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
  const flannel = flannelOptions(values);
  if ('error' in flannel) {
    console.error(`skiff server: ${flannel.error}`);
    return 2;
  }
  const tolerationSeconds: { notReadySeconds?: number; unreachableSeconds?: number } = {};
  for (const [flag, field] of [
    ['default-not-ready-toleration-seconds', 'notReadySeconds'],
    ['default-unreachable-toleration-seconds', 'unreachableSeconds'],
  ] as const) {
    const value = values[flag];
    if (value === undefined) continue;
    if (!/^\d+$/.test(value)) {
      console.error(
        `skiff server: --${flag} must be a whole number of seconds, not ${JSON.stringify(value)}`,
      );
      return 2;
    }
    tolerationSeconds[field] = Number(value);
  }
  const leaderElection: LeaderElectionTimings = { ...defaultLeaderElectionTimings };
  for (const [flag, field] of [
    ['leader-elect-lease-duration', 'leaseDurationMs'],
    ['leader-elect-renew-deadline', 'renewDeadlineMs'],
    ['leader-elect-retry-period', 'retryPeriodMs'],
  ] as const) {
    const parsed = parseGoDuration(values[flag]!);
    if ('error' in parsed || parsed.ms <= 0) {
      console.error(
        `skiff server: --${flag} must be a duration such as 15s, not ${JSON.stringify(values[flag])}`,
      );
      return 2;
    }
    leaderElection[field] = parsed.ms;
  }
  const invalidTimings = validateLeaderElectionTimings(leaderElection);
  if (invalidTimings) {
    console.error(`skiff server: leader election: ${invalidTimings}`);
    return 2;
  }
  const nodeMonitorGracePeriodMs = durations['node-monitor-grace-period'];
  const dataDir =
    values['data-dir'] ?? (process.getuid?.() === 0 ? '/var/lib/skiff' : `${process.env.HOME ?? '.'}/.skiff`);
  const log = createLog({ component: 'server' });
  const etcdPorts: Record<string, number> = {};
  for (const flag of ['etcd-client-port', 'etcd-peer-port'] as const) {
    const value = Number(values[flag]);
    if (!Number.isInteger(value) || value <= 0 || value > 65535) {
      console.error(`skiff server: invalid --${flag} ${values[flag]}`);
      return 2;
    }
    etcdPorts[flag] = value;
  }
  // A data dir that holds an etcd member runs it again, flags or not (as k3s).
  const embeddedEtcd =
    values['cluster-init'] ||
    values.server !== undefined ||
    (values['datastore-endpoint'] === 'sqlite://' && hasEtcdMember(dataDir));
  if (embeddedEtcd && values['datastore-endpoint'] !== 'sqlite://') {
    console.error(
      'skiff server: --cluster-init and --server run etcd in the server; leave out --datastore-endpoint',
    );
    return 2;
  }
  if (values.server !== undefined && !values.token) {
    console.error(
      'skiff server: --server needs --token (the cluster’s token, from <data-dir>/node-token on a server)',
    );
    return 2;
  }
  if (values['cluster-reset'] || values['cluster-reset-restore-path']) {
    if (embeddedEtcd || hasEtcdMember(dataDir)) {
      return embeddedClusterReset({
        dataDir,
        restorePath: values['cluster-reset-restore-path'],
        reset: values['cluster-reset']!,
        name: values['node-name'] ?? defaultNodeName(),
        advertiseIP: memberAdvertiseIP(values['advertise-address']),
        clientPort: etcdPorts['etcd-client-port']!,
        peerPort: etcdPorts['etcd-peer-port']!,
        log,
      });
    }
    return clusterReset(
      values['datastore-endpoint']!,
      dataDir,
      values['cluster-reset-restore-path'],
      values['cluster-reset']!,
      log,
    );
  }
  const snapshotRetention = Number(values['etcd-snapshot-retention']);
  if (!Number.isInteger(snapshotRetention) || snapshotRetention < 1) {
    console.error(
      `skiff server: --etcd-snapshot-retention must be a whole number, 1 or more, not ${values['etcd-snapshot-retention']}`,
    );
    return 2;
  }
  const snapshotCron = values['etcd-disable-snapshots']
    ? undefined
    : (values['etcd-snapshot-schedule-cron'] ??
      (embeddedEtcd || /^(etcd|https?):\/\//.test(values['datastore-endpoint']!)
        ? DEFAULT_SNAPSHOT_CRON
        : undefined));
  if (snapshotCron) {
    try {
      parseCronSchedule(snapshotCron);
    } catch (err) {
      console.error(
        `skiff server: --etcd-snapshot-schedule-cron ${JSON.stringify(snapshotCron)}: ${(err as Error).message}`,
      );
      return 2;
    }
  }
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
      tolerationSeconds,
      ...flannel,
      maxMutatingInflight,
      registry,
      kubeletConfig,
      ...ingress,
      ...(values['disable-metrics'] ? { disableMetrics: true } : {}),
      controllerManagerSecurePort: componentPorts['controller-manager-secure-port']!,
      schedulerSecurePort: componentPorts['scheduler-secure-port']!,
      ...(hollowNodes ? { hollowNodes } : {}),
      ...(values['advertise-address'] ? { advertiseAddress: values['advertise-address'] } : {}),
      ...(values['node-name'] ? { nodeName: values['node-name'] } : {}),
      ...(values['node-ip'] ? { nodeIP: values['node-ip'] } : {}),
      ...(nodeMonitorGracePeriodMs !== undefined ? { nodeMonitorGracePeriodMs } : {}),
      ...(values['leader-elect'] !== undefined ? { leaderElect: values['leader-elect'] } : {}),
      leaderElection,
      ...(values.token ? { token: values.token } : {}),
      ...(embeddedEtcd && !values.server ? { clusterInit: true } : {}),
      ...(values.server ? { joinServer: values.server } : {}),
      etcdClientPort: etcdPorts['etcd-client-port']!,
      etcdPeerPort: etcdPorts['etcd-peer-port']!,
      datastoreTLS: {
        ...(values['datastore-cafile'] ? { caFile: values['datastore-cafile'] } : {}),
        ...(values['datastore-certfile'] ? { certFile: values['datastore-certfile'] } : {}),
        ...(values['datastore-keyfile'] ? { keyFile: values['datastore-keyfile'] } : {}),
      },
      ...(snapshotCron
        ? {
            snapshots: {
              cron: snapshotCron,
              retention: snapshotRetention,
              dir: values['etcd-snapshot-dir'] ?? defaultSnapshotDir(dataDir),
            },
          }
        : {}),
      ...(disableMetricsServer ? { disableMetricsServer: true } : {}),
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

/**
 * `--cluster-reset [--cluster-reset-restore-path FILE]`, as k3s's: restores
 * the datastore from a snapshot with the server stopped, then exits so it
 * is started again without the flag.
 */
function clusterReset(
  endpoint: string,
  dataDir: string,
  restorePath: string | undefined,
  reset: boolean,
  log: ReturnType<typeof createLog>,
): number {
  if (!reset) {
    console.error('skiff server: --cluster-reset-restore-path needs --cluster-reset');
    return 2;
  }
  let datastore: Datastore;
  try {
    datastore = datastoreOf(endpoint, dataDir);
  } catch (err) {
    console.error(`skiff server: --cluster-reset: ${(err as Error).message}`);
    return 2;
  }
  if (datastore.kind === 'etcd') {
    console.error(
      'skiff server: --cluster-reset: this server does not run its etcd (--datastore-endpoint names an external one). ' +
        "Restore an etcd snapshot with etcd's tools: stop etcd, `etcdctl snapshot restore FILE --data-dir NEW`, " +
        'start etcd on NEW, then start the servers (docs/ha.md).',
    );
    return 1;
  }
  if (!restorePath) {
    console.error(
      'skiff server: --cluster-reset on SQLite has no peers to forget; give --cluster-reset-restore-path FILE to restore a snapshot',
    );
    return 2;
  }
  try {
    const { kept } = restoreSqliteSnapshot(restorePath, datastore.path);
    log('datastore restored from a snapshot', {
      snapshot: restorePath,
      datastore: datastore.path,
      previous: kept,
    });
  } catch (err) {
    console.error(`skiff server: --cluster-reset: ${(err as Error).message}`);
    return 1;
  }
  console.error('\nThe datastore has been restored. Start the server again without --cluster-reset.');
  return 0;
}

/**
 * `--cluster-reset` on a server with an embedded etcd member, as k3s's:
 * with a snapshot, the member's data is restored from it as a cluster of
 * one; without, the member forgets its peers (etcd --force-new-cluster),
 * keeping its data. Either way the server then exits, and the other
 * servers rejoin with --server after removing their own etcd data.
 */
async function embeddedClusterReset(opts: {
  dataDir: string;
  restorePath: string | undefined;
  reset: boolean;
  name: string;
  advertiseIP: string;
  clientPort: number;
  peerPort: number;
  log: ReturnType<typeof createLog>;
}): Promise<number> {
  if (!opts.reset) {
    console.error('skiff server: --cluster-reset-restore-path needs --cluster-reset');
    return 2;
  }
  const peerURL = `https://${opts.advertiseIP}:${opts.peerPort}`;
  try {
    if (opts.restorePath) {
      const { kept } = restoreEtcdSnapshot(opts.restorePath, opts.dataDir, opts.name, peerURL);
      opts.log('etcd restored from a snapshot', { snapshot: opts.restorePath, previous: kept });
    } else {
      if (!hasEtcdMember(opts.dataDir)) {
        console.error(`skiff server: --cluster-reset: no etcd member in ${etcdDataDir(opts.dataDir)}`);
        return 1;
      }
      const etcd = await startEmbeddedEtcd({
        dataDir: opts.dataDir,
        name: opts.name,
        advertiseIP: opts.advertiseIP,
        clientPort: opts.clientPort,
        peerPort: opts.peerPort,
        ca: ensureCA(join(opts.dataDir, 'server', 'tls')),
        forceNewCluster: true,
        log: opts.log,
      });
      await etcd.stop();
      opts.log('etcd membership reset: this member is a cluster of one', { name: opts.name });
    }
  } catch (err) {
    console.error(`skiff server: --cluster-reset: ${(err as Error).message}`);
    return 1;
  }
  console.error(
    '\nThe etcd cluster has been reset to this member. Start the server again without --cluster-reset.\n' +
      'On every other server: stop it, remove <data-dir>/server/db/etcd, and start it with --server URL --token T to rejoin.',
  );
  return 0;
}
