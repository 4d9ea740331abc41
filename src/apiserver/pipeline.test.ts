// The request pipeline's order (pipeline.ts): authentication, audit,
// impersonation, authorization, admission, the registry. Each stage is a
// fake here, recording when it runs; the last part drives a real ApiServer
// over HTTP, to see a refusal at one stage keep every later one from running.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ApiError } from '../api/errors.ts';
import { builtinRegistry } from '../api/resources/index.ts';
import { createMemoryStore } from '../storage/memory/memory.ts';
import type { Store } from '../storage/store.ts';
import type { AdmissionChain } from './admission/admission.ts';
import { ApiServer } from './apiserver.ts';
import type { Auditor } from './audit/audit.ts';
import type { UserInfo } from './authn/user.ts';
import type { Attributes, Authorizer } from './authz/authorizer.ts';
import type { RequestScope } from './handlers/context.ts';
import { type ApiRequest, type ApiResponse, writeJSON } from './http.ts';
import { InflightLimit } from './inflight.ts';
import { type Pipeline, serveAuthenticated, serveRequest } from './pipeline.ts';

const alice: UserInfo = { name: 'alice', groups: ['system:authenticated'] };

function fakeRequest(method: string, url: string, headers: Record<string, string> = {}): ApiRequest {
  return {
    method,
    url,
    headers,
    async *[Symbol.asyncIterator]() {},
    resume() {},
    on() {},
  };
}

function fakeResponse(): ApiResponse & { body: string; headers: Record<string, unknown> } {
  const res = {
    statusCode: 200,
    headersSent: false,
    body: '',
    headers: {} as Record<string, unknown>,
    writeHead(code: number, headers: Record<string, unknown> = {}) {
      res.statusCode = code;
      Object.assign(res.headers, headers);
      res.headersSent = true;
    },
    setHeader(name: string, value: unknown) {
      res.headers[name.toLowerCase()] = value;
    },
    write(chunk: string) {
      res.body += chunk;
    },
    end(chunk?: string | Uint8Array) {
      if (chunk !== undefined) res.body += String(chunk);
    },
    flushHeaders() {},
    destroy() {},
    on() {},
  };
  return res;
}

/** A pipeline of fakes that log each stage's call into `seen`. */
function recordingPipeline(seen: string[], allow: (a: Attributes) => boolean = () => true) {
  const authorizer: Authorizer = {
    authorize(a) {
      seen.push(`authorize ${a.user.name} ${a.verb} ${a.resource || a.path}`);
      return allow(a) ? { decision: 'allow', reason: '' } : { decision: 'noOpinion', reason: '' };
    },
  };
  const auditor = {
    begin(_info: unknown, user: UserInfo) {
      seen.push(`audit ${user.name}`);
      // As audit.ts's record: an impersonation only when the user changes, one completion.
      let done = false;
      return {
        level: 'Metadata',
        impersonated: (u: UserInfo) => u.name !== user.name && seen.push(`audit impersonated ${u.name}`),
        authorized: (d: string) => seen.push(`audit ${d}`),
        requestObject() {},
        responseObject() {},
        started() {},
        complete: (code: number) => {
          if (!done) seen.push(`audit complete ${code}`);
          done = true;
        },
      };
    },
  } as unknown as Auditor;
  const admission: AdmissionChain = {
    mutating: [
      {
        name: 'recorder',
        handles: () => true,
        async admit(a) {
          seen.push(`admit ${a.user.name} ${a.operation}`);
          return { warnings: ['admitted'] };
        },
      },
    ],
    validating: [],
  };
  const scopes: RequestScope[] = [];
  const p: Pipeline = {
    auditor,
    authorizer,
    admission,
    async serve(scope) {
      scopes.push(scope);
      seen.push(`serve ${scope.user.name}`);
      await scope.admission
        .hooks(
          { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true } as never,
          undefined,
          false,
        )
        .admit('CREATE', { metadata: { name: 'x', namespace: 'default' } }, undefined);
      writeJSON(scope.res, 201, {});
    },
    stopping: () => false,
    log: () => {},
  };
  return { p, scopes };
}

