import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Authorizer } from '../../apiserver/authz/authorizer.ts';
import { startTestServer, type TestServer } from '../../apiserver/testing.ts';
import { issueCertificate, parseCertificateRequest } from '../../pki/csr.ts';
import { ensureCA } from '../../pki/pki.ts';
import { makeTestCSR, requestField } from '../../pki/testing.ts';
import { certificateSigningRequests, csrCondition, validateSignerName } from './certificates.ts';

const BASE = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
const { csr: PEM } = makeTestCSR('/O=dev/CN=bob');

const csrObject = (name: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'certificates.k8s.io/v1',
  kind: 'CertificateSigningRequest',
  metadata: { name },
  spec: {
    request: requestField(PEM),
    signerName: 'kubernetes.io/kube-apiserver-client',
    usages: ['client auth'],
    ...spec,
  },
});

describe('CertificateSigningRequest validation', () => {
  const validate = (obj: unknown, old?: unknown) =>
    certificateSigningRequests.validate!(obj as never, old as never).map((e) => `${e.field}: ${e.message}`);

  it('accepts a well-formed request', () => {
    assert.deepEqual(validate(csrObject('ok')), []);
  });

  it('refuses a request that is not a PEM CERTIFICATE REQUEST', () => {
    const errs = validate(csrObject('x', { request: Buffer.from('hello').toString('base64') }));
    assert.deepEqual(errs, [
      'spec.request: Invalid value: []byte{0x68, 0x65, 0x6c, 0x6c, 0x6f}: PEM block type must be CERTIFICATE REQUEST',
    ]);
  });

  it('checks usages, signerName and expirationSeconds as upstream', () => {
    assert.deepEqual(validate(csrObject('x', { usages: [] })), ['spec.usages: Required value']);
    assert.match(
      validate(csrObject('x', { usages: ['client auth', 'flying'] }))[0]!,
      /^spec\.usages\[1\]: Unsupported value: "flying": supported values: "any", "cert sign"/,
    );
    assert.deepEqual(validate(csrObject('x', { usages: ['client auth', 'client auth'] })), [
      'spec.usages[1]: Duplicate value: "client auth"',
    ]);
    assert.deepEqual(validate(csrObject('x', { signerName: '' })), ['spec.signerName: Required value']);
    assert.deepEqual(validate(csrObject('x', { signerName: 'nodomain' })), [
      'spec.signerName: Invalid value: "nodomain": must be a fully qualified domain and path of the form \'example.com/signer-name\'',
    ]);
    assert.deepEqual(validate(csrObject('x', { signerName: 'kubernetes.io/legacy-unknown' })), [
      'spec.signerName: Invalid value: "kubernetes.io/legacy-unknown": the legacy signerName is not allowed via this API version',
    ]);
    assert.deepEqual(validate(csrObject('x', { expirationSeconds: 599 })), [
      'spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)',
    ]);
    assert.deepEqual(validate(csrObject('x', { expirationSeconds: 600 })), []);
  });

  it('validates signer names like apimachinery', () => {
    assert.deepEqual(validateSignerName('f', 'example.com/my-signer'), []);
    assert.deepEqual(validateSignerName('f', 'example.com/ns.name'), []);
    assert.deepEqual(
      validateSignerName('f', 'localhost/signer').map((e) => e.message),
      ['Invalid value: "localhost": should be a domain with at least two segments separated by dots'],
    );
    assert.equal(validateSignerName('f', 'Example.com/x').length, 1);
    assert.equal(validateSignerName('f', 'a.b/c/d').length, 1);
  });

  it('shows the condition column as kubectl does', () => {
    const c = (conditions: unknown[], certificate?: string) =>
      csrCondition({ metadata: {}, status: { conditions, ...(certificate ? { certificate } : {}) } });
    assert.equal(c([]), 'Pending');
    assert.equal(c([{ type: 'Approved' }], 'Y2VydA=='), 'Approved,Issued');
    assert.equal(c([{ type: 'Denied' }]), 'Denied');
    assert.equal(c([{ type: 'Approved' }, { type: 'Failed' }]), 'Approved,Failed');
  });
});

