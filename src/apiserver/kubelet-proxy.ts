// The API server's side of streaming: pods/log, pods/exec, pods/attach,
// pods/portforward and nodes/proxy go to the kubelet of the pod's node, as
// upstream's pod subresource REST (pkg/registry/core/pod/rest/log.go and
// subresources.go, with the locations from pkg/registry/core/pod/strategy.go)
// and node proxy REST do.
//
// The kubelet is found from its Node: the first InternalIP (then Hostname,
// ExternalIP) of status.addresses, and status.daemonEndpoints.kubeletEndpoint.Port.
// Upstream's default order puts Hostname first; Skiff prefers the InternalIP,
// as kubeadm and k3s setups configure (--kubelet-preferred-address-types),
// since a node's hostname need not resolve.
//
// The API server connects with its kubelet client certificate. As upstream
// without --kubelet-certificate-authority, the kubelet's serving certificate
// is only checked when a CA is configured: remote kubelets may serve a
// self-signed one.

import type { IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import { ApiError, badRequest, type Status, type StatusReason } from '../api/errors.ts';
import type { KubeObject } from '../api/meta.ts';
import type { Node, Pod } from '../api/types/core-v1.ts';
import { proxyUpgrade, writeUpgradeResponse } from '../util/upgrade-proxy.ts';
import { forward, streamBody } from './forward.ts';
import type { ApiRequest, ApiResponse } from './http.ts';
import { isTrue, parseRequestInfo } from './request-info.ts';
import { translateRemoteCommand, translationFor, tunnelPortForward } from './stream-translator.ts';

export interface KubeletClientConfig {
  /** The client certificate and key presented to kubelets (CN kube-apiserver-kubelet-client). */
  cert: string;
  key: string;
  /** Verifies kubelets' serving certificates when given (upstream --kubelet-certificate-authority). */
  ca?: string;
}

export interface KubeletProxyDeps {
  getPod(namespace: string, name: string): Promise<KubeObject>;
  getNode(name: string): Promise<KubeObject>;
  client?: KubeletClientConfig;
}

/** Upstream's default kubelet port, when a Node does not say (--kubelet-port). */
const DEFAULT_KUBELET_PORT = 10250;

/** The pod subresources that are proxied to the kubelet as upgraded streams. */
export const STREAMING_SUBRESOURCES = new Set(['exec', 'attach', 'portforward']);

export interface KubeletProxy {
  /** GET pods/log (not an upgrade): the kubelet's /containerLogs, streamed back. */
  podLog(res: ApiResponse, namespace: string, name: string, query: URLSearchParams): Promise<void>;
  /** nodes/proxy/<path> without an upgrade. */
  nodeProxy(
    req: ApiRequest,
    res: ApiResponse,
    node: string,
    path: string,
    query: URLSearchParams,
  ): Promise<void>;
  /**
   * An upgrade request (exec, attach, portforward, nodes/proxy) from an
   * authenticated user: proxied to the kubelet, or answered with a Status.
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void>;
}

export function createKubeletProxy(deps: KubeletProxyDeps): KubeletProxy {
  const tls = () => {
    if (!deps.client) {
      throw new ApiError(503, 'ServiceUnavailable', 'the API server has no kubelet client certificate');
    }
    return {
      cert: deps.client.cert,
      key: deps.client.key,
      ...(deps.client.ca ? { ca: deps.client.ca } : { rejectUnauthorized: false }),
    };
  };

  /** https://<address>:<port> of a node's kubelet (upstream NodeConnectionInfoGetter). */
  async function kubeletURL(nodeName: string): Promise<URL> {
    const node = (await deps.getNode(nodeName)) as Node;
    const addresses = node.status?.addresses ?? [];
    const address = ['InternalIP', 'Hostname', 'ExternalIP']
      .map((type) => addresses.find((a) => a.type === type)?.address)
      .find((a) => a);
    if (!address) {
      throw new ApiError(
        500,
        'InternalError',
        `no preferred addresses found; known addresses: ${JSON.stringify(addresses)}`,
      );
    }
    const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port || DEFAULT_KUBELET_PORT;
    return new URL(`https://${address.includes(':') ? `[${address}]` : address}:${port}`);
  }

  async function pod(ns: string, name: string): Promise<Pod> {
    return (await deps.getPod(ns, name)) as Pod;
  }

  /** The kubelet URL for a pod's log, or undefined for a pod with no node yet (an empty log, upstream). */
  async function logLocation(ns: string, name: string, query: URLSearchParams): Promise<URL | undefined> {
    const p = await pod(ns, name);
    const container = validateContainer(query.get('container') ?? '', p);
    const nodeName = p.spec?.nodeName;
    if (!nodeName) return undefined;
    const params = new URLSearchParams();
    for (const flag of ['follow', 'previous', 'timestamps'])
      if (isTrue(query.get(flag))) params.set(flag, 'true');
    for (const n of ['sinceSeconds', 'sinceTime', 'tailLines', 'limitBytes']) {
      const v = query.get(n);
      if (v !== null && v !== '') params.set(n, v);
    }
    validateLogOptions(params);
    const url = await kubeletURL(nodeName);
    url.pathname = `/containerLogs/${enc(ns)}/${enc(name)}/${enc(container)}`;
    url.search = params.toString();
    return url;
  }

  /** Where an exec, attach or portforward goes on the kubelet (upstream streamLocation). */
  async function streamLocation(ns: string, name: string, sub: string, query: URLSearchParams): Promise<URL> {
    const p = await pod(ns, name);
    const container = sub === 'portforward' ? '' : validateContainer(query.get('container') ?? '', p);
    const nodeName = p.spec?.nodeName;
    if (!nodeName) throw badRequest(`pod ${name} does not have a host assigned`);
    const params = new URLSearchParams();
    if (sub === 'portforward') {
      const ports = query.getAll('ports').flatMap((v) => v.split(','));
      if (ports.length > 0) params.set('port', ports.join(','));
    } else {
      // PodExecOptions / PodAttachOptions as the kubelet's query (streamParams).
      for (const [option, param] of [
        ['stdin', 'input'],
        ['stdout', 'output'],
        ['stderr', 'error'],
        ['tty', 'tty'],
      ] as const) {
        if (isTrue(query.get(option))) params.set(param, '1');
      }
      if (sub === 'exec') for (const c of query.getAll('command')) params.append('command', c);
    }
    const url = await kubeletURL(nodeName);
    url.pathname =
      sub === 'portforward'
        ? `/portForward/${enc(ns)}/${enc(name)}`
        : `/${sub}/${enc(ns)}/${enc(name)}/${enc(container)}`;
    url.search = params.toString();
    return url;
  }

  /** A non-2xx kubelet answer becomes a Status with its code and its body as the message (GenericHttpResponseChecker). */
  function kubeletError(code: number, body: string): ApiError {
    const reason: StatusReason =
      (
        {
          400: 'BadRequest',
          401: 'Unauthorized',
          403: 'Forbidden',
          404: 'NotFound',
          503: 'ServiceUnavailable',
        } as Record<number, StatusReason>
      )[code] ?? 'InternalError';
    let message = body.trim();
    try {
      const status = JSON.parse(message) as Partial<Status>;
      if (status.kind === 'Status' && status.message) message = status.message;
    } catch {}
    return new ApiError(code, reason, message || `the server responded with the status code ${code}`);
  }

  return {
    async podLog(res, ns, name, query) {
      const location = await logLocation(ns, name, query);
      if (!location) {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end();
        return;
      }
      const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
        const r = httpsRequest(location, { method: 'GET', ...tls() } satisfies RequestOptions, resolve);
        r.on('error', (err) =>
          reject(new ApiError(500, 'InternalError', `Get "${location.href}": ${err.message}`)),
        );
        r.end();
        res.on('close', () => r.destroy());
      });
      const code = upstream.statusCode ?? 500;
      if (code < 200 || code > 299) {
        let body = '';
        for await (const chunk of upstream) {
          body += chunk;
          if (body.length > 4096) break;
        }
        upstream.destroy();
        throw kubeletError(code, body);
      }
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private' });
      res.flushHeaders();
      res.on('close', () => upstream.destroy());
      await streamBody(upstream, res);
    },

    async nodeProxy(req, res, node, path, query) {
      const url = await kubeletURL(node);
      url.pathname = `/${path}`;
      url.search = query.toString();
      await forward(req, res, url, { tls: tls() });
    },

    async upgrade(req, socket, head) {
      const url = new URL(req.url ?? '/', 'https://skiff');
      const info = parseRequestInfo(req.method ?? 'GET', url.pathname, url.searchParams);
      try {
        let target: URL;
        if (
          info.group === '' &&
          info.version === 'v1' &&
          info.resource === 'pods' &&
          info.namespace &&
          STREAMING_SUBRESOURCES.has(info.subresource)
        ) {
          target = await streamLocation(info.namespace, info.name, info.subresource, url.searchParams);
          // kubectl 1.30+'s WebSocket protocols are translated to the SPDY the runtime speaks.
          const translation = translationFor(req, info.subresource);
          if (translation === 'v5') {
            const q = url.searchParams;
            await translateRemoteCommand(req, socket, head, target, {
              stdin: isTrue(q.get('stdin')),
              stdout: isTrue(q.get('stdout')),
              stderr: isTrue(q.get('stderr')),
              tty: isTrue(q.get('tty')),
              tls: tls(),
            });
            return;
          }
          if (translation === 'tunnel') {
            await tunnelPortForward(req, socket, head, target, tls());
            return;
          }
        } else if (
          info.group === '' &&
          info.version === 'v1' &&
          info.resource === 'nodes' &&
          /^proxy(\/|$)/.test(info.subresource)
        ) {
          target = await kubeletURL(info.name);
          target.pathname = `/${info.subresource.replace(/^proxy\/?/, '')}`;
          target.search = url.search;
        } else {
          throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
        }
        proxyUpgrade(req, socket, head, {
          target,
          tls: tls(),
          dropHeaders: ['authorization'],
          onDialError: (err) => {
            const status = new ApiError(500, 'InternalError', `error dialing backend: ${err.message}`).status;
            writeUpgradeResponse(socket, status.code, JSON.stringify(status));
          },
        });
      } catch (err) {
        const status =
          err instanceof ApiError ? err.status : new ApiError(500, 'InternalError', String(err)).status;
        writeUpgradeResponse(socket, status.code, JSON.stringify(status));
      }
    },
  };
}

