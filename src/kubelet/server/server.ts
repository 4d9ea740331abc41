// The kubelet's HTTPS server (upstream pkg/kubelet/server/server.go), on
// port 10250 by default: what the API server reaches when a user asks for a
// pod's logs, runs `kubectl exec`, `attach` or `port-forward`, or goes through
// nodes/proxy.
//
//   GET  /healthz
//   GET  /metrics                                the kubelet's Prometheus metrics (metrics/kubelet.ts)
//   GET  /metrics/resource                       CPU and memory of the node, pods, containers (metrics/summary.ts)
//   GET  /stats/summary                          the Summary API (metrics/summary.ts)
//   GET  /containerLogs/<ns>/<pod>/<container>   the CRI log file, decoded (logs.ts)
//   *    /exec/<ns>/<pod>[/<uid>]/<container>     upgraded, then proxied to the runtime's
//   *    /attach/<ns>/<pod>[/<uid>]/<container>   streaming server (the URL CRI's Exec,
//   *    /portForward/<ns>/<pod>[/<uid>]          Attach and PortForward return)
//
// As upstream since the kubelet stopped redirecting clients to the runtime
// (1.20), the kubelet proxies the upgrade itself: the runtime's streaming
// server listens on loopback only, and speaks SPDY/3.1 and WebSocket itself.
//
// Clients present a certificate signed by the cluster CA (upstream's x509
// authentication). The API server's kubelet client identity is let in at
// once; any other user (metrics-server, a monitoring agent) is authorized as
// upstream's kubelet does with --authorization-mode=Webhook: a
// SubjectAccessReview for verb (from the HTTP method) on nodes/<subresource>
// of this node, where the path gives the subresource (stats, metrics, log,
// proxy). Answers are cached for a while, as upstream's webhook cache.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Pod } from '../../api/types/core-v1.ts';
import { type Registry, writeMetrics } from '../../metrics/prometheus.ts';
import type { StatsProvider } from '../../metrics/summary.ts';
import { identityOf } from '../../pki/pki.ts';
import { createLog, type Log } from '../../util/log.ts';
import { proxyUpgrade, writeUpgradeResponse } from '../../util/upgrade-proxy.ts';
import { KUBERNETES_CONTAINER_NAME_LABEL, KUBERNETES_POD_UID_LABEL } from '../labels.ts';
import type { Runtime } from '../runtime/runtime.ts';
import { parseRFC3339Nano, type ReadLogsOptions, readLogs } from './logs.ts';

/** The user name the API server presents to kubelets (kubeadm's apiserver-kubelet-client certificate). */
export const KUBE_APISERVER_KUBELET_CLIENT = 'kube-apiserver-kubelet-client';

/** Upstream's default --port. */
export const DEFAULT_KUBELET_PORT = 10250;

export interface KubeletServerOptions {
  runtime: Runtime;
  /**
   * The pod of that name bound to this node, as the kubelet knows it (its pod
   * manager), with the status it last reported; undefined when there is none.
   */
  getPod(namespace: string, name: string): Pod | undefined | Promise<Pod | undefined>;
  tls: {
    /** The kubelet's serving certificate and key (PEM). */
    cert: string;
    key: string;
    /** The CA client certificates must be signed by: the cluster CA. */
    clientCA: string;
  };
  /** Certificate common names let in (default: the API server's kubelet client). */
  authorizedUsers?: string[];
  /** Listen address (default 0.0.0.0, as upstream's --address). */
  address?: string;
  /** Listen port (default 10250; 0 picks a free one). */
  port?: number;
  log?: Log;
  now?: () => Date;
  /** How often a followed log file is looked at (default 200 ms). */
  followPollMs?: number;
  /** What /metrics serves (404 when unset). */
  metrics?: Registry;
  /** What /stats/summary and /metrics/resource serve (404 when unset). */
  stats?: StatsProvider;
  /**
   * Asks the API server whether a user other than `authorizedUsers` may do
   * `verb` on nodes/<subresource> of this node (a SubjectAccessReview);
   * such users are refused when unset.
   */
  authorizeUser?: (
    user: { name: string; groups: string[] },
    verb: string,
    subresource: string,
  ) => Promise<boolean>;
}

