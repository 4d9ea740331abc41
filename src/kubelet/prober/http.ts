// The HTTP probe, as upstream's pkg/probe/http: a GET to the container with
// the probe's headers, where any status from 200 to 399 is healthy. It is
// the same request the httpGet lifecycle hooks make.
//   - HTTPS is not verified (the kubelet has no way to know the pod's CA);
//   - User-Agent is kube-probe/<major.minor> and Accept is */* unless the
//     probe sets them; a Host header sets the request's host;
//   - redirects are followed (at most 10) while they stay on the same host; a
//     redirect elsewhere ends the probe as a Warning, which counts as healthy;
//   - at most 10 KiB of the body is read: it is the probe's output.
// https://github.com/kubernetes/kubernetes/blob/master/pkg/probe/http/http.go

import http from 'node:http';
import https from 'node:https';
import type { HTTPGetAction } from '../../api/types/core-v1.ts';

export type ProbeResultKind = 'Success' | 'Warning' | 'Failure';

export interface ProbeOutcome {
  result: ProbeResultKind;
  /** What a person reads in the Unhealthy event: the body, the status, or the error. */
  output: string;
}

/** The Kubernetes version the kubelet claims in the probe's User-Agent. */
export const KUBE_PROBE_USER_AGENT = 'kube-probe/1.32';

const MAX_BODY_BYTES = 10 * 1024;
const MAX_REDIRECTS = 10;

/** The probe's URL: scheme://host:port followed by the path (which may carry a query). */
export function probeURL(action: HTTPGetAction, host: string, port: number): URL {
  const scheme = (action.scheme ?? 'HTTP').toLowerCase();
  const hostPort = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  let path = action.path ?? '/';
  if (!path.startsWith('/')) path = `/${path}`;
  return new URL(`${scheme}://${hostPort}${path}`);
}

/** The request's headers: the probe's own, with User-Agent and Accept defaulted as upstream. */
export function probeHeaders(
  action: HTTPGetAction,
  userAgent = KUBE_PROBE_USER_AGENT,
): Record<string, string[]> {
  const headers: Record<string, string[]> = {};
  for (const h of action.httpHeaders ?? []) {
    if (!h.name) continue;
    const key = h.name.toLowerCase();
    headers[key] = [...(headers[key] ?? []), h.value ?? ''];
  }
  headers['user-agent'] ??= [userAgent];
  headers.accept ??= ['*/*'];
  return headers;
}

export interface HTTPResponse {
  status: number;
  location: string | undefined;
  /** The first 10 KiB. */
  body: string;
}

/** One GET without following redirects; rejects on a connection error or at the deadline (epoch ms). */
export function httpGetRequest(
  url: URL,
  headers: Record<string, string[]>,
  deadline: number,
): Promise<HTTPResponse> {
  return new Promise((resolve, reject) => {
    const { host: hostHeader, ...rest } = headers;
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(
      url,
      {
        method: 'GET',
        headers: { ...rest, ...(hostHeader?.[0] ? { host: hostHeader[0] } : {}) },
        // The pod's certificate cannot be checked: upstream sets InsecureSkipVerify.
        rejectUnauthorized: false,
        agent: false,
        timeout: Math.max(1, deadline - Date.now()),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size >= MAX_BODY_BYTES) return;
          chunks.push(chunk.subarray(0, MAX_BODY_BYTES - size));
          size += chunk.length;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            location: res.headers.location,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    const timer = setTimeout(
      () =>
        req.destroy(new Error('context deadline exceeded (Client.Timeout exceeded while awaiting headers)')),
      Math.max(1, deadline - Date.now()),
    );
    req.on('timeout', () =>
      req.destroy(new Error('context deadline exceeded (Client.Timeout exceeded while awaiting headers)')),
    );
    req.on('error', reject);
    req.on('close', () => clearTimeout(timer));
    req.end();
  });
}

/** Go's wording of a failed connection, which is what people search for. */
export function dialError(err: unknown, network: string, address: string): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ECONNREFUSED':
      return `dial ${network} ${address}: connect: connection refused`;
    case 'EHOSTUNREACH':
      return `dial ${network} ${address}: connect: no route to host`;
    case 'ENETUNREACH':
      return `dial ${network} ${address}: connect: network is unreachable`;
    case 'ETIMEDOUT':
      return `dial ${network} ${address}: i/o timeout`;
    case 'ECONNRESET':
      return `read ${network} ${address}: read: connection reset by peer`;
    default:
      return String(e?.message ?? err);
  }
}

/** One HTTP probe, finished within timeoutMs. */
export async function httpProbe(
  url: URL,
  headers: Record<string, string[]>,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const deadline = Date.now() + timeoutMs;
  let current = url;
  for (let redirects = 0; ; redirects++) {
    let res: HTTPResponse;
    try {
      res = await httpGetRequest(current, headers, deadline);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code
        ? dialError(err, 'tcp', current.host)
        : String((err as Error).message);
      return { result: 'Failure', output: `Get "${current.href}": ${why}` };
    }
    if (res.status >= 300 && res.status < 400 && res.location && redirects < MAX_REDIRECTS) {
      const next = new URL(res.location, current);
      // A redirect to another host is not followed (upstream's CheckRedirect).
      if (next.hostname === url.hostname) {
        current = next;
        continue;
      }
    }
    if (res.status >= 200 && res.status < 400) {
      if (res.status >= 300) {
        return { result: 'Warning', output: `Probe terminated redirects, Response body: ${res.body}` };
      }
      return { result: 'Success', output: res.body };
    }
    return { result: 'Failure', output: `HTTP probe failed with statuscode: ${res.status}` };
  }
}
