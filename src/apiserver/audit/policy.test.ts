import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRequestInfo } from '../request-info.ts';
import { evaluate, parsePolicy } from './policy.ts';

const policy = parsePolicy(`
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: [system:kube-proxy]
  verbs: [watch]
- level: None
  nonResourceURLs: [/healthz*, /version]
- level: Metadata
  resources:
  - group: ""
    resources: [secrets, configmaps]
- level: Request
  resources:
  - group: ""
    resources: [pods/log, "*/status"]
- level: RequestResponse
  namespaces: [team]
  omitStages: [ResponseStarted]
- level: Metadata
`);
const info = (method: string, path: string) => parseRequestInfo(method, path, new URLSearchParams());
const bob = { name: 'bob', groups: ['dev'] };

describe('audit policy', () => {
  it('the first matching rule decides: users and verbs, URLs, resources and subresources, namespaces', () => {
    const proxy = { name: 'system:kube-proxy', groups: [] };
    assert.equal(evaluate(policy, info('GET', '/api/v1/services'), proxy).level, 'Metadata');
    const watch = parseRequestInfo('GET', '/api/v1/services', new URLSearchParams('watch=true'));
    assert.equal(evaluate(policy, watch, proxy).level, 'None');
    assert.equal(evaluate(policy, info('GET', '/healthz/ready'), bob).level, 'None');
    assert.equal(evaluate(policy, info('GET', '/api/v1/namespaces/team/secrets/s'), bob).level, 'Metadata');
    assert.equal(evaluate(policy, info('GET', '/api/v1/namespaces/x/pods/p/log'), bob).level, 'Request');
    assert.equal(evaluate(policy, info('PUT', '/api/v1/namespaces/x/pods/p/status'), bob).level, 'Request');
    const team = evaluate(policy, info('POST', '/apis/apps/v1/namespaces/team/deployments'), bob);
    assert.deepEqual(team, {
      level: 'RequestResponse',
      omitStages: ['RequestReceived', 'ResponseStarted'],
      omitManagedFields: false,
    });
    assert.equal(evaluate(policy, info('GET', '/apis/apps/v1/deployments'), bob).level, 'Metadata');
  });

  it('refuses what kube-apiserver refuses', () => {
    assert.throws(
      () => parsePolicy('kind: Policy\napiVersion: v1\nrules: []'),
      /not an audit.k8s.io\/v1 Policy/,
    );
    assert.throws(() => parsePolicy('kind: Policy\napiVersion: audit.k8s.io/v1\nrules: []'), /no rules/);
    assert.throws(
      () => parsePolicy('kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: Loud}]'),
      /rules\[0\].level: "Loud" is not one of/,
    );
  });
});
