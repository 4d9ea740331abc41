// The request pipeline: every request passes these stages in this order,
// as upstream's handler chain (k8s.io/apiserver pkg/server/config.go,
// DefaultBuildHandlerChain). Each stage is one call below, to a small
// interface whose implementations live in the stage's folder:
//
//   1. authentication  authn/authenticator.ts  who sent it: client certificate, then bearer
//                                              tokens (static file, ServiceAccount JWT,
//                                              bootstrap); no credential, or a bad one: 401
//   2. audit           audit/audit.ts          a record per request, at the policy's level
//   3. impersonation   authn/impersonation.ts  kubectl --as: act as another user, each part
//                                              allowed by the authorizer (verb impersonate)
//      flow control    inflight.ts             writes off the wire run a few dozen at a time,
//                                              the rest wait their turn (as APF queues them)
//   4. authorization   authz/filter.ts         the Authorizer (authz/authorizer.ts): the union
//                                              server/authorization.ts builds of Node
//                                              (authz/node.ts) and RBAC (authz/rbac.ts): 403
//   5. admission       admission/request.ts    the chain (admission/chain.ts builds it, one file
//                                              per plugin), bound to this request
//   6. the registry    handlers/route.ts       the handler, which reads or writes through the
//                                              resource's REST storage (rest.ts): defaults,
//                                              validation, the store
//
// Around them all, metrics.ts counts and times every request
// (apiserver_request_total, apiserver_request_duration_seconds) and the
// ones in flight.
//
// Admission does its work inside step 6's writes, at upstream's points:
// mutating plugins after defaulting, validating ones after the strategy's
// validation, both before the store (rest.ts AdmissionHooks). Around the
// stages: the request's deadline (request-deadline.ts), 503 once the server
// is stopping, and one log line per request.

import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiError } from '../api/errors.ts';
import { writeUpgradeResponse } from '../util/upgrade-proxy.ts';
import type { AdmissionChain } from './admission/admission.ts';
import { requestAdmission } from './admission/request.ts';
import { type Auditor, captureResponse } from './audit/audit.ts';
import { impersonate } from './authn/impersonation.ts';
import type { UserInfo } from './authn/user.ts';
import type { Authorizer } from './authz/authorizer.ts';
import { authorizeRequest } from './authz/filter.ts';
import type { RequestScope } from './handlers/context.ts';
import {
  type ApiRequest,
  type ApiResponse,
  indentJSON,
  toStatus,
  warningRecorder,
  writeStatus,
} from './http.ts';
import type { InflightLimit } from './inflight.ts';
import { STREAMING_SUBRESOURCES } from './kubelet-proxy.ts';
import type { RequestMetrics } from './metrics.ts';
import { isLongRunning, requestTimeoutMs, serveWithin } from './request-deadline.ts';
import { isPrettyPrint, parseRequestInfo } from './request-info.ts';

export type Logger = (msg: string, fields?: Record<string, unknown>) => void;

/** 1. Authentication: the request's user, or undefined when it brings no credential that checks out. */
export type Authenticate<R> = (req: R) => Promise<UserInfo | undefined> | UserInfo | undefined;

/** The stages after authentication, as one ApiServer has them. */
export interface Pipeline {
  /** 2. Audit; no records when unset. */
  readonly auditor: Auditor | undefined;
  /** 3 and 4. Decides every request, and every part of an impersonation. */
  readonly authorizer: Authorizer;
  /** 5. The plugins every write passes through. */
  readonly admission: AdmissionChain;
  /** Flow control: how many writes off the wire run at once (unset: no limit). */
  readonly mutatingLimit?: InflightLimit;
  /** apiserver_request_total and the rest (metrics.ts); none recorded when unset. */
  readonly metrics?: RequestMetrics;
  /** 6. Serves an authorized request through the registry (handlers/route.ts). */
  serve(scope: RequestScope): Promise<void>;
  /** True once the server stops: a new request gets 503. */
  stopping(): boolean;
  readonly log: Logger;
}

const unauthorized = () => new ApiError(401, 'Unauthorized', 'Unauthorized').status;

/** A request off the wire: authenticated here (1), then the rest of the pipeline. Never throws. */
export async function serveRequest<R extends ApiRequest>(
  p: Pipeline,
  req: R,
  res: ApiResponse,
  authenticate: Authenticate<R>,
): Promise<void> {
  try {
    const user = await authenticate(req);
    // Anonymous requests are refused, as k3s's --anonymous-auth=false.
    if (!user) return writeStatus(res, unauthorized());
    return await serveAuthenticated(p, req, res, user, { fromWire: true });
  } catch (err) {
    writeStatus(res, toStatus(err));
  }
}

const MUTATING_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/**
 * Stages 2 to 6 for a request whose user is known (the in-process
 * transport's, or one step 1 found). Never throws. Flow control applies to
 * requests `fromWire` only: the in-process components (controllers,
 * scheduler, this node's agent) are upstream's exempt and system levels,
 * and a write can wait on one of theirs (ServiceAccount admission waits
 * for the controller's default ServiceAccount).
 */
