// authorizeRequest (filter.ts): the request's attributes go to the
// authorizer; anything but allow is upstream's 403, and the decision is on
// the audit record.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isApiError } from '../../api/errors.ts';
import type { AuditRecord } from '../audit/audit.ts';
import { parseRequestInfo } from '../request-info.ts';
import type { Attributes, Authorization, Authorizer } from './authorizer.ts';
import { authorizeRequest } from './filter.ts';

const bob = { name: 'bob', groups: ['dev', 'system:authenticated'] };

function authorizer(answer: Authorization, seen: Attributes[] = []): Authorizer {
  return {
    authorize(a) {
      seen.push(a);
      return answer;
    },
  };
}

function auditRecord(decisions: string[]): AuditRecord {
  return {
    authorized: (d: string, reason: string) => decisions.push(`${d}:${reason}`),
  } as unknown as AuditRecord;
}

describe('authorizeRequest', () => {
  it('passes what the request asks to the authorizer, and returns when it allows', () => {
    const seen: Attributes[] = [];
    const query = new URLSearchParams('fieldSelector=metadata.name=s1');
    const info = parseRequestInfo('GET', '/api/v1/namespaces/kube-system/secrets', query);
    const decisions: string[] = [];
    authorizeRequest(
      authorizer({ decision: 'allow', reason: 'RBAC: allowed' }, seen),
      info,
      bob,
      query,
      auditRecord(decisions),
    );
    assert.equal(seen.length, 1);
    const a = seen[0]!;
    assert.deepEqual(
      [a.user.name, a.verb, a.apiGroup, a.resource, a.namespace, a.name],
      ['bob', 'list', '', 'secrets', 'kube-system', 's1'],
    );
    assert.deepEqual(decisions, ['allow:RBAC: allowed']);
  });

  for (const decision of ['deny', 'noOpinion'] as const) {
    it(`is upstream's 403 when the authorizer says ${decision}`, () => {
      const info = parseRequestInfo(
        'DELETE',
        '/api/v1/namespaces/kube-system/secrets/s1',
        new URLSearchParams(),
      );
      const decisions: string[] = [];
      assert.throws(
        () =>
          authorizeRequest(
            authorizer({ decision, reason: '' }),
            info,
            bob,
            new URLSearchParams(),
            auditRecord(decisions),
          ),
        (err) =>
          isApiError(err) &&
          err.status.code === 403 &&
          err.status.message ===
            'secrets "s1" is forbidden: User "bob" cannot delete resource "secrets" in API group "" in the namespace "kube-system"',
      );
      assert.deepEqual(decisions, ['forbid:']);
    });
  }

  it('refuses a non-resource path with its own message', () => {
    const info = parseRequestInfo('GET', '/metrics', new URLSearchParams());
    assert.throws(
      () =>
        authorizeRequest(authorizer({ decision: 'noOpinion', reason: '' }), info, bob, new URLSearchParams()),
      (err) => isApiError(err) && err.status.message === 'forbidden: User "bob" cannot get path "/metrics"',
    );
  });
});
