// A test harness: an ApiServer over the memory store, behind a plain HTTP
// listener on loopback, driven with fetch. Real HTTP, real handler chain; only
// TLS and client-certificate authentication are left to the e2e tests.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import { builtinRegistry } from '../api/resources/index.ts';
import { celValidationRules } from '../apiextensions/validation-rules.ts';
import { createMemoryStore } from '../storage/memory/memory.ts';
import type { Store } from '../storage/store.ts';
import { ApiServer, type ApiServerOptions, type UserInfo } from './apiserver.ts';
import { bearerAuthentication } from './authn/bearer.ts';
import { generateServiceAccountKey } from './authn/serviceaccount-token.ts';

export interface TestServer {
  api: ApiServer;
  store: Store;
  url: string;
  request(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<TestResponse>;
  close(): Promise<void>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

export interface TestServerOptions {
  authorizer?: ApiServerOptions['authorizer'];
  ruleResolver?: ApiServerOptions['ruleResolver'];
  proxyAllowAddress?: ApiServerOptions['proxyAllowAddress'];
  admission?: ApiServerOptions['admission'];
  audit?: ApiServerOptions['audit'];
  metrics?: ApiServerOptions['metrics'];
  /** Serve /debug/pprof/ (--enable-pprof). */
  profiling?: boolean;
  /** metrics.k8s.io's answers (a fake metrics-server, for the HPA's tests). */
  resourceMetrics?: ApiServerOptions['resourceMetrics'];
  /** Who a request is from (default: an admin in system:masters); tests of authorization choose by header. */
  user?: (req: IncomingMessage) => UserInfo;
}

const ADMIN: UserInfo = { name: 'test-admin', groups: ['system:masters'] };
export const TEST_ISSUER = 'https://kubernetes.default.svc.cluster.local';

export async function startTestServer(
  store: Store = createMemoryStore(),
  opts: TestServerOptions = {},
): Promise<TestServer> {
  const bearer = bearerAuthentication({
    serviceAccountKey: generateServiceAccountKey(),
    issuer: TEST_ISSUER,
    get: (resource, namespace, name) =>
      api.storage('', 'v1', resource)!.get(resource === 'nodes' ? undefined : namespace, name),
  });
  const api: ApiServer = new ApiServer({
    registry: builtinRegistry(),
    store,
    bookmarkIntervalMs: 200,
    tokens: bearer.tokens,
    validationRules: celValidationRules,
    ...(opts.authorizer ? { authorizer: opts.authorizer } : {}),
    ...(opts.ruleResolver ? { ruleResolver: opts.ruleResolver } : {}),
    ...(opts.proxyAllowAddress ? { proxyAllowAddress: opts.proxyAllowAddress } : {}),
    ...(opts.admission ? { admission: opts.admission } : {}),
    ...(opts.audit ? { audit: opts.audit } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.resourceMetrics ? { resourceMetrics: opts.resourceMetrics } : {}),
    ...(opts.profiling ? { profiling: true } : {}),
  });
  await api.start();
  for (const name of ['default', 'kube-system']) {
    await api.storage('', 'v1', 'namespaces')!.create(undefined, { metadata: { name } });
  }
  const http: Server = createServer((req, res) => {
    void api.handle(req, res, opts.user?.(req) ?? ADMIN);
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  return {
    api,
    store,
    url,
    async request(method, path, body, headers = {}) {
      const init: RequestInit = { method, headers: { ...headers } };
      if (body !== undefined) {
        init.body =
          typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body);
        (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
      }
      const res = await fetch(`${url}${path}`, init);
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {}
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
    async close() {
      api.stop();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
      await store.close();
    },
  };
}
