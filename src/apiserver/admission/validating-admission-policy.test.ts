// ValidatingAdmissionPolicy in the API server's write path: a policy
// limiting Deployment replicas with a param ConfigMap, messageExpression,
// variables, matchConditions, the binding's validationActions and
// matchResources, and parameterNotFoundAction.

import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../testing.ts';

const ARV1 = '/apis/admissionregistration.k8s.io/v1';

const deployment = (name: string, replicas: number, labels: Record<string, string> = {}) => ({
  metadata: { name, labels },
  spec: {
    replicas,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    },
  },
});

describe('ValidatingAdmissionPolicy', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
    await srv.request('POST', '/api/v1/namespaces/default/configmaps', {
      metadata: { name: 'limits' },
      data: { maxReplicas: '3' },
    });
  });
  after(() => srv.close());
  beforeEach(async () => {
    await srv.request('DELETE', `${ARV1}/validatingadmissionpolicies`);
    await srv.request('DELETE', `${ARV1}/validatingadmissionpolicybindings`);
    await srv.request('DELETE', '/apis/apps/v1/namespaces/default/deployments');
  });

  async function policy(spec: Record<string, unknown>, binding: Record<string, unknown>): Promise<void> {
    const p = await srv.request('POST', `${ARV1}/validatingadmissionpolicies`, {
      metadata: { name: 'replicas.example.com' },
      spec: {
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: ['apps'],
              apiVersions: ['v1'],
              operations: ['CREATE', 'UPDATE'],
              resources: ['deployments'],
            },
          ],
        },
        ...spec,
      },
    });
    assert.equal(p.status, 201, p.text);
    const b = await srv.request('POST', `${ARV1}/validatingadmissionpolicybindings`, {
      metadata: { name: 'replicas-binding' },
      spec: { policyName: 'replicas.example.com', validationActions: ['Deny'], ...binding },
    });
    assert.equal(b.status, 201, b.text);
  }

  const create = (d: unknown) => srv.request('POST', '/apis/apps/v1/namespaces/default/deployments', d);

  it('limits replicas with a param ConfigMap, and says why with messageExpression', async () => {
    await policy(
      {
        paramKind: { apiVersion: 'v1', kind: 'ConfigMap' },
        variables: [{ name: 'max', expression: 'int(params.data.maxReplicas)' }],
        validations: [
          {
            expression: 'object.spec.replicas <= variables.max',
            messageExpression: '"replicas must be at most " + string(variables.max)',
          },
        ],
      },
      { paramRef: { name: 'limits', namespace: 'default', parameterNotFoundAction: 'Deny' } },
    );
    assert.equal((await create(deployment('small', 2))).status, 201);
    const big = await create(deployment('big', 5));
    assert.equal(big.status, 422);
    assert.equal(big.body.reason, 'Invalid');
    assert.equal(
      big.body.message,
      `deployments.apps "big" is invalid: : ValidatingAdmissionPolicy 'replicas.example.com' with binding ` +
        `'replicas-binding' denied request: replicas must be at most 3`,
    );
    // An update is judged too.
    const small = await srv.request('GET', '/apis/apps/v1/namespaces/default/deployments/small');
    small.body.spec.replicas = 9;
    const up = await srv.request('PUT', '/apis/apps/v1/namespaces/default/deployments/small', small.body);
    assert.equal(up.status, 422);
  });

  it('a missing param denies or allows as parameterNotFoundAction says', async () => {
    await policy(
      {
        paramKind: { apiVersion: 'v1', kind: 'ConfigMap' },
        validations: [{ expression: 'object.spec.replicas <= int(params.data.maxReplicas)' }],
      },
      { paramRef: { name: 'absent', namespace: 'default', parameterNotFoundAction: 'Deny' } },
    );
    const denied = await create(deployment('p1', 1));
    assert.equal(denied.status, 422);
    assert.match(
      denied.body.message,
      /no params found for policy binding with `Deny` parameterNotFoundAction/,
    );
    const b = await srv.request('GET', `${ARV1}/validatingadmissionpolicybindings/replicas-binding`);
    b.body.spec.paramRef.parameterNotFoundAction = 'Allow';
    assert.equal(
      (await srv.request('PUT', `${ARV1}/validatingadmissionpolicybindings/replicas-binding`, b.body)).status,
      200,
    );
    assert.equal((await create(deployment('p2', 1))).status, 201);
  });

  it('Warn warns instead of refusing; the default message names the expression', async () => {
    await policy(
      { validations: [{ expression: 'object.spec.replicas <= 1' }] },
      { validationActions: ['Warn'] },
    );
    const res = await create(deployment('w', 2));
    assert.equal(res.status, 201);
    assert.match(
      res.headers.get('warning') ?? '',
      /Validation failed for ValidatingAdmissionPolicy 'replicas.example.com' with binding 'replicas-binding': failed expression: object.spec.replicas <= 1/,
    );
  });

  it("matchConditions and the binding's matchResources narrow what is judged", async () => {
    await policy(
      {
        matchConditions: [{ name: 'not-exempt', expression: '!("exempt" in object.metadata.labels)' }],
        validations: [{ expression: 'object.spec.replicas <= 1', message: 'too many', reason: 'Forbidden' }],
      },
      { matchResources: { objectSelector: { matchExpressions: [{ key: 'tier', operator: 'Exists' }] } } },
    );
    assert.equal((await create(deployment('untiered', 5))).status, 201);
    assert.equal((await create(deployment('exempt', 5, { tier: 'a', exempt: 'y' }))).status, 201);
    const res = await create(deployment('tiered', 5, { tier: 'a' }));
    assert.equal(res.status, 403);
    assert.equal(
      res.body.message,
      `deployments.apps "tiered" is forbidden: ValidatingAdmissionPolicy 'replicas.example.com' with binding 'replicas-binding' denied request: too many`,
    );
  });

  it('an expression error fails closed under failurePolicy Fail and open under Ignore', async () => {
    await policy({ validations: [{ expression: 'object.spec.nope > 1' }] }, {});
    const res = await create(deployment('e1', 1));
    assert.equal(res.status, 422);
    assert.match(res.body.message, /expression 'object.spec.nope > 1' resulted in error: No such key: nope/);
    const p = await srv.request('GET', `${ARV1}/validatingadmissionpolicies/replicas.example.com`);
    p.body.spec.failurePolicy = 'Ignore';
    assert.equal(
      (await srv.request('PUT', `${ARV1}/validatingadmissionpolicies/replicas.example.com`, p.body)).status,
      200,
    );
    assert.equal((await create(deployment('e2', 1))).status, 201);
  });

  it('refuses a policy whose expression does not compile, and prints its columns', async () => {
    const bad = await srv.request('POST', `${ARV1}/validatingadmissionpolicies`, {
      metadata: { name: 'bad' },
      spec: {
        matchConstraints: {
          resourceRules: [{ apiGroups: ['*'], apiVersions: ['*'], operations: ['*'], resources: ['*'] }],
        },
        validations: [{ expression: 'object.spec.replicas <=' }],
      },
    });
    assert.equal(bad.status, 422);
    assert.equal(bad.body.details.causes[0].field, 'spec.validations[0].expression');
    await policy(
      { paramKind: { apiVersion: 'v1', kind: 'ConfigMap' }, validations: [{ expression: 'true' }] },
      {
        paramRef: { name: 'limits', namespace: 'default', parameterNotFoundAction: 'Deny' },
      },
    );
    const table = await srv.request('GET', `${ARV1}/validatingadmissionpolicies`, undefined, {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
    });
    assert.deepEqual(
      table.body.columnDefinitions.map((c: { name: string }) => c.name),
      ['Name', 'Validations', 'ParamKind', 'Age'],
    );
    assert.deepEqual(table.body.rows[0].cells.slice(0, 3), ['replicas.example.com', 1, 'v1/ConfigMap']);
  });

  it('type-checks the expressions against the matched kinds into status.typeChecking', async () => {
    await policy(
      {
        validations: [
          { expression: 'object.spec.replicas <= 5 && object.metadata.name != ""' },
          { expression: 'object.spec.replicass <= 5' },
        ],
      },
      {},
    );
    const p = await srv.request('GET', `${ARV1}/validatingadmissionpolicies/replicas.example.com`);
    assert.equal(p.body.status.observedGeneration, 1);
    assert.deepEqual(p.body.status.typeChecking.expressionWarnings, [
      {
        fieldRef: 'spec.validations[1].expression',
        warning: "apps/v1, Kind=Deployment: ERROR: <input>:1:1: undefined field 'replicass'",
      },
    ]);
    p.body.spec.validations = [{ expression: 'object.spec.replicas <= 5' }];
    const fixed = await srv.request(
      'PUT',
      `${ARV1}/validatingadmissionpolicies/replicas.example.com`,
      p.body,
    );
    assert.equal(fixed.status, 200, fixed.text);
    assert.equal(fixed.body.status.observedGeneration, 2);
    assert.deepEqual(fixed.body.status.typeChecking, {});
  });
});
