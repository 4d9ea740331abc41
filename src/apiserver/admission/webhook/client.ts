// Calls one webhook: POSTs an AdmissionReview over HTTPS to its URL or to an
// endpoint of its Service, trusting its caBundle (else the system's roots),
// within its timeoutSeconds. Every failure becomes a WebhookCallError whose
// message reads as upstream's ("failed to call webhook: Post ...: ..."),
// and no failure can outlive the timeout.

import { Agent, request } from 'node:https';
import { isIP } from 'node:net';

export class WebhookCallError extends Error {}

/** Where a webhook is served: a URL, or a Service resolved to one of its endpoints. */
export interface WebhookTarget {
  /** The URL as upstream names it in errors (https://name.namespace.svc:port/path). */
  url: string;
  /** Where to connect: an endpoint address (Service) or the URL's host. */
  host: string;
  port: number;
  path: string;
  /** The TLS server name the certificate must carry. */
  serverName: string;
  /** PEM roots; undefined for the system's. */
  ca?: string;
}

// One keep-alive agent per CA, so a webhook called per request does not pay
// a TLS handshake each time (upstream's client cache does the same).
const agents = new Map<string, Agent>();
function agentFor(ca: string | undefined): Agent {
  const key = ca ?? '';
  let agent = agents.get(key);
  if (!agent) {
    agent = new Agent({ keepAlive: true, maxSockets: 64, ...(ca ? { ca } : {}) });
    agents.set(key, agent);
  }
  return agent;
}

const MAX_RESPONSE_BYTES = 3 * 1024 * 1024;

/** POSTs `body` and returns the parsed JSON answer; throws WebhookCallError. */
export function callWebhook(target: WebhookTarget, body: unknown, timeoutSeconds: number): Promise<unknown> {
  const url = `${target.url}?timeout=${timeoutSeconds}s`;
  const fail = (why: string) =>
    new WebhookCallError(`failed to call webhook: Post ${JSON.stringify(url)}: ${why}`);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err: Error | undefined, value?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value);
    };
    const req = request(
      {
        host: target.host,
        port: target.port,
        path: `${target.path}?timeout=${timeoutSeconds}s`,
        method: 'POST',
        agent: agentFor(target.ca),
        servername: isIP(target.serverName) ? undefined : target.serverName,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy();
            done(fail('response body too large'));
          } else chunks.push(c);
        });
        res.on('error', (err) => done(fail(err.message)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            done(fail(`the server responded with status ${status}${text ? `: ${text.slice(0, 200)}` : ''}`));
            return;
          }
          try {
            done(undefined, JSON.parse(text));
          } catch (err) {
            done(new WebhookCallError(`received invalid webhook response: ${(err as Error).message}`));
          }
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      done(fail('context deadline exceeded'));
    }, timeoutSeconds * 1000);
    req.on('error', (err) => done(fail(errorText(err, target))));
    req.end(payload);
  });
}

/** Go's dial and TLS errors, roughly: what the user needs is the address and the cause. */
function errorText(err: NodeJS.ErrnoException, target: WebhookTarget): string {
  const addr = `${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`;
  if (err.code === 'ECONNREFUSED') return `dial tcp ${addr}: connect: connection refused`;
  if (err.code === 'EHOSTUNREACH') return `dial tcp ${addr}: connect: no route to host`;
  if (err.code === 'ENOTFOUND') return `dial tcp: lookup ${target.host}: no such host`;
  if (err.code?.startsWith('ERR_TLS') || /certificate|self.signed|altnames/i.test(err.message))
    return `tls: failed to verify certificate: ${err.message}`;
  return err.message;
}