/** Upstream validateContainer: the named container must be in the pod; with one container it may be left out. */
export function validateContainer(container: string, pod: Pod): string {
  const name = pod.metadata.name ?? '';
  const all = [
    ...(pod.spec?.initContainers ?? []),
    ...(pod.spec?.containers ?? []),
    ...(pod.spec?.ephemeralContainers ?? []),
  ].map((c) => c.name ?? '');
  if (!container) {
    const containers = pod.spec?.containers ?? [];
    if (containers.length === 1) return containers[0]!.name ?? '';
    if (containers.length === 0) throw badRequest(`a container name must be specified for pod ${name}`);
    throw badRequest(`a container name must be specified for pod ${name}, choose one of: [${all.join(' ')}]`);
  }
  if (!all.includes(container)) throw badRequest(`container ${container} is not valid for pod ${name}`);
  return container;
}

/** The checks of upstream ValidatePodLogOptions, as a 422 on PodLogOptions. */
function validateLogOptions(params: URLSearchParams): void {
  const causes: string[] = [];
  const num = (n: string) => (params.has(n) ? Number(params.get(n)) : undefined);
  const tail = num('tailLines');
  if (tail !== undefined && (!Number.isInteger(tail) || tail < 0))
    causes.push('tailLines: Invalid value: must be greater than or equal to 0');
  const limit = num('limitBytes');
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1))
    causes.push('limitBytes: Invalid value: must be greater than 0');
  const since = num('sinceSeconds');
  if (since !== undefined && (!Number.isInteger(since) || since < 1))
    causes.push('sinceSeconds: Invalid value: must be greater than 0');
  if (params.has('sinceSeconds') && params.has('sinceTime'))
    causes.push('sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified');
  if (causes.length > 0) {
    throw new ApiError(422, 'Invalid', `PodLogOptions "" is invalid: ${causes.join(', ')}`);
  }
}

const enc = encodeURIComponent;