describe('the request pipeline, stage by stage', () => {
  it('answers 401 to a request without a user, before audit or authorization run', async () => {
    const seen: string[] = [];
    const { p } = recordingPipeline(seen);
    const res = fakeResponse();
    await serveRequest(p, fakeRequest('GET', '/api/v1/namespaces/default/pods'), res, () => {
      seen.push('authenticate');
      return undefined;
    });
    assert.equal(res.statusCode, 401);
    assert.equal(JSON.parse(res.body).reason, 'Unauthorized');
    assert.deepEqual(seen, ['authenticate']);
  });

  it('answers 403 to a request the authorizer does not allow, before admission or the handler run', async () => {
    const seen: string[] = [];
    const { p } = recordingPipeline(seen, () => false);
    const res = fakeResponse();
    await serveRequest(p, fakeRequest('POST', '/api/v1/namespaces/default/configmaps'), res, () => alice);
    assert.equal(res.statusCode, 403);
    assert.equal(
      JSON.parse(res.body).message,
      'configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group "" in the namespace "default"',
    );
    assert.deepEqual(seen, [
      'audit alice',
      'authorize alice create configmaps',
      'audit forbid',
      'audit complete 403',
    ]);
  });

  it('runs authentication, audit, impersonation, authorization, then the handler with admission bound to the request', async () => {
    const seen: string[] = [];
    const { p, scopes } = recordingPipeline(seen);
    const res = fakeResponse();
    const req = fakeRequest('POST', '/api/v1/namespaces/default/configmaps', { 'impersonate-user': 'bob' });
    await serveRequest(p, req, res, () => {
      seen.push('authenticate');
      return alice;
    });
    assert.equal(res.statusCode, 201);
    assert.deepEqual(seen, [
      'authenticate',
      'audit alice',
      'authorize alice impersonate users',
      'audit impersonated bob',
      'authorize bob create configmaps',
      'audit allow',
      'serve bob',
      'admit bob CREATE',
      'audit complete 201',
    ]);
    assert.equal(scopes[0]!.info.resource, 'configmaps');
    // The plugin's warning is on the response the handler wrote.
    assert.deepEqual(res.headers.warning, ['299 - "admitted"']);
  });

  it('refuses an impersonation the authorizer does not allow, before the request itself is authorized', async () => {
    const seen: string[] = [];
    const { p } = recordingPipeline(seen, (a) => a.verb !== 'impersonate');
    const res = fakeResponse();
    await serveAuthenticated(
      p,
      fakeRequest('GET', '/api/v1/pods', { 'impersonate-user': 'bob' }),
      res,
      alice,
    );
    assert.equal(res.statusCode, 403);
    assert.deepEqual(seen, ['audit alice', 'authorize alice impersonate users', 'audit complete 403']);
  });

  it('makes a write off the wire wait its turn before authorization; reads and in-process writes go by', async () => {
    const seen: string[] = [];
    const { p } = recordingPipeline(seen);
    const limit = new InflightLimit(1);
    // One write holds the only turn until the test lets it go.
    let release!: () => void;
    const held = limit.run(() => new Promise<void>((r) => (release = r)));
    const limited: Pipeline = { ...p, mutatingLimit: limit };
    const write = serveRequest(
      limited,
      fakeRequest('POST', '/api/v1/namespaces/default/configmaps'),
      fakeResponse(),
      () => alice,
    );
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen, ['audit alice']);
    assert.equal(limit.waiting, 1);
    // A read, and a write from an in-process component, are not held up.
    const read = fakeResponse();
    await serveRequest(
      limited,
      fakeRequest('GET', '/api/v1/namespaces/default/configmaps'),
      read,
      () => alice,
    );
    const inProcess = fakeResponse();
    await serveAuthenticated(
      limited,
      fakeRequest('POST', '/api/v1/namespaces/default/configmaps'),
      inProcess,
      alice,
    );
    assert.equal(read.statusCode, 201);
    assert.equal(inProcess.statusCode, 201);
    seen.length = 0;
    release();
    await held;
    await write;
    assert.deepEqual(seen.slice(0, 3), ['authorize alice create configmaps', 'audit allow', 'serve alice']);
    assert.equal(limit.running, 0);
  });

  it('answers 503 once the server is stopping, before impersonation or authorization', async () => {
    const seen: string[] = [];
    const { p } = recordingPipeline(seen);
    const res = fakeResponse();
    await serveAuthenticated({ ...p, stopping: () => true }, fakeRequest('GET', '/api/v1/pods'), res, alice);
    assert.equal(res.statusCode, 503);
    assert.deepEqual(seen, ['audit alice', 'audit complete 503']);
  });
});

