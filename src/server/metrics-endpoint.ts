// The /metrics endpoints of the components that share the server process
// with the API server: the controller manager's on 127.0.0.1:10257 and the
// scheduler's on 127.0.0.1:10259, HTTPS, as kube-controller-manager and
// kube-scheduler serve them (k3s binds both to loopback the same way).
// Upstream delegates authentication and authorization of these endpoints to
// the API server (TokenReview, SubjectAccessReview); here the API server's
// own authenticator and authorizer are in the same process, so they are
// asked directly: `get` on the non-resource path /metrics, which the
// system:monitoring ClusterRole allows. /healthz is open to all, as
// upstream's --authorization-always-allow-paths.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { ApiError } from '../api/errors.ts';
import type { UserInfo } from '../apiserver/authn/user.ts';
import type { Authorizer } from '../apiserver/authz/authorizer.ts';
import { authorizeRequest } from '../apiserver/authz/filter.ts';
import { toStatus, writeStatus } from '../apiserver/http.ts';
import { parseRequestInfo } from '../apiserver/request-info.ts';
import { type Registry, writeMetrics } from '../metrics/prometheus.ts';
import { listenForMetrics } from '../metrics/serve.ts';
import type { Log } from '../util/log.ts';

export interface MetricsEndpointOptions {
  /** Which component, for the log (controller-manager, scheduler). */
  component: string;
  host: string;
  port: number;
  tls: { key: string; cert: string; ca: string };
  /** The registry served, or a getter for one replaced over time (a component restarted on each leader term). */
  registry: Registry | (() => Registry);
  authenticate(req: IncomingMessage): Promise<UserInfo | undefined>;
  authorizer: Authorizer;
  log: Log;
}

export interface MetricsEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves the component's /metrics until closed. A port already taken (a
 * second server on this machine, as the e2e tests start) is logged and
 * skipped: the component runs on without its endpoint.
 */
export async function serveMetricsEndpoint(
  opts: MetricsEndpointOptions,
): Promise<MetricsEndpoint | undefined> {
  const server: Server = createServer(
    { key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca, requestCert: true, rejectUnauthorized: false },
    (req, res) => void serve(opts, req, res),
  );
  return listenForMetrics(server, opts, 'https');
}

async function serve(opts: MetricsEndpointOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'https://skiff');
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    if (url.pathname !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD'))
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const user = await opts.authenticate(req);
    if (!user) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    authorizeRequest(
      opts.authorizer,
      parseRequestInfo('GET', url.pathname, url.searchParams),
      user,
      url.searchParams,
    );
    await writeMetrics(typeof opts.registry === 'function' ? opts.registry() : opts.registry, res);
  } catch (err) {
    writeStatus(res, toStatus(err));
  }
}
