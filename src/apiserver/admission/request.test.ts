// The admission chain bound to one request (request.ts): the attributes each
// plugin sees, and the warnings that reach the response.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResourceType } from '../../api/registry.ts';
import type { AuditRecord } from '../audit/audit.ts';
import type { AdmissionAttributes, AdmissionChain } from './admission.ts';
import { requestAdmission } from './request.ts';

const configmaps = {
  group: '',
  version: 'v1',
  kind: 'ConfigMap',
  plural: 'configmaps',
  namespaced: true,
} as ResourceType;
const user = { name: 'alice', groups: ['system:authenticated'] };

function chain(seen: Array<[string, AdmissionAttributes]>): AdmissionChain {
  return {
    mutating: [
      {
        name: 'm',
        handles: () => true,
        async admit(a) {
          seen.push(['admit', a]);
          return { warnings: ['from m'] };
        },
      },
    ],
    validating: [
      {
        name: 'v',
        handles: () => true,
        async validate(a) {
          seen.push(['validate', a]);
          return { warnings: ['from v', 'from m'] };
        },
      },
    ],
  };
}

describe('requestAdmission', () => {
  it("gives each phase the request's user and the written object's kind, namespace and name", async () => {
    const seen: Array<[string, AdmissionAttributes]> = [];
    const warnings: string[] = [];
    const annotations: string[] = [];
    const audit = {
      annotate: (k: string, v: string) => annotations.push(`${k}=${v}`),
    } as unknown as AuditRecord;
    const admission = requestAdmission(chain(seen), { user, warn: (w) => warnings.push(w), audit });
    const hooks = admission.hooks(configmaps, 'status', true);
    const object = { metadata: { name: 'cm', namespace: 'team' } };
    const old = { metadata: { name: 'cm', namespace: 'team', resourceVersion: '1' } };
    await hooks.admit('UPDATE', object, old);
    await hooks.validate('UPDATE', object, old);
    assert.deepEqual(
      seen.map(([phase]) => phase),
      ['admit', 'validate'],
    );
    const { addAuditAnnotation, ...attrs } = seen[0]![1];
    assert.deepEqual(attrs, {
      operation: 'UPDATE',
      group: '',
      version: 'v1',
      kind: 'ConfigMap',
      resource: 'configmaps',
      subresource: 'status',
      namespace: 'team',
      name: 'cm',
      object,
      oldObject: old,
      user,
      dryRun: true,
    });
    // Each warning is handed on; the response's recorder drops repeats.
    assert.deepEqual(warnings, ['from m', 'from v', 'from m']);
    // A plugin's audit annotation goes onto the request's audit record.
    addAuditAnnotation?.('m/key', 'value');
    assert.deepEqual(annotations, ['m/key=value']);
  });

  it('names a DELETE by the old object, and a cluster-scoped kind has no namespace', async () => {
    const seen: Array<[string, AdmissionAttributes]> = [];
    const admission = requestAdmission(chain(seen), { user, warn: () => {} });
    const namespaces = { ...configmaps, kind: 'Namespace', plural: 'namespaces', namespaced: false };
    await admission
      .hooks(namespaces, undefined, false)
      .validate('DELETE', undefined, { metadata: { name: 'team', namespace: 'ignored' } });
    const a = seen[0]![1];
    assert.equal(a.name, 'team');
    assert.equal(a.namespace, '');
    assert.equal(a.subresource, '');
    assert.equal(a.object, undefined);
  });

  it('admits a subresource object through both phases at once', async () => {
    const seen: Array<[string, AdmissionAttributes]> = [];
    const admission = requestAdmission(chain(seen), { user, warn: () => {} });
    await admission.admitObject({
      operation: 'CREATE',
      group: 'policy',
      version: 'v1',
      kind: 'Eviction',
      resource: 'pods',
      subresource: 'eviction',
      name: 'p',
      dryRun: false,
    });
    assert.deepEqual(
      seen.map(([phase, a]) => [phase, a.kind, a.namespace, a.user.name]),
      [
        ['admit', 'Eviction', '', 'alice'],
        ['validate', 'Eviction', '', 'alice'],
      ],
    );
  });
});
