import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Secret } from '../../api/types/core-v1.ts';
import { authenticateBootstrapToken } from './bootstrap-token.ts';
import { csvFields, parseTokenFile, TokenFileAuthenticator } from './token-file.ts';

describe('static token file', () => {
  it('parses token,user,uid and quoted groups', () => {
    assert.deepEqual(csvFields('abc,bob,42,"dev,ops"'), ['abc', 'bob', '42', 'dev,ops']);
    assert.deepEqual(csvFields('a, b ,"say ""hi"""'), ['a', 'b ', 'say "hi"']);
    const tokens = parseTokenFile('abc,bob,42,"dev,ops"\n\nxyz,alice,7\n,nobody,0\n');
    assert.deepEqual(tokens.get('abc'), { name: 'bob', uid: '42', groups: ['dev', 'ops'] });
    assert.deepEqual(tokens.get('xyz'), { name: 'alice', uid: '7', groups: [] });
    assert.equal(tokens.size, 2, 'an empty token is skipped');
  });

  it('rejects a line with fewer than three columns, naming the file', () => {
    assert.throws(
      () => parseTokenFile('abc,bob\n', '/etc/tokens.csv'),
      /token file '\/etc\/tokens.csv' must have at least 3 columns/,
    );
  });

  it('authenticates a known token (in system:authenticated), nothing else', () => {
    const a = new TokenFileAuthenticator(parseTokenFile('abc,bob,42,dev\n'));
    assert.deepEqual(a.authenticate('abc'), {
      name: 'bob',
      uid: '42',
      groups: ['dev', 'system:authenticated'],
    });
    assert.equal(a.authenticate('abd'), undefined);
    assert.equal(a.authenticate(''), undefined);
  });
});

describe('bootstrap tokens', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const secret = (data: Record<string, string>, type = 'bootstrap.kubernetes.io/token'): Secret => ({
    metadata: { name: 'bootstrap-token-abcdef', namespace: 'kube-system' },
    type,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  });
  const good = {
    'token-id': 'abcdef',
    'token-secret': '0123456789abcdef',
    'usage-bootstrap-authentication': 'true',
    'auth-extra-groups': 'system:bootstrappers:kubeadm:default-node-token',
    expiration: '2026-12-08T00:00:00Z',
  };
  const now = new Date('2026-12-07T05:00:00Z');
  const auth = (token: string, s: Secret | undefined, at = now) =>
    authenticateBootstrapToken(token, (name) => (name === 'bootstrap-token-abcdef' ? s : undefined), at);

  it('authenticates as system:bootstrap:<id> with the extra groups', () => {
    assert.deepEqual(auth('abcdef.0123456789abcdef', secret(good)), {
      name: 'system:bootstrap:abcdef',
      groups: [
        'system:bootstrappers',
        'system:bootstrappers:kubeadm:default-node-token',
        'system:authenticated',
      ],
    });
  });

  it('refuses a wrong secret, an expired token, a token not for authentication, a wrong type or shape', () => {
    assert.equal(auth('abcdef.0123456789abcdeX', secret(good)), undefined, 'not [a-z0-9]');
    assert.equal(auth('abcdef.0123456789abcdee', secret(good)), undefined);
    assert.equal(auth('abcdef.0123456789abcdef', secret(good), new Date('2026-12-09T00:00:00Z')), undefined);
    assert.equal(
      auth('abcdef.0123456789abcdef', secret({ ...good, 'usage-bootstrap-authentication': 'false' })),
      undefined,
    );
    assert.equal(auth('abcdef.0123456789abcdef', secret(good, 'Opaque')), undefined);
    assert.equal(
      auth('abcdef.0123456789abcdef', secret({ ...good, 'auth-extra-groups': 'system:masters' })),
      undefined,
    );
    assert.equal(auth('abcdef.0123456789abcdef', undefined), undefined);
  });
});