describe('certificatesigningrequests through the API', () => {
  let server: TestServer;
  // Users come from headers; "nobody" may not approve or sign anything.
  const authorizer: Authorizer = {
    authorize: ({ user, resource, verb }) =>
      user.name === 'nobody' && resource === 'signers'
        ? { decision: 'noOpinion', reason: `no ${verb}` }
        : { decision: 'allow', reason: '' },
  };
  before(async () => {
    server = await startTestServer(undefined, {
      authorizer,
      user: (req) => ({
        name: String(req.headers['x-user'] ?? 'admin'),
        groups: String(req.headers['x-groups'] ?? 'system:masters,system:authenticated').split(','),
      }),
    });
  });
  after(() => server.close());
  const as = (name: string, groups: string) => ({ 'x-user': name, 'x-groups': groups });

  it('records the requester, whatever the client sent, and starts with an empty status', async () => {
    const body = csrObject('who');
    Object.assign(body.spec, { username: 'mallory', groups: ['system:masters'], uid: 'u1' });
    const r = await server.request(
      'POST',
      BASE,
      { ...body, status: { conditions: [{ type: 'Approved', status: 'True' }] } },
      as('alice', 'dev,system:authenticated'),
    );
    assert.equal(r.status, 201, r.text);
    assert.equal(r.body.spec.username, 'alice');
    assert.deepEqual(r.body.spec.groups, ['dev', 'system:authenticated']);
    assert.equal(r.body.spec.uid, undefined);
    assert.deepEqual(r.body.status, {});
  });

  it('keeps the spec immutable and refuses approval conditions through the main resource', async () => {
    const got = (await server.request('GET', `${BASE}/who`)).body;
    got.spec.usages = ['client auth', 'digital signature'];
    got.metadata.labels = { a: 'b' };
    const r = await server.request('PUT', `${BASE}/who`, got);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.spec.usages, ['client auth']);
    assert.deepEqual(r.body.metadata.labels, { a: 'b' });
    // Status written through the main resource is ignored.
    r.body.status = { conditions: [{ type: 'Approved', status: 'True' }] };
    const ignored = await server.request('PUT', `${BASE}/who`, r.body);
    assert.deepEqual(ignored.body.status, {});
  });

  it('approves through /approval, with timestamps, and refuses Denied next to Approved', async () => {
    const got = (await server.request('GET', `${BASE}/who`)).body;
    got.status.conditions = [{ type: 'Approved', status: 'True', reason: 'KubectlApprove', message: 'ok' }];
    got.spec.usages = ['server auth'];
    const r = await server.request('PUT', `${BASE}/who/approval`, got);
    assert.equal(r.status, 200, r.text);
    const [c] = r.body.status.conditions;
    assert.equal(c.type, 'Approved');
    assert.ok(c.lastUpdateTime && c.lastTransitionTime);
    assert.deepEqual(r.body.spec.usages, ['client auth']);
    r.body.status.conditions.push({ type: 'Denied', status: 'True' });
    const both = await server.request('PUT', `${BASE}/who/approval`, r.body);
    assert.equal(both.status, 422);
    assert.match(
      both.body.message,
      /status.conditions\[1\].type: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive/,
    );
    r.body.status.conditions = [];
    const removed = await server.request('PUT', `${BASE}/who/approval`, r.body);
    assert.equal(removed.status, 422);
    assert.match(removed.body.message, /updates may not remove a condition of type "Approved"/);
  });

  it('keeps Approved and Denied out of /status, and a certificate once set', async () => {
    const got = (await server.request('GET', `${BASE}/who`)).body;
    got.status.conditions.push({ type: 'Denied', status: 'True' });
    const added = await server.request('PUT', `${BASE}/who/status`, got);
    assert.equal(added.status, 422);
    assert.match(added.body.message, /updates may not add a condition of type "Denied"/);
    const bad = (await server.request('GET', `${BASE}/who`)).body;
    bad.status.certificate = Buffer.from('not a cert').toString('base64');
    const invalid = await server.request('PUT', `${BASE}/who/status`, bad);
    assert.equal(invalid.status, 422);
    assert.match(
      invalid.body.message,
      /status.certificate: Invalid value: "<certificate data>": must contain at least one CERTIFICATE PEM block/,
    );
  });

  it('needs approve on the signer to approve (CertificateApproval)', async () => {
    await server.request('POST', BASE, csrObject('nobody-approves'));
    const got = (await server.request('GET', `${BASE}/nobody-approves`)).body;
    got.status.conditions = [{ type: 'Denied', status: 'True', reason: 'No' }];
    const r = await server.request(
      'PUT',
      `${BASE}/nobody-approves/approval`,
      got,
      as('nobody', 'system:authenticated'),
    );
    assert.equal(r.status, 403);
    assert.equal(
      r.body.message,
      'certificatesigningrequests.certificates.k8s.io "nobody-approves" is forbidden: user not permitted to approve requests with signerName "kubernetes.io/kube-apiserver-client"',
    );
  });

  it('needs sign on the signer to set the certificate (CertificateSigning)', async () => {
    const got = (await server.request('GET', `${BASE}/who`)).body;
    const ca = ensureCA(mkdtempSync(join(tmpdir(), 'skiff-csr-ca-')));
    const cert = issueCertificate(ca, parseCertificateRequest(PEM), {
      usages: ['client auth'],
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 3600_000),
    });
    got.status.certificate = Buffer.from(cert).toString('base64');
    const r = await server.request('PUT', `${BASE}/who/status`, got, as('nobody', 'system:authenticated'));
    assert.equal(r.status, 403);
    assert.match(
      r.body.message,
      /user not permitted to sign requests with signerName "kubernetes.io\/kube-apiserver-client"/,
    );
    const signed = await server.request('PUT', `${BASE}/who/status`, got);
    assert.equal(signed.status, 200, signed.text);
    assert.equal(csrCondition(signed.body), 'Approved,Issued');
    signed.body.status.certificate = Buffer.from(cert + cert).toString('base64');
    const changed = await server.request('PUT', `${BASE}/who/status`, signed.body);
    assert.equal(changed.status, 422);
    assert.match(changed.body.message, /updates may not modify existing certificate content/);
  });

  it('refuses system:masters certificates from the kube-apiserver-client signer', async () => {
    const { csr } = makeTestCSR('/O=system:masters/CN=eve');
    const r = await server.request('POST', BASE, csrObject('masters', { request: requestField(csr) }));
    assert.equal(r.status, 403);
    assert.match(
      r.body.message,
      /use of kubernetes.io\/kube-apiserver-client signer with system:masters group is not allowed/,
    );
  });

  it('lists with upstream columns and filters on spec.signerName', async () => {
    const table = await server.request('GET', BASE, undefined, {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
    });
    assert.deepEqual(
      table.body.columnDefinitions.map((c: { name: string }) => c.name),
      ['Name', 'Age', 'SignerName', 'Requestor', 'RequestedDuration', 'Condition'],
    );
    const row = table.body.rows.find((r: { cells: unknown[] }) => r.cells[0] === 'who');
    assert.deepEqual(row.cells.slice(2), [
      'kubernetes.io/kube-apiserver-client',
      'alice',
      '<none>',
      'Approved,Issued',
    ]);
    const none = await server.request('GET', `${BASE}?fieldSelector=spec.signerName%3Dexample.com/x`);
    assert.equal(none.body.items.length, 0);
  });
});
