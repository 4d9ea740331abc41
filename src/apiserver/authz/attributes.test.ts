import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRequestInfo } from '../request-info.ts';
import { requestAttributes } from './attributes.ts';

const bob = { name: 'bob', groups: [] };
const attrs = (method: string, url: string) => {
  const u = new URL(url, 'https://x');
  return requestAttributes(parseRequestInfo(method, u.pathname, u.searchParams), bob, u.searchParams);
};

describe('request attributes', () => {
  it('resource requests: verb, group, namespace, resource, subresource, name', () => {
    const a = attrs('GET', '/apis/apps/v1/namespaces/team/deployments/web/scale');
    assert.deepEqual(
      {
        verb: a.verb,
        apiGroup: a.apiGroup,
        apiVersion: a.apiVersion,
        namespace: a.namespace,
        resource: a.resource,
        subresource: a.subresource,
        name: a.name,
      },
      {
        verb: 'get',
        apiGroup: 'apps',
        apiVersion: 'v1',
        namespace: 'team',
        resource: 'deployments',
        subresource: 'scale',
        name: 'web',
      },
    );
    assert.equal(attrs('GET', '/api/v1/pods?watch=true').verb, 'watch');
    assert.equal(attrs('GET', '/api/v1/pods').namespace, '');
    assert.equal(attrs('DELETE', '/api/v1/namespaces/team/pods').verb, 'deletecollection');
    assert.equal(attrs('POST', '/api/v1/namespaces/team/pods/web/eviction').verb, 'create');
  });

  it('a list or watch pinned by metadata.name is about that object', () => {
    const a = attrs('GET', '/api/v1/namespaces/team/secrets?fieldSelector=metadata.name%3Dtoken&watch=1');
    assert.equal(a.verb, 'watch');
    assert.equal(a.name, 'token');
    const b = attrs('GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1');
    assert.equal(b.name, '');
    assert.deepEqual(b.fieldSelector, [{ field: 'spec.nodeName', op: '=', value: 'n1' }]);
    assert.equal(attrs('GET', '/api/v1/pods?fieldSelector=%3D%3D%3D').name, '', 'malformed: narrows nothing');
  });

  it('paths: the lowercased method', () => {
    const a = attrs('GET', '/version');
    assert.equal(a.isResourceRequest, false);
    assert.equal(a.path, '/version');
    assert.equal(a.verb, 'get');
  });
});
