// `skiff server`: the control plane in one process. It opens the store,
// makes the PKI and the admin kubeconfig on first start, serves the API over
// HTTPS with client-certificate authentication, creates the objects every
// cluster starts with, and compacts the store. Controllers, the scheduler and
// the agent join this process as they land.

import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  unwatchFile,
  watchFile,
  writeFileSync,
} from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { type RunningAgent, type RuntimeKind, startAgent } from '../agent/agent.ts';
import { ensureNodePasswordFile } from '../agent/join.ts';
import type { NodeRegistryOptions } from '../agent/registries.ts';
import { ApiError, badRequest, methodNotRouted } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';
import { builtinRegistry } from '../api/resources/index.ts';
import { celValidationRules } from '../apiextensions/validation-rules.ts';
import { type AdmissionPluginName, defaultAdmission } from '../apiserver/admission/chain.ts';
import type { DefaultTolerationSecondsOptions } from '../apiserver/admission/default-toleration-seconds.ts';
import { ApiServer, type UserInfo } from '../apiserver/apiserver.ts';
import { Auditor, fileSink } from '../apiserver/audit/audit.ts';
import { parsePolicy } from '../apiserver/audit/policy.ts';
import { createAuthenticator } from '../apiserver/authn/authenticator.ts';
import { bearerAuthentication } from '../apiserver/authn/bearer.ts';
import { parseTokenFile } from '../apiserver/authn/token-file.ts';
import { serviceAccountUser } from '../apiserver/authn/user.ts';
import {
  CONTROLLER_SERVICE_ACCOUNTS,
  ROOT_CREDENTIAL_CONTROLLERS,
} from '../apiserver/authz/controller-roles.ts';
import { startEventTTL } from '../apiserver/event-ttl.ts';
import { createInProcessTransport } from '../apiserver/in-process.ts';
import { ApiServerMetrics } from '../apiserver/metrics.ts';
import { createClientset } from '../client/clientset.ts';
import { defaultLeaderElectionTimings, type LeaderElectionTimings } from '../client/leaderelection.ts';
import type { HPAOptions } from '../controllers/horizontal.ts';
import { allControllers } from '../controllers/index.ts';
import { LOCAL_PATH_PROVISIONER, LOCAL_PATH_STORAGE_CLASS } from '../controllers/local-path-provisioner.ts';
import { type ControllerManager, startControllerManager } from '../controllers/manager.ts';
import { DASHBOARD_PATH, DASHBOARD_UI_DIR, dashboardHandler } from '../dashboard/serve.ts';
import { ensureKubeDNSService } from '../dns/bootstrap.ts';
import { clusterDNSIP } from '../dns/node.ts';
import { ensureDefaultIngressClass } from '../ingress/ingress-class.ts';
import type { KubeletConfig } from '../kubelet/config.ts';
import { defaultNodeName } from '../kubelet/node-status.ts';
import { KUBE_APISERVER_KUBELET_CLIENT } from '../kubelet/server/server.ts';
import {
  METRICS_SERVER_USER,
  MetricsStorage,
  type RunningMetricsServer,
  startMetricsServer,
} from '../metrics/metrics-server.ts';
import { componentRegistry, type Registry } from '../metrics/prometheus.ts';
import { schedulerMetrics } from '../metrics/scheduler.ts';
import { workQueueMetricsProvider } from '../metrics/workqueue.ts';
import type { FlannelBackend } from '../network/node.ts';
import { kubeconfigYaml } from '../pki/kubeconfig.ts';
import { ensureCA, ensureLeaf, issueLeaf, localAddresses, localHostname } from '../pki/pki.ts';
import { type RunningScheduler, startScheduler } from '../scheduler/index.ts';
import { startCompactor } from '../storage/compactor.ts';
import { instrumentStore } from '../storage/instrumented.ts';
import { migrateStore } from '../storage/migrate.ts';
import { type DatastoreTLS, openStore } from '../storage/open.ts';
import type { Store } from '../storage/store.ts';
import { hostAddress } from '../util/host-address.ts';
import { createLog, type Log } from '../util/log.ts';
import { type ApiServerLeases, MASTER_LEASES_PREFIX, startApiServerLeases } from './apiserver-leases.ts';
import { type AuthorizationMode, ServerAuthorization } from './authorization.ts';
import { restoreBootstrapData, saveBootstrapData } from './bootstrap-data.ts';
import { certificateExpiryEvent, checkCertificates } from './certificates.ts';
import { connectionUser } from './client-cert.ts';
import {
  addEtcdMember,
  DEFAULT_ETCD_PEER_PORT,
  type EmbeddedEtcd,
  etcdCertificates,
  etcdClientURLs,
  hasEtcdMember,
  memberAdvertiseIP,
  startEmbeddedEtcd,
} from './embedded-etcd.ts';
import { type Stoppable, startLeaderGated } from './leader.ts';
import { type MetricsEndpoint, serveMetricsEndpoint } from './metrics-endpoint.ts';
import {
  AGENT_BOOTSTRAP_USER,
  ensureNodePassword,
  ensureNodeToken,
  HOLLOW_FLEET_USER,
  INGRESS_USER,
  joinEndpoints,
  NETWORK_POLICY_USER,
} from './node-token.ts';
import { encryptSecrets } from './secrets-encryption.ts';
import { fetchServerBootstrap, serverBootstrapEndpoint } from './server-join.ts';
import { ensureServiceAccountKey, SERVICE_ACCOUNT_ISSUER } from './service-account-key.ts';
import { type Datastore, datastoreOf, scheduleSnapshots } from './snapshots.ts';

