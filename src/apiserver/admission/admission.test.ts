import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../../api/errors.ts';
import {
  type AdmissionAttributes,
  type MutatingPlugin,
  runAdmission,
  type ValidatingPlugin,
} from './admission.ts';

const attrs = (): AdmissionAttributes => ({
  operation: 'CREATE',
  group: '',
  version: 'v1',
  kind: 'Pod',
  resource: 'pods',
  subresource: '',
  namespace: 'default',
  name: 'p',
  object: { metadata: { name: 'p' } },
  user: { name: 'bob', groups: [] },
  dryRun: false,
});

describe('admission chain', () => {
  it('runs mutating plugins in order, then validating ones, collecting warnings and annotations', async () => {
    const order: string[] = [];
    const label: MutatingPlugin = {
      name: 'label',
      handles: (a) => a.kind === 'Pod',
      async admit(a) {
        order.push('label');
        a.object!.metadata.labels = { added: 'yes' };
        return { warnings: ['labelled'] };
      },
    };
    const skipped: MutatingPlugin = {
      name: 'nodes-only',
      handles: (a) => a.kind === 'Node',
      admit: async () => assert.fail(),
    };
    const check: ValidatingPlugin = {
      name: 'check',
      handles: () => true,
      async validate(a) {
        order.push('check');
        assert.equal(a.object?.metadata.labels?.added, 'yes', 'sees the mutated object');
        a.addAuditAnnotation?.('check.example.com/decision', 'ok');
        return undefined;
      },
    };
    const r = await runAdmission(attrs(), [label, skipped], [check]);
    assert.deepEqual(order, ['label', 'check']);
    assert.deepEqual(r, { warnings: ['labelled'], auditAnnotations: { 'check.example.com/decision': 'ok' } });
  });

  it("audit annotations reach the request's record, refusing or not; the first value of a key stays", async () => {
    const recorded: Record<string, string> = {};
    const request = {
      ...attrs(),
      addAuditAnnotation: (k: string, v: string) => {
        recorded[k] = v;
      },
    };
    const note: MutatingPlugin = {
      name: 'note',
      handles: () => true,
      async admit(a) {
        a.addAuditAnnotation?.('note.example.com/seen', 'first');
        a.addAuditAnnotation?.('note.example.com/seen', 'second');
        return undefined;
      },
    };
    const refuse: ValidatingPlugin = {
      name: 'refuse',
      handles: () => true,
      async validate(a) {
        a.addAuditAnnotation?.('refuse.example.com/why', 'policy');
        throw new ApiError(403, 'Forbidden', 'pods "p" is forbidden: policy');
      },
    };
    await assert.rejects(runAdmission(request, [note], [refuse]), (e: ApiError) => e.status.code === 403);
    assert.deepEqual(recorded, { 'note.example.com/seen': 'first', 'refuse.example.com/why': 'policy' });
  });

  it('refuses an audit annotation key without a domain prefix, as upstream', async () => {
    const bad: ValidatingPlugin = {
      name: 'bad',
      handles: () => true,
      async validate(a) {
        a.addAuditAnnotation?.('decision', 'ok');
        return undefined;
      },
    };
    await assert.rejects(runAdmission(attrs(), [], [bad]), /annotation key "decision" has invalid format/);
  });

  it('a refusal stops the chain with its Status', async () => {
    const no: ValidatingPlugin = {
      name: 'no',
      handles: () => true,
      validate: async () => {
        throw new ApiError(403, 'Forbidden', 'pods "p" is forbidden: no');
      },
    };
    const never: ValidatingPlugin = {
      name: 'never',
      handles: () => true,
      validate: async () => assert.fail(),
    };
    await assert.rejects(runAdmission(attrs(), [], [no, never]), (e: ApiError) => e.status.code === 403);
  });
});