export interface KubeletServer {
  readonly port: number;
  close(): Promise<void>;
}

/** An error with the HTTP code the kubelet answers with; the message is the body, as upstream's. */
class HttpError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

const badRequest = (message: string) => new HttpError(400, message);
const notFound = (message: string) => new HttpError(404, message);

/** "containerd://abc" → "abc" (upstream ParseContainerID). */
const runtimeContainerId = (containerID: string | undefined) => containerID?.replace(/^[^:]*:\/\//, '') ?? '';

export async function startKubeletServer(opts: KubeletServerOptions): Promise<KubeletServer> {
  const log = opts.log ?? createLog({ component: 'kubelet-server' });
  const now = opts.now ?? (() => new Date());
  const allowed = new Set(opts.authorizedUsers ?? [KUBE_APISERVER_KUBELET_CLIENT]);

  // Review answers by user, verb and subresource, kept 5 minutes when
  // allowed and 30 s when denied (upstream's webhook cache TTLs).
  const reviews = new Map<string, { allowed: boolean; until: number }>();

  /** 401 without a client certificate the CA signed, 403 when not authorized, as upstream's authn/authz filters. */
  async function authorize(req: IncomingMessage): Promise<HttpError | undefined> {
    const socket = req.socket as TLSSocket;
    const cert = socket.authorized ? socket.getPeerCertificate() : undefined;
    if (!cert?.subject) return new HttpError(401, 'Unauthorized');
    const { user, groups } = identityOf(cert.subject as { CN?: string | string[]; O?: string | string[] });
    if (allowed.has(user)) return undefined;
    const path = new URL(req.url ?? '/', 'https://kubelet').pathname;
    const verb = VERBS[req.method ?? 'GET'] ?? (req.method ?? 'get').toLowerCase();
    const subresource = subresourceOf(path);
    if (opts.authorizeUser) {
      const key = `${user}\n${groups.join(',')}\n${verb}\n${subresource}`;
      const t = Date.now();
      let answer = reviews.get(key);
      if (!answer || answer.until < t) {
        try {
          const ok = await opts.authorizeUser({ name: user, groups }, verb, subresource);
          answer = { allowed: ok, until: t + (ok ? 300_000 : 30_000) };
          if (reviews.size > 1000) reviews.clear();
          reviews.set(key, answer);
        } catch (err) {
          log.warn('authorizing a kubelet API request failed', { user, error: String(err) });
          return new HttpError(
            500,
            `Authorization error (user=${user}, verb=${verb}, resource=nodes, subresource(s)=[${subresource}])`,
          );
        }
      }
      if (answer.allowed) return undefined;
    }
    return new HttpError(
      403,
      `Forbidden (user=${user}, verb=${verb}, resource=nodes, subresource(s)=[${subresource}])`,
    );
  }

  async function pod(ns: string, name: string, uid?: string): Promise<Pod> {
    const p = await opts.getPod(ns, name);
    if (!p || (uid && p.metadata.uid !== uid)) throw notFound(`pod "${name}" does not exist`);
    return p;
  }

  /** Which container's log file: upstream's validateContainerLogStatus, with its messages. */
  function logContainerId(p: Pod, container: string, previous: boolean): string {
    const podName = p.metadata.name ?? '';
    const statuses = [
      ...(p.status?.initContainerStatuses ?? []),
      ...(p.status?.containerStatuses ?? []),
      ...(p.status?.ephemeralContainerStatuses ?? []),
    ];
    const s = statuses.find((c) => c.name === container);
    if (!s) throw badRequest(`container "${container}" in pod "${podName}" is not available`);
    const last = s.lastState?.terminated;
    if (previous) {
      if (!last?.containerID)
        throw badRequest(`previous terminated container "${container}" in pod "${podName}" not found`);
      return last.containerID;
    }
    const { running, terminated, waiting } = s.state ?? {};
    if (running) return s.containerID ?? '';
    if (terminated) {
      if (terminated.containerID) return terminated.containerID;
      if (last?.containerID) return last.containerID;
      throw badRequest(`container "${container}" in pod "${podName}" is terminated`);
    }
    if (last) {
      if (!last.containerID) throw badRequest(`container "${container}" in pod "${podName}" is terminated`);
      return last.containerID;
    }
    const reason = waiting?.reason ?? '';
    const why =
      reason === 'ErrImagePull'
        ? "image can't be pulled"
        : reason === 'ImagePullBackOff'
          ? 'trying and failing to pull image'
          : reason;
    throw badRequest(`container "${container}" in pod "${podName}" is waiting to start: ${why}`);
  }

  function logOptions(q: URLSearchParams): ReadLogsOptions {
    const int = (name: string) => {
      const v = q.get(name);
      if (v === null || v === '') return undefined;
      const n = Number(v);
      if (!Number.isInteger(n)) throw badRequest(`${name}: invalid value ${JSON.stringify(v)}`);
      return n;
    };
    const o: ReadLogsOptions = { follow: isTrue(q.get('follow')), timestamps: isTrue(q.get('timestamps')) };
    const tailLines = int('tailLines');
    if (tailLines !== undefined) {
      if (tailLines < 0) throw badRequest('tailLines: Invalid value: must be greater than or equal to 0');
      o.tailLines = tailLines;
    }
    const limitBytes = int('limitBytes');
    if (limitBytes !== undefined) {
      if (limitBytes < 1) throw badRequest('limitBytes: Invalid value: must be greater than 0');
      o.limitBytes = limitBytes;
    }
    const sinceSeconds = int('sinceSeconds');
    const sinceTime = q.get('sinceTime');
    if (sinceSeconds !== undefined && sinceTime)
      throw badRequest('at most one of `sinceTime` or `sinceSeconds` may be specified');
    if (sinceSeconds !== undefined) {
      if (sinceSeconds < 1) throw badRequest('sinceSeconds: Invalid value: must be greater than 0');
      o.sinceNs = BigInt(now().getTime() - sinceSeconds * 1000) * 1_000_000n;
    } else if (sinceTime) {
      const ns = parseRFC3339Nano(sinceTime);
      if (ns === undefined) throw badRequest(`sinceTime: invalid value ${JSON.stringify(sinceTime)}`);
      o.sinceNs = ns;
    }
    return o;
  }

  async function containerLogs(
    req: IncomingMessage,
    res: ServerResponse,
    parts: string[],
    q: URLSearchParams,
  ) {
    const [ns = '', name = '', container = ''] = parts;
    if (!ns || !name || !container) throw badRequest('expected /containerLogs/<namespace>/<pod>/<container>');
    const p = await pod(ns, name);
    const all = [
      ...(p.spec?.initContainers ?? []),
      ...(p.spec?.containers ?? []),
      ...(p.spec?.ephemeralContainers ?? []),
    ];
    if (!all.some((c) => c.name === container))
      throw notFound(`container "${container}" not found in pod "${name}"`);
    const readOpts = logOptions(q);
    const id = runtimeContainerId(logContainerId(p, container, isTrue(q.get('previous'))));
    const status = await opts.runtime.containerStatus(id).catch((err: unknown) => {
      throw badRequest(`failed to get container status ${JSON.stringify(id)}: ${String(err)}`);
    });
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    try {
      await readLogs(
        status.logPath,
        readOpts,
        (chunk) => {
          if (res.write(chunk)) return;
          return new Promise<void>((resolve) => {
            res.once('drain', resolve);
            res.once('close', resolve);
          });
        },
        {
          signal: abort.signal,
          ...(opts.followPollMs !== undefined ? { pollMs: opts.followPollMs } : {}),
          running: async () => {
            const s = await opts.runtime.containerStatus(id).catch(() => undefined);
            return s?.state === 'CONTAINER_RUNNING';
          },
        },
      );
    } catch (err) {
      // The file went away (the container was removed): what was written stands.
      log.debug('reading container log failed', { container: id, error: String(err) });
    }
    res.end();
    void req;
  }

  /** The running container named in an exec or attach path (upstream findContainer). */
  async function runningContainer(parts: string[]): Promise<string> {
    const [ns = '', name = ''] = parts;
    const uid = parts.length >= 4 ? parts[2] : undefined;
    const container = parts[parts.length - 1] ?? '';
    if (!ns || !name || parts.length < 3) throw badRequest('expected /<verb>/<namespace>/<pod>/<container>');
    const p = await pod(ns, name, uid);
    const s = [
      ...(p.status?.initContainerStatuses ?? []),
      ...(p.status?.containerStatuses ?? []),
      ...(p.status?.ephemeralContainerStatuses ?? []),
    ].find((c) => c.name === container);
    const id = s?.state?.running ? runtimeContainerId(s.containerID) : await runningInRuntime(p, container);
    if (!id) throw notFound(`container not found (${JSON.stringify(container)})`);
    return id;
  }

  // Upstream's findContainer asks the runtime, not the pod's status: a
  // client that saw the status say running (kubectl debug -i attaching to
  // its new container) can be faster than this kubelet's own copy of it.
  async function runningInRuntime(p: Pod, container: string): Promise<string> {
    const running = await opts.runtime.listContainers({
      state: 'CONTAINER_RUNNING',
      labelSelector: {
        [KUBERNETES_POD_UID_LABEL]: p.metadata.uid ?? '',
        [KUBERNETES_CONTAINER_NAME_LABEL]: container,
      },
    });
    return running.sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))[0]?.id ?? '';
  }

  async function podSandboxId(parts: string[]): Promise<string> {
    const [ns = '', name = ''] = parts;
    if (!ns || !name) throw badRequest('expected /portForward/<namespace>/<pod>');
    const p = await pod(ns, name, parts[2]);
    const sandboxes = await opts.runtime.listPodSandbox({
      state: 'SANDBOX_READY',
      labelSelector: { [KUBERNETES_POD_UID_LABEL]: p.metadata.uid ?? '' },
    });
    const newest = sandboxes.sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))[0];
    if (!newest) throw notFound(`pod not found (${JSON.stringify(`${name}_${ns}`)})`);
    return newest.id;
  }

  /** The runtime's streaming URL for an exec, attach or portForward request. */
  async function streamingURL(verb: string, parts: string[], q: URLSearchParams): Promise<string> {
    // The API server passes PodExecOptions on as upstream's kubelet
    // parameters: input/output/error/tty and command (streamParams).
    const flag = (n: string) => isTrue(q.get(n));
    if (verb === 'exec') {
      const cmd = q.getAll('command');
      if (cmd.length === 0) throw badRequest('you must specify at least 1 command');
      const containerId = await runningContainer(parts);
      return opts.runtime.exec({
        containerId,
        cmd,
        tty: flag('tty'),
        stdin: flag('input'),
        stdout: flag('output'),
        stderr: flag('error'),
      });
    }
    if (verb === 'attach') {
      const containerId = await runningContainer(parts);
      return opts.runtime.attach({
        containerId,
        tty: flag('tty'),
        stdin: flag('input'),
        stdout: flag('output'),
        stderr: flag('error'),
      });
    }
    const ports = (q.get('port') ?? '')
      .split(',')
      .filter((p) => p !== '')
      .map(Number);
    if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535))
      throw badRequest(`invalid port in ${JSON.stringify(q.get('port'))}`);
    return opts.runtime.portForward(await podSandboxId(parts), ports);
  }

  const route = (req: IncomingMessage) => {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    const [verb = '', ...parts] = url.pathname
      .split('/')
      .filter((s) => s !== '')
      .map(decodeURIComponent);
    return { url, verb, parts };
  };

  const server: Server = createServer(
    {
      key: opts.tls.key,
      cert: opts.tls.cert,
      ca: opts.tls.clientCA,
      requestCert: true,
      rejectUnauthorized: false,
      // Followed logs stay open as long as the container runs.
      requestTimeout: 0,
    },
    (req, res) => {
      const { url, verb, parts } = route(req);
      const handle = async () => {
        const denied = await authorize(req);
        if (denied) return writeError(res, denied);
        if (verb === 'healthz' && parts.length === 0) {
          res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end('ok');
          return;
        }
        if (verb === 'metrics' && parts.length === 0 && opts.metrics && req.method === 'GET')
          return writeMetrics(opts.metrics, res);
        if (opts.stats && req.method === 'GET') {
          if (verb === 'metrics' && parts.length === 1 && parts[0] === 'resource') {
            const text = await opts.stats.resourceMetrics();
            res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
            res.end(text);
            return;
          }
          if (verb === 'stats' && parts.length === 1 && parts[0] === 'summary') {
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify(await opts.stats.summary()));
            return;
          }
        }
        if (verb === 'containerLogs' && (req.method === 'GET' || req.method === 'HEAD'))
          return containerLogs(req, res, parts, url.searchParams);
        if (STREAMING.has(verb)) throw badRequest('Upgrade request required');
        throw notFound('404 page not found');
      };
      handle().catch((err: unknown) => writeError(res, toHttpError(err)));
    },
  );
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const { url, verb, parts } = route(req);
    authorize(req)
      .then((denied) => {
        if (denied) {
          writeUpgradeResponse(socket, denied.code, denied.message, 'text/plain; charset=utf-8');
          return;
        }
        if (!STREAMING.has(verb)) {
          writeUpgradeResponse(socket, 404, '404 page not found', 'text/plain');
          return;
        }
        return upgradeStream(req, socket, head, url, verb, parts);
      })
      .catch(() => socket.destroy());
  });
  const upgradeStream = (
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    url: URL,
    verb: string,
    parts: string[],
  ) =>
    streamingURL(verb, parts, url.searchParams)
      .then((streaming) => {
        log.debug('proxying stream to the runtime', { verb, path: url.pathname });
        proxyUpgrade(req, socket, head, {
          target: new URL(streaming),
          onDialError: (err) =>
            writeUpgradeResponse(
              socket,
              500,
              `error dialing the runtime's streaming server: ${err.message}`,
              'text/plain',
            ),
        });
      })
      .catch((err: unknown) => {
        const e = toHttpError(err);
        writeUpgradeResponse(socket, e.code, e.message, 'text/plain; charset=utf-8');
      });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? DEFAULT_KUBELET_PORT, opts.address ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  log('kubelet server listening', { port });
  return {
    port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const STREAMING = new Set(['exec', 'attach', 'portForward']);

/** The authorization verb of each HTTP method (upstream's kubelet auth filter). */
const VERBS: Record<string, string> = {
  GET: 'get',
  HEAD: 'get',
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

const isTrue = (v: string | null) => v === 'true' || v === '1';

/** The nodes/<subresource> upstream's kubelet authorizes a path as (server.go's auth filter). */
function subresourceOf(path: string): string {
  if (path.startsWith('/stats')) return 'stats';
  if (path.startsWith('/metrics')) return 'metrics';
  if (path.startsWith('/logs')) return 'log';
  return 'proxy';
}

function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  // A runtime NotFound (the container went away meanwhile) is a 404, anything else a 500 (streaming.WriteError).
  const code = (err as { code?: string }).code === 'NotFound' ? 404 : 500;
  return new HttpError(code, err instanceof Error ? err.message : String(err));
}

function writeError(res: ServerResponse, err: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(err.code, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(`${err.message}\n`);
}