export interface ServerConfig {
  dataDir: string;
  datastoreEndpoint: string;
  bindAddress: string;
  httpsPort: number;
  serviceCIDR: string;
  clusterCIDR: string;
  disableAgent: boolean;
  /** k3s's --default-local-storage-path: the local-path volumes' root on every node (default <data-dir>/storage). */
  defaultLocalStoragePath?: string;
  /** The address written into the kubeconfig (defaults to 127.0.0.1). */
  advertiseAddress?: string;
  /** k3s's --node-name: the server's own node (default: the hostname, lower-cased). */
  nodeName?: string;
  /** k3s's --node-ip: the server's node's InternalIP (default: the first non-loopback IPv4). */
  nodeIP?: string;
  /** kube-controller-manager's --node-monitor-grace-period (default 40 s). */
  nodeMonitorGracePeriodMs?: number;
  /** Run the controller manager in this process (default true). */
  controllers?: boolean;
  /** Run the scheduler in this process (default true). */
  scheduler?: boolean;
  /** The in-process agent's container runtime (default cri). */
  agentRuntime?: RuntimeKind;
  /** Run this many hollow nodes in the in-process agent instead of one real node. */
  hollowNodes?: number;
  /** The in-process agent's registries (--private-registry and friends, src/agent/registries.ts). */
  registry?: NodeRegistryOptions;
  /** --kubelet-arg: the in-process node's kubelet flags (src/kubelet/config.ts). */
  kubeletConfig?: KubeletConfig;
  /**
   * --authorization-mode, in order after system:masters. Node,RBAC unless
   * given, as kube-apiserver's default in kubeadm and k3s clusters.
   */
  authorizationModes?: AuthorizationMode[];
  /** --token-auth-file: static bearer tokens, as upstream's CSV (token,user,uid,"group1,group2"). */
  tokenAuthFile?: string;
  /** --audit-policy-file and --audit-log-path ('-' for stdout): both, or no audit log, as upstream. */
  auditPolicyFile?: string;
  auditLogPath?: string;
  /** --secrets-encryption (k3s): Secrets encrypted at rest with a managed aescbc key. */
  secretsEncryption?: boolean;
  /** --encryption-provider-config FILE (upstream): the EncryptionConfiguration to use. */
  encryptionProviderConfig?: string;
  /** --disable-admission-plugins: default-on plugins to turn off, as kube-apiserver's flag. */
  disableAdmissionPlugins?: AdmissionPluginName[];
  /** --flannel-backend: the cluster's pod network across nodes; agents without one of their own take it (CONFIG_PATH). */
  flannelBackend?: FlannelBackend;
  /** --flannel-iface, --node-external-ip, --flannel-external-ip: for the server's own node, as on `skiff agent`. */
  flannelIface?: string;
  nodeExternalIP?: string;
  flannelExternalIP?: boolean;
  /** --default-not-ready-toleration-seconds and --default-unreachable-toleration-seconds (300 s each by default). */
  tolerationSeconds?: DefaultTolerationSecondsOptions;
  /** --max-mutating-requests-inflight: writes off the wire that run at once (0: no limit). */
  maxMutatingInflight?: number;
  /** --disable ingress: no IngressClass `skiff` and no ingress proxy on the server's node. */
  disableIngress?: boolean;
  /** The server's node's ingress ports (default 80 and 443). */
  ingressHttpPort?: number;
  ingressHttpsPort?: number;
  /** --disable-metrics: no Prometheus metrics recorded or served (for measuring what they cost). */
  disableMetrics?: boolean;
  /** Where the controller manager's /metrics listens on 127.0.0.1 (default 10257, as upstream's; 0: not served). */
  controllerManagerSecurePort?: number;
  /** Where the scheduler's /metrics listens on 127.0.0.1 (default 10259, as upstream's; 0: not served). */
  schedulerSecurePort?: number;
  /**
   * --leader-elect: the controller manager and the scheduler run only while
   * this server holds their Lease. Default: on with etcd (several servers can
   * share it), off with SQLite and memory (one server is the only one).
   */
  leaderElect?: boolean;
  /** --leader-elect-lease-duration, -renew-deadline, -retry-period (upstream's 15 s, 10 s, 2 s). */
  leaderElection?: Partial<LeaderElectionTimings>;
  /** Scheduled snapshots (--etcd-snapshot-schedule-cron, -retention, -dir; snapshots.ts). */
  snapshots?: { cron: string; retention: number; dir: string };
  /** --cluster-init: run an etcd member of this server's own and use it (embedded-etcd.ts). */
  clusterInit?: boolean;
  /** --server URL: join the cluster of that server, adding an etcd member (needs token). */
  joinServer?: string;
  /** The embedded member's client and peer ports (default 2379, 2380, as etcd's). */
  etcdClientPort?: number;
  etcdPeerPort?: number;
  /** --datastore-cafile, -certfile, -keyfile: TLS to an external etcd. */
  datastoreTLS?: DatastoreTLS;
  /** --token: the cluster's shared secret (a full K10 token or the bare secret); bootstrap-data.ts. */
  token?: string;
  /** No metrics-server, so no metrics.k8s.io (k3s's --disable metrics-server). */
  disableMetricsServer?: boolean;
  /** metrics-server's --metric-resolution: how often it scrapes the kubelets (default 15 s). */
  metricResolutionMs?: number;
  /** --enable-pprof: CPU profiles and heap snapshots on /debug/pprof/ (cluster-admin only). */
  enablePprof?: boolean;
  /** The HPA controller's kube-controller-manager flags. */
  hpa?: HPAOptions;
  /** kube-apiserver's --event-ttl: how long an Event lives (default 1 h). */
  eventTTLMs?: number;
}