describe('the request pipeline in an ApiServer', () => {
  let http: Server;
  let url: string;
  let api: ApiServer;
  const seen: string[] = [];
  const base = createMemoryStore();
  // The store, recording each create's key.
  const store: Store = Object.create(base, {
    create: {
      value: (key: string, value: string) => {
        seen.push(`store ${key}`);
        return base.create(key, value);
      },
    },
  });
  const refused = new Set<string>();

  before(async () => {
    api = new ApiServer({
      registry: builtinRegistry(),
      store,
      authorizer: {
        authorize(a) {
          if (a.resource === 'configmaps') seen.push(`authorize ${a.user.name} ${a.verb}`);
          return a.user.name === 'viewer' && a.verb !== 'get'
            ? { decision: 'noOpinion', reason: '' }
            : { decision: 'allow', reason: '' };
        },
      },
      admission: () => ({
        mutating: [
          {
            name: 'recorder',
            handles: (a) => a.resource === 'configmaps',
            async admit(a) {
              seen.push(`admit ${a.object?.metadata.name}`);
              return undefined;
            },
          },
        ],
        validating: [
          {
            name: 'refuser',
            handles: (a) => a.resource === 'configmaps',
            async validate(a) {
              seen.push(`validate ${a.object?.metadata.name}`);
              if (refused.has(a.object?.metadata.name ?? '')) throw new ApiError(403, 'Forbidden', 'refused');
              return undefined;
            },
          },
        ],
      }),
    });
    await api.start();
    await api.storage('', 'v1', 'namespaces')!.create(undefined, { metadata: { name: 'default' } });
    const users: Record<string, UserInfo> = {
      admin: { name: 'admin', groups: ['system:authenticated'] },
      viewer: { name: 'viewer', groups: ['system:authenticated'] },
    };
    http = createServer((req, res) => {
      void api.serve(req, res, (r: IncomingMessage) => users[String(r.headers['x-user'])]);
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  });

  after(async () => {
    api.stop();
    http.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
    await base.close();
  });

  const create = (user: string | undefined, name: string) =>
    fetch(`${url}/api/v1/namespaces/default/configmaps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(user ? { 'x-user': user } : {}) },
      body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } }),
    });

  it('an unauthenticated create is 401 and reaches neither the authorizer, admission nor the store', async () => {
    seen.length = 0;
    const res = await create(undefined, 'a');
    assert.equal(res.status, 401);
    assert.deepEqual(seen, []);
  });

  it('a forbidden create is 403 and reaches neither admission nor the store', async () => {
    seen.length = 0;
    const res = await create('viewer', 'b');
    assert.equal(res.status, 403);
    assert.deepEqual(seen, ['authorize viewer create']);
  });

  it('an allowed create is admitted (mutating, then validating) before the store write', async () => {
    seen.length = 0;
    const res = await create('admin', 'c');
    assert.equal(res.status, 201);
    assert.deepEqual(seen, [
      'authorize admin create',
      'admit c',
      'validate c',
      'store /registry/configmaps/default/c',
    ]);
  });

  it('a create admission refuses never reaches the store', async () => {
    seen.length = 0;
    refused.add('d');
    const res = await create('admin', 'd');
    assert.equal(res.status, 403);
    assert.deepEqual(seen, ['authorize admin create', 'admit d', 'validate d']);
  });
});
