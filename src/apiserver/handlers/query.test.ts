// The query parameters handlers share (query.ts).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isApiError } from '../../api/errors.ts';
import { checkAcceptable, includeObject, isDryRun, listQuery } from './query.ts';

const q = (s: string) => new URLSearchParams(s);
const is400 = (err: unknown) => isApiError(err) && err.status.code === 400;

describe('handler query parameters', () => {
  it('reads list options, keeping an empty resourceVersion', () => {
    assert.deepEqual(
      listQuery(
        q(
          'labelSelector=app=x&fieldSelector=spec.nodeName=n&limit=5&continue=c&resourceVersion=&resourceVersionMatch=NotOlderThan',
        ),
      ),
      {
        labelSelector: 'app=x',
        fieldSelector: 'spec.nodeName=n',
        limit: 5,
        continue: 'c',
        resourceVersion: '',
        resourceVersionMatch: 'NotOlderThan',
      },
    );
    assert.deepEqual(listQuery(q('')), {});
  });

  it('is 400 for a bad limit or a timeoutSeconds that is not an integer', () => {
    assert.throws(() => listQuery(q('limit=-1')), is400);
    assert.throws(() => listQuery(q('limit=1.5')), is400);
    assert.throws(() => listQuery(q('timeoutSeconds=ten')), is400);
    assert.doesNotThrow(() => listQuery(q('timeoutSeconds=%2B10')));
  });

  it('accepts only dryRun=All', () => {
    assert.equal(isDryRun(q('')), false);
    assert.equal(isDryRun(q('dryRun=All')), true);
    assert.throws(() => isDryRun(q('dryRun=true')), is400);
  });

  it('defaults includeObject to Metadata', () => {
    assert.equal(includeObject(q('')), 'Metadata');
    assert.equal(includeObject(q('includeObject=None')), 'None');
    assert.equal(includeObject(q('includeObject=bogus')), 'Metadata');
  });

  it('is 406 for an Accept header with no type the server writes', () => {
    assert.doesNotThrow(() => checkAcceptable(undefined));
    assert.doesNotThrow(() =>
      checkAcceptable('application/json;as=Table;v=v1;g=meta.k8s.io, application/json'),
    );
    assert.throws(
      () => checkAcceptable('text/html'),
      (err) => isApiError(err) && err.status.code === 406,
    );
  });
});