export async function serveAuthenticated(
  p: Pipeline,
  req: ApiRequest,
  res: ApiResponse,
  user: UserInfo,
  { fromWire = false }: { fromWire?: boolean } = {},
): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://skiff');
  const query = url.searchParams;
  const info = parseRequestInfo(req.method ?? 'GET', url.pathname, query);
  const started = performance.now();
  const pretty = isPrettyPrint(query, req.headers['user-agent']);
  if (pretty) indentJSON(res);
  // 2. Audit: RequestReceived now, ResponseComplete in `finally`.
  const audit = p.auditor?.begin(info, user, {
    uri: req.url ?? '/',
    sourceIP: (req as { socket?: { remoteAddress?: string } }).socket?.remoteAddress,
    userAgent: req.headers['user-agent'],
  });
  if (audit?.level === 'RequestResponse') captureResponse(res, audit);
  const mutating = MUTATING_VERBS.has(info.verb);
  const inflight = p.metrics !== undefined && !isLongRunning(info);
  if (inflight) p.metrics!.started(mutating);
  try {
    if (p.stopping()) throw new ApiError(503, 'ServiceUnavailable', 'the API server is shutting down');
    // 3. Impersonation.
    user = impersonate(req.headers, user, p.authorizer);
    audit?.impersonated(user);
    const authorizedAndServed = async () => {
      // 4. Authorization: 403 unless allowed.
      authorizeRequest(p.authorizer, info, user, query, audit);
      if (audit && isLongRunning(info)) audit.started(200);
      const serve = (r: ApiResponse) => {
        const warn = warningRecorder(r);
        // 5. Admission, bound to this request; 6. the handler and the registry.
        const admission = requestAdmission(p.admission, { user, warn, audit });
        return p.serve({ req, res: r, info, query, user, admission, audit, warn });
      };
      const timeoutMs = isLongRunning(info) ? undefined : requestTimeoutMs(query);
      if (timeoutMs === undefined) await serve(res);
      else
        await serveWithin(res, timeoutMs, (gated) => {
          if (pretty) indentJSON(gated);
          return serve(gated);
        });
    };
    // Flow control: a write off the wire waits for its turn.
    if (fromWire && p.mutatingLimit && mutating && !isLongRunning(info))
      await p.mutatingLimit.run(authorizedAndServed, () => gone(req, res));
    else await authorizedAndServed();
  } catch (err) {
    const status = toStatus(err);
    if (status.code >= 500)
      p.log('request failed', {
        path: url.pathname,
        verb: info.verb,
        error: String(err),
        stack: (err as Error).stack,
      });
    writeStatus(res, status);
    audit?.complete(status.code, status);
  } finally {
    audit?.complete(res.statusCode);
    if (p.metrics) {
      if (inflight) p.metrics.finished(mutating);
      const request = { dryRun: query.get('dryRun'), contentType: req.headers['content-type'] };
      p.metrics.record(info, request, res.statusCode, (performance.now() - started) / 1000);
    }
    if (info.verb !== 'watch') {
      p.log('request', {
        verb: info.verb,
        path: url.pathname,
        user: user.name,
        code: res.statusCode,
        ms: Math.round((performance.now() - started) * 10) / 10,
      });
    }
  }
}

/** The client hung up while its request waited: nobody is left to answer. */
const gone = (req: ApiRequest, res: ApiResponse): boolean =>
  (req as { destroyed?: boolean }).destroyed === true || (res as { destroyed?: boolean }).destroyed === true;

/** Hands an authorized upgrade on: the kubelet's exec, attach or port-forward. */
export type Connect = (req: IncomingMessage, socket: Duplex, head: Buffer) => Promise<void> | void;

/** An upgrade off the wire (exec, attach, port-forward): authenticated here (1), then serveAuthenticatedUpgrade. */
export async function serveUpgradeRequest(
  p: Pick<Pipeline, 'authorizer'>,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  authenticate: Authenticate<IncomingMessage>,
  connect: Connect,
): Promise<void> {
  try {
    const user = await authenticate(req);
    if (!user) return writeUpgradeResponse(socket, 401, JSON.stringify(unauthorized()));
    return await serveAuthenticatedUpgrade(p, req, socket, head, user, connect);
  } catch {
    socket.destroy();
  }
}

/**
 * exec, attach and port-forward (SPDY or WebSocket upgrades) for an
 * authenticated user: impersonated (3) and authorized (4) as any request
 * is, then connected. A WebSocket upgrade is a GET, so it must also be
 * allowed to create the subresource, as upstream's
 * AuthorizePodWebsocketUpgradeCreatePermission (default since 1.31): a
 * user who may only read pods/exec cannot run commands through it.
 */
async function serveAuthenticatedUpgrade(
  p: Pick<Pipeline, 'authorizer'>,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  user: UserInfo,
  connect: Connect,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://skiff');
  const info = parseRequestInfo(req.method ?? 'GET', url.pathname, url.searchParams);
  try {
    user = impersonate(req.headers, user, p.authorizer);
    authorizeRequest(p.authorizer, info, user, url.searchParams);
    if (info.verb === 'get' && STREAMING_SUBRESOURCES.has(info.subresource))
      authorizeRequest(p.authorizer, { ...info, verb: 'create' }, user, url.searchParams);
  } catch (err) {
    const status = toStatus(err);
    return writeUpgradeResponse(socket, status.code, JSON.stringify(status));
  }
  return connect(req, socket, head);
}