export interface RunningServer {
  url: string;
  kubeconfig: string;
  api: ApiServer;
  store: Store;
  https: Server;
  stop(): Promise<void>;
}

const MASTERS = 'system:masters';

export async function startServer(
  config: ServerConfig,
  log: Log = createLog({ component: 'server' }),
): Promise<RunningServer> {
  const tlsDir = join(config.dataDir, 'server', 'tls');
  mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
  // With embedded etcd (--cluster-init, or joining with --server), the
  // member starts first: it is the datastore.
  let datastoreEndpoint = config.datastoreEndpoint;
  let datastoreTLS = config.datastoreTLS ?? {};
  let etcd: EmbeddedEtcd | undefined;
  if (config.clusterInit || config.joinServer) {
    const advertiseIP = memberAdvertiseIP(config.advertiseAddress);
    const memberName = config.nodeName ?? defaultNodeName();
    const peerPort = config.etcdPeerPort ?? DEFAULT_ETCD_PEER_PORT;
    let initialCluster: string | undefined;
    if (config.joinServer && !hasEtcdMember(config.dataDir)) {
      if (!config.token) throw new Error('joining with --server needs --token (the cluster’s token)');
      const joined = await fetchServerBootstrap(config.joinServer, config.token, config.dataDir, log);
      const certs = etcdCertificates(config.dataDir, ensureCA(tlsDir), advertiseIP);
      initialCluster = await addEtcdMember(
        joined.etcdClientURLs,
        {
          ca: Buffer.from(ensureCA(tlsDir).cert),
          cert: Buffer.from(certs.client.cert),
          key: Buffer.from(certs.client.key),
        },
        memberName,
        `https://${advertiseIP}:${peerPort}`,
        log,
      );
    }
    etcd = await startEmbeddedEtcd({
      dataDir: config.dataDir,
      name: memberName,
      advertiseIP,
      ...(config.etcdClientPort !== undefined ? { clientPort: config.etcdClientPort } : {}),
      peerPort,
      ca: ensureCA(tlsDir),
      ...(initialCluster ? { initialCluster } : {}),
      log,
    });
    const etcdTLSDir = join(tlsDir, 'etcd');
    datastoreEndpoint = etcd.clientURL;
    datastoreTLS = {
      caFile: join(tlsDir, 'ca.crt'),
      certFile: join(etcdTLSDir, 'client.crt'),
      keyFile: join(etcdTLSDir, 'client.key'),
    };
  }
  const opened = await openStore(datastoreEndpoint, config.dataDir, datastoreTLS);
  // A SQLite cluster moving to embedded etcd (--cluster-init on its data
  // dir), as k3s: every object into the new, empty etcd, in resourceVersion
  // order with its uid; state.db is kept as state.db.migrated.
  if (etcd && config.clusterInit) await migrateFromSqlite(config.dataDir, opened.store, log);
  let store: Store = opened.store;
  log('datastore open', { datastore: opened.description, revision: await store.currentRevision() });
  // The cluster's CA and keys: from the datastore when another server with
  // this token made them (bootstrap-data.ts), else made here and stored.
  const boot = await restoreBootstrapData(opened.store, config.dataDir, config.token);
  if (boot.restored) log('bootstrap data read from the datastore', { changed: boot.changed });
  ensureCA(tlsDir);
  ensureServiceAccountKey(tlsDir);
  if (config.secretsEncryption || config.encryptionProviderConfig) {
    const encrypted = await encryptSecrets(store, config.dataDir, config.encryptionProviderConfig);
    store = encrypted.store;
    log('secrets encrypted at rest', { config: encrypted.path, ...encrypted.state });
  }
  const saved = await saveBootstrapData(opened.store, config.dataDir, boot.secret);
  if (saved.adopted) log('another server stored the bootstrap data first; using its CA and keys');
  const ca = ensureCA(tlsDir);
  const host = localHostname();
  const nodeName = config.nodeName ?? defaultNodeName();
  const serviceFirstIP = firstServiceIP(config.serviceCIDR);
  const serving = ensureLeaf(ca, tlsDir, 'serving-kube-apiserver', {
    commonName: 'kube-apiserver',
    usage: 'server',
    dnsNames: [
      'localhost',
      host,
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
    ],
    // The advertised address too: another server's or an agent's load
    // balancer reaches this one there (as kube-apiserver adds it).
    ips: [
      ...new Set([
        ...localAddresses(),
        serviceFirstIP,
        ...(config.advertiseAddress ? [config.advertiseAddress] : []),
      ]),
    ],
  });
  const admin = ensureLeaf(ca, tlsDir, 'client-admin', {
    commonName: 'system:admin',
    organizations: [MASTERS],
    usage: 'client',
  });
  // What the API server shows kubelets for logs, exec, attach and port-forward.
  const kubeletClient = ensureLeaf(ca, tlsDir, 'client-kube-apiserver-kubelet', {
    commonName: KUBE_APISERVER_KUBELET_CLIENT,
    usage: 'client',
  });

  // Prometheus metrics (apiserver/metrics.ts): every store call is timed.
  const registry = builtinRegistry();
  const metrics = config.disableMetrics
    ? undefined
    : new ApiServerMetrics(registry, () => api.objectCounts());
  if (metrics) store = instrumentStore(store, metrics.storeObserver);

  const advertise = config.advertiseAddress ?? '127.0.0.1';
  const authorization = new ServerAuthorization(config.authorizationModes ?? ['Node', 'RBAC']);
  // Bearer tokens (authn/): the static token file, ServiceAccount JWTs, bootstrap tokens.
  const bearer = bearerAuthentication({
    serviceAccountKey: ensureServiceAccountKey(tlsDir),
    issuer: SERVICE_ACCOUNT_ISSUER,
    get: (resource, namespace, name) =>
      api.storage('', 'v1', resource)!.get(resource === 'nodes' ? undefined : namespace, name),
    ...(config.tokenAuthFile
      ? { tokenFile: parseTokenFile(readFileSync(config.tokenAuthFile, 'utf8'), config.tokenAuthFile) }
      : {}),
  });
  const auditLog = config.auditPolicyFile && config.auditLogPath ? fileSink(config.auditLogPath) : undefined;
  const auditor = auditLog
    ? new Auditor(
        parsePolicy(readFileSync(config.auditPolicyFile!, 'utf8'), config.auditPolicyFile),
        auditLog,
      )
    : undefined;
  const authenticate = createAuthenticator({
    certificateUser: (req) => connectionUser(req.socket as TLSSocket),
    tokens: bearer.authenticators,
  });
  // metrics-server's samples (metrics/metrics-server.ts): metrics.k8s.io is served from them.
  const metricsStorage = config.disableMetricsServer ? undefined : new MetricsStorage();
  const api = new ApiServer({
    ...(metricsStorage ? { resourceMetrics: metricsStorage } : {}),
    ...(config.enablePprof ? { profiling: true } : {}),
    registry,
    store,
    serviceCIDR: config.serviceCIDR,
    advertiseAddress: `${advertise}:${config.httpsPort}`,
    log: (msg, fields) => (msg === 'request' ? log.debug(msg, fields) : log(msg, fields)),
    kubeletClient: { cert: kubeletClient.cert, key: kubeletClient.key },
    authorizer: authorization,
    ruleResolver: authorization,
    tokens: bearer.tokens,
    admission: (api) =>
      defaultAdmission(api, {
        disabled: config.disableAdmissionPlugins ?? [],
        withServiceAccount: true,
        tolerationSeconds: config.tolerationSeconds ?? {},
      }),
    validationRules: celValidationRules,
    ...(auditor ? { audit: auditor } : {}),
    ...(config.maxMutatingInflight !== undefined ? { maxMutatingInflight: config.maxMutatingInflight } : {}),
    ...(metrics ? { metrics } : {}),
  });
  await api.start();
  await authorization.start(api, log);
  await bootstrap(api, config.httpsPort, log);
  const localStoragePath = config.defaultLocalStoragePath ?? join(config.dataDir, 'storage');
  await ensureKubeDNSService(api, clusterDNSIP(config.serviceCIDR), log);
  if (!config.disableIngress) await ensureDefaultIngressClass(api, log);
  const compactor = startCompactor(store, { log });
  // Events expire --event-ttl after their last write (apiserver/event-ttl.ts).
  const eventTTL = startEventTTL(api.storage('', 'v1', 'events')!, {
    ...(config.eventTTLMs ? { ttlMs: config.eventTTLMs } : {}),
    log,
  });
  const datastore: Datastore | undefined = !config.snapshots
    ? undefined
    : etcd
      ? { kind: 'etcd', endpoints: [etcd.clientURL], tls: etcd.tls }
      : datastoreOf(datastoreEndpoint, config.dataDir, datastoreTLS);
  const snapshots =
    config.snapshots && datastore
      ? scheduleSnapshots({
          ...config.snapshots,
          datastore,
          nodeName: config.nodeName ?? defaultNodeName(),
          log,
        })
      : undefined;

  // Joining agents prove the token's secret here for a node certificate
  // (node-token.ts); the token itself is in <data-dir>/node-token.
  const nodeToken = ensureNodeToken(config.dataDir, ca.cert);
  const secrets = api.storage('', 'v1', 'secrets')!;
  const serveJoin = joinEndpoints({
    token: nodeToken,
    caPem: ca.cert,
    secrets,
    issue: (subject) => issueLeaf(ca, { ...subject, usage: 'client' }),
    // An agent given agent-kubeconfig.yaml bootstraps with it as with the token.
    bootstrapCertificate: (req) => connectionUser(req.socket as TLSSocket)?.name === AGENT_BOOTSTRAP_USER,
    config: {
      flannelBackend: config.flannelBackend ?? 'vxlan',
      ...(config.disableIngress ? { disableIngress: true } : {}),
    },
    log,
  });
  // The server's own node name is held like any joined node's (node-token.ts),
  // before the join endpoint listens, so no token holder can get it first.
  const serverNodeRefused = config.disableAgent
    ? undefined
    : await ensureNodePassword(secrets, nodeName, ensureNodePasswordFile(config.dataDir));

  // The certificate's user needs no await: only a bearer token takes the async path.
  const authenticated = async (req: IncomingMessage): Promise<UserInfo | undefined> => {
    const r = await authenticate(req);
    return r && 'user' in r ? r.user : undefined;
  };
  // The web UI's static files (dashboard/serve.ts); its API calls come back
  // through the pipeline below with the user's own token.
  const serveDashboard = dashboardHandler(DASHBOARD_UI_DIR);
  // Joining servers fetch the bootstrap data here (server-join.ts).
  const serveServerBootstrap = etcd
    ? serverBootstrapEndpoint({
        secret: boot.secret,
        store: opened.store,
        etcdClientURLs: () => etcdClientURLs([etcd!.clientURL], etcd!.tls),
        log,
      })
    : undefined;
  const https = createServer(
    {
      key: serving.key,
      cert: serving.cert,
      ca: ca.cert,
      requestCert: true,
      rejectUnauthorized: false,
      // Watches hold requests open for up to an hour.
      requestTimeout: 0,
      keepAliveTimeout: 65_000,
    },
    (req, res) => {
      if (serveJoin(req, res)) return;
      if (serveServerBootstrap?.(req, res)) return;
      if (serveDashboard(req, res)) return;
      // The request pipeline (apiserver/pipeline.ts), from authentication on.
      void api.serve(req, res, authenticated);
    },
  );
  // exec, attach, port-forward (SPDY or WebSocket upgrades) go to the kubelet.
  https.on('upgrade', (req, socket, head) => {
    void api.serveUpgrade(req, socket, head, authenticated);
  });
  // Node's HTTP parser refuses methods it does not know before any handler
  // runs; upstream answers those 405 with a Status, so say so rather than
  // drop the connection. Other malformed requests get a plain 400.
  https.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const status = (
      err.code === 'HPE_INVALID_METHOD' ? methodNotRouted() : badRequest('malformed HTTP request')
    ).status;
    const code = status.code;
    const body = JSON.stringify(status);
    socket.end(
      `HTTP/1.1 ${code} ${code === 405 ? 'Method Not Allowed' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  await new Promise<void>((resolve, reject) => {
    https.once('error', reject);
    https.listen(config.httpsPort, config.bindAddress, () => {
      https.off('error', reject);
      resolve();
    });
  });
  const port = (https.address() as { port: number }).port;
  const url = `https://${advertise.includes(':') ? `[${advertise}]` : advertise}:${port}`;
  const kubeconfig = join(config.dataDir, 'kubeconfig.yaml');
  writeFileSync(kubeconfig, kubeconfigYaml(url, ca.cert, admin.cert, admin.key), { mode: 0o600 });
  // This server in the `kubernetes` Service's endpoints and its identity
  // Lease (apiserver-leases.ts). Pods reach the API at that Service: its
  // endpoint must be an address they can get to, not loopback (upstream
  // picks the default route's interface the same way when
  // --advertise-address is unset).
  const endpointIP = advertise === '127.0.0.1' ? (hostAddress() ?? advertise) : advertise;
  const apiserverLeases: ApiServerLeases = await startApiServerLeases({
    api,
    store: opened.store,
    endpointIP,
    port,
    serverName: `${nodeName}/${endpointIP}:${port}`,
    hostname: host,
    log,
  });
  log('apiserver listening', { url, kubeconfig, dashboard: `${url}${DASHBOARD_PATH}` });
  // `skiff certificate rotate` rewrites the serving certificate in place:
  // new connections get it, open ones (watches) carry on (certificates.ts).
  let servingPem = serving.cert;
  const reloadServing = () => {
    try {
      const cert = readFileSync(serving.certFile, 'utf8');
      const key = readFileSync(serving.keyFile, 'utf8');
      if (cert === servingPem) return;
      https.setSecureContext({ key, cert, ca: ca.cert });
      servingPem = cert;
      log('serving certificate reloaded', { file: serving.certFile });
    } catch (err) {
      log.warn('could not reload the serving certificate', { error: String((err as Error).message) });
    }
  };
  watchFile(serving.certFile, { interval: 2_000, persistent: false }, reloadServing);
  // Warning Events for certificates near expiry, at start and daily.
  const warnExpiry = async () => {
    const event = certificateExpiryEvent(checkCertificates(config.dataDir), nodeName);
    if (!event) return;
    try {
      await api.storage('', 'v1', 'events')!.create('default', event);
      log.warn('certificates near expiry', { message: event['message'] });
    } catch (err) {
      log.warn('could not record the certificate expiry event', { error: String((err as Error).message) });
    }
  };
  await warnExpiry();
  const expiryTimer = setInterval(() => void warnExpiry(), 24 * 3600 * 1000);
  expiryTimer.unref();
  // Agents on other machines join with the token (`skiff agent --token`), or
  // with this bootstrap certificate (`skiff agent --kubeconfig`): either buys
  // the node's own credentials from the join endpoints (node-token.ts).
  const agentCert = ensureLeaf(ca, tlsDir, 'client-agent', {
    commonName: AGENT_BOOTSTRAP_USER,
    usage: 'client',
  });
  writeFileSync(
    join(config.dataDir, 'agent-kubeconfig.yaml'),
    kubeconfigYaml(url, ca.cert, agentCert.cert, agentCert.key),
    { mode: 0o600 },
  );

  // Controllers act through the API like any client, over the in-process
  // transport: the handler chain without a socket.
  // The controller manager's and the scheduler's /metrics (metrics-endpoint.ts).
  const endpoints: MetricsEndpoint[] = [];
  const serveComponentMetrics = async (component: string, port: number, registry: () => Registry) => {
    if (port === 0) return;
    const endpoint = await serveMetricsEndpoint({
      component,
      host: '127.0.0.1',
      port,
      tls: { key: serving.key, cert: serving.cert, ca: ca.cert },
      registry,
      authenticate: authenticated,
      authorizer: authorization,
      log,
    });
    if (endpoint) endpoints.push(endpoint);
  };
  // With several servers on one datastore, each component runs on the
  // server holding its Lease (leader.ts); alone, it just runs.
  const leaderElect = config.leaderElect ?? opened.description.startsWith('etcd');
  const timings = { ...defaultLeaderElectionTimings, ...config.leaderElection };
  // Upstream's identity: <hostname>_<uuid>, unique to this process.
  const candidate = `${nodeName}_${randomUUID()}`;
  const components: Stoppable[] = [];
  const run = async (name: string, user: UserInfo, start: () => Promise<Stoppable>): Promise<void> => {
    if (!leaderElect) {
      components.push(await start());
      return;
    }
    const gated = startLeaderGated({
      name,
      identity: candidate,
      clients: createClientset(createInProcessTransport(api, user)),
      timings,
      start,
      log: createLog({ component: name }),
    });
    components.push(gated);
  };
  let managerRegistry: Registry | undefined;
  if (config.controllers !== false) {
    await run('kube-controller-manager', CONTROLLER_MANAGER, async () => {
      // A fresh registry for each term: its work queues register their metrics again.
      const registry = metrics ? componentRegistry() : undefined;
      managerRegistry = registry;
      const manager: ControllerManager = await startControllerManager({
        ...(registry ? { queueMetrics: workQueueMetricsProvider(registry) } : {}),
        // The informers list and watch as system:kube-controller-manager; each
        // controller writes as its own ServiceAccount bound to its
        // system:controller:* role, as upstream's --use-service-account-credentials.
        clients: createClientset(createInProcessTransport(api, CONTROLLER_MANAGER)),
        clientsFor: (controller) =>
          createClientset(createInProcessTransport(api, controllerIdentity(controller))),
        log: createLog({ component: 'controller-manager' }),
        controllers: allControllers,
        options: {
          clusterCIDR: config.clusterCIDR,
          apiServerAddress: { ip: advertise, port },
          rootCA: ca.cert,
          clusterSigningCA: { cert: ca.cert, key: ca.key },
          legacyTokenSigner: bearer.tokens.signer,
          defaultLocalStoragePath: localStoragePath,
          ...(config.hpa ? { hpa: config.hpa } : {}),
          ...(config.nodeMonitorGracePeriodMs !== undefined
            ? { nodeMonitorGracePeriodMs: config.nodeMonitorGracePeriodMs }
            : {}),
        },
      });
      return manager;
    });
    if (metrics) {
      const idle = componentRegistry();
      await serveComponentMetrics(
        'controller-manager',
        config.controllerManagerSecurePort ?? 10257,
        () => managerRegistry ?? idle,
      );
    }
  }
  if (config.scheduler !== false) {
    let schedulerRegistry: Registry | undefined;
    await run('kube-scheduler', SCHEDULER, async () => {
      const registry = metrics ? componentRegistry() : undefined;
      schedulerRegistry = registry;
      const scheduler: RunningScheduler = await startScheduler({
        ...(registry ? { metrics: (pending) => schedulerMetrics(registry, pending) } : {}),
        clients: createClientset(createInProcessTransport(api, SCHEDULER)),
        log: createLog({ component: 'scheduler' }),
      });
      return scheduler;
    });
    if (metrics) {
      const idle = componentRegistry();
      await serveComponentMetrics(
        'scheduler',
        config.schedulerSecurePort ?? 10259,
        () => schedulerRegistry ?? idle,
      );
    }
  }

  // metrics-server, as its own user (list/watch of nodes and pods), showing
  // kubelets its own client certificate (they ask the API server whether it
  // may get nodes/metrics).
  let metricsServer: RunningMetricsServer | undefined;
  if (metricsStorage) {
    const cert = ensureLeaf(ca, tlsDir, 'client-metrics-server', {
      commonName: METRICS_SERVER_USER,
      usage: 'client',
    });
    metricsServer = await startMetricsServer({
      clients: createClientset(
        createInProcessTransport(api, { name: METRICS_SERVER_USER, groups: ['system:authenticated'] }),
      ),
      tls: { cert: cert.cert, key: cert.key },
      storage: metricsStorage,
      ...(config.metricResolutionMs ? { resolutionMs: config.metricResolutionMs } : {}),
      log: createLog({ component: 'metrics-server' }),
    });
  }

  // The server's own node, unless --disable-agent. Its kubelet talks to the
  // API in process, as the node user upstream's kubelets are.
  let agent: RunningAgent | undefined;
  if (!config.disableAgent) {
    const agentLog = createLog({ component: 'agent' });
    try {
      if (serverNodeRefused) throw new Error(serverNodeRefused);
      agent = await startAgent({
        clients: createClientset(
          createInProcessTransport(
            api,
            config.hollowNodes
              ? { name: HOLLOW_FLEET_USER, groups: ['system:authenticated'] }
              : {
                  name: `system:node:${nodeName}`,
                  groups: ['system:nodes', 'system:authenticated'],
                },
          ),
        ),
        // The proxy and DNS as their own users, each with its role (system:node-proxier, system:coredns).
        proxyClients: createClientset(
          createInProcessTransport(api, { name: 'system:kube-proxy', groups: ['system:authenticated'] }),
        ),
        dnsClients: createClientset(
          createInProcessTransport(api, {
            name: serviceAccountUser('kube-system', 'coredns'),
            groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
          }),
        ),
        // NetworkPolicy as system:skiff-network-policy (its role: list/watch of pods, namespaces, policies).
        networkPolicyClients: createClientset(
          createInProcessTransport(api, { name: NETWORK_POLICY_USER, groups: ['system:authenticated'] }),
        ),
        // The ingress controller as system:skiff-ingress (its role: read routes and endpoints, write Ingress status).
        ingressClients: createClientset(
          createInProcessTransport(api, { name: INGRESS_USER, groups: ['system:authenticated'] }),
        ),
        ...(config.disableIngress ? { disableIngress: true } : {}),
        ...(config.ingressHttpPort !== undefined ? { ingressHttpPort: config.ingressHttpPort } : {}),
        ...(config.ingressHttpsPort !== undefined ? { ingressHttpsPort: config.ingressHttpsPort } : {}),
        dataDir: config.dataDir,
        defaultLocalStoragePath: localStoragePath,
        runtime: config.agentRuntime ?? 'cri',
        ...(config.hollowNodes ? {} : { nodeName }),
        ...(config.nodeIP ? { nodeIP: config.nodeIP } : {}),
        controlPlane: true,
        clusterCIDR: config.clusterCIDR,
        serviceCIDR: config.serviceCIDR,
        ...(config.hollowNodes ? { hollowNodes: config.hollowNodes } : {}),
        clusterCA: ca.cert,
        ...(config.registry ? { registry: config.registry } : {}),
        ...(config.kubeletConfig ? { kubeletConfig: config.kubeletConfig } : {}),
        ...(config.flannelBackend ? { flannelBackend: config.flannelBackend } : {}),
        ...(config.flannelIface ? { flannelIface: config.flannelIface } : {}),
        ...(config.nodeExternalIP ? { nodeExternalIP: config.nodeExternalIP } : {}),
        ...(config.flannelExternalIP ? { flannelExternalIP: true } : {}),
        log: agentLog,
      });
    } catch (err) {
      // The control plane stays up: a machine without containerd can still serve the API.
      agentLog.error('the node agent did not start; running the control plane only', {
        error: String((err as Error)?.message ?? err),
        hint: 'use --runtime hollow for a node without containers, or --disable-agent',
      });
    }
  }

  return {
    url,
    kubeconfig,
    api,
    store,
    https,
    async stop() {
      await agent?.stop();
      await metricsServer?.stop();
      // The scheduler, then the controller manager, as before; a leader releases its Lease.
      for (const c of [...components].reverse()) await c.stop();
      await apiserverLeases.stop();
      for (const e of endpoints) await e.close();
      compactor.stop();
      eventTTL.stop();
      snapshots?.stop();
      clearInterval(expiryTimer);
      unwatchFile(serving.certFile, reloadServing);
      authorization.stop();
      api.stop();
      https.closeAllConnections();
      await new Promise<void>((r) => https.close(() => r()));
      await store.close();
      await etcd?.stop();
      await auditLog?.close();
    },
  };
}

const SCHEDULER: UserInfo = { name: 'system:kube-scheduler', groups: ['system:authenticated'] };

const CONTROLLER_MANAGER: UserInfo = {
  name: 'system:kube-controller-manager',
  groups: ['system:authenticated'],
};

/** The ServiceAccount user a controller acts as (kube-system/<its upstream name>). */
export function controllerIdentity(controller: string): UserInfo {
  if (ROOT_CREDENTIAL_CONTROLLERS.has(controller)) return CONTROLLER_MANAGER;
  const sa = CONTROLLER_SERVICE_ACCOUNTS[controller];
  if (!sa)
    throw new Error(`controller ${controller} has no ServiceAccount (add it to authz/controller-roles.ts)`);
  return {
    name: serviceAccountUser('kube-system', sa),
    groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
  };
}

/** The objects every cluster starts with, created if missing (idempotent on restart). */
async function bootstrap(api: ApiServer, port: number, log: Log): Promise<void> {
  const ensure = async (group: string, plural: string, ns: string | undefined, obj: KubeObject) => {
    const storage = api.storage(group, 'v1', plural)!;
    try {
      await storage.create(ns, obj);
      log('created', { resource: plural, namespace: ns, name: obj.metadata.name });
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 409)) throw err;
    }
  };
  for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    await ensure('', 'namespaces', undefined, { metadata: { name } });
  }
  // The system PriorityClasses, as upstream's apiserver creates them at
  // startup (pkg/registry/scheduling/rest, SystemPriorityClasses).
  for (const [name, value] of [
    ['system-node-critical', 2_000_001_000],
    ['system-cluster-critical', 2_000_000_000],
  ] as const) {
    await ensure('scheduling.k8s.io', 'priorityclasses', undefined, {
      metadata: { name },
      value,
      description: 'Used for system critical pods that must not be moved from their current node.',
    });
  }
  // k3s's default storage: the local-path StorageClass, the cluster's
  // default, served by the built-in provisioner (src/controllers/local-path-provisioner.ts).
  await ensure('storage.k8s.io', 'storageclasses', undefined, {
    metadata: {
      name: LOCAL_PATH_STORAGE_CLASS,
      annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
    },
    provisioner: LOCAL_PATH_PROVISIONER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'WaitForFirstConsumer',
    // The built-in provisioner grows a claim's volume (a directory: nothing to allocate).
    allowVolumeExpansion: true,
  } as KubeObject);
  await ensure('', 'services', 'default', {
    metadata: { name: 'kubernetes', labels: { component: 'apiserver', provider: 'kubernetes' } },
    spec: {
      type: 'ClusterIP',
      clusterIP: api.allocator.firstIP,
      clusterIPs: [api.allocator.firstIP],
      ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: port }],
      sessionAffinity: 'None',
    },
  });
}

async function migrateFromSqlite(dataDir: string, store: Store, log: Log): Promise<void> {
  const path = join(dataDir, 'server', 'db', 'state.db');
  if (!existsSync(path) || (await store.list('/registry/', { limit: 1 })).items.length > 0) return;
  const { createSqliteStore } = await import('../storage/sqlite/sqlite.ts');
  const old = await createSqliteStore({ path });
  let keys: number;
  try {
    keys = await migrateStore(old, store, { skipPrefixes: [MASTER_LEASES_PREFIX] });
  } finally {
    await old.close();
  }
  for (const ext of ['', '-wal', '-shm']) {
    if (existsSync(path + ext)) renameSync(path + ext, `${path}.migrated${ext}`);
  }
  log('migrated the SQLite datastore into etcd', { keys, kept: `${path}.migrated` });
}

export function firstServiceIP(cidr: string): string {
  const [addr = ''] = cidr.split('/');
  const parts = addr.split('.').map(Number);
  parts[3] = (parts[3] ?? 0) + 1;
  return parts.join('.');
}
