import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXPECTATIONS_TIMEOUT_MS, Expectations } from './expectations.ts';

describe('expectations', () => {
  it('holds a key until every expected create and delete has been observed', () => {
    const e = new Expectations({ now: () => 0 });
    assert.ok(e.satisfied('ns/rs'), 'no expectations: free to sync');
    e.expect('ns/rs', 2, ['ns/pod-a']);
    assert.equal(e.satisfied('ns/rs'), false);
    e.creationObserved('ns/rs');
    e.deletionObserved('ns/rs', 'ns/pod-a');
    assert.equal(e.satisfied('ns/rs'), false, 'one create still outstanding');
    e.creationObserved('ns/rs');
    assert.ok(e.satisfied('ns/rs'));
  });

  it('counts a deletion once per object, however many events report it', () => {
    const e = new Expectations({ now: () => 0 });
    e.expect('k', 0, ['ns/a', 'ns/b']);
    e.deletionObserved('k', 'ns/a');
    e.deletionObserved('k', 'ns/a');
    assert.equal(e.satisfied('k'), false);
    e.deletionObserved('k', 'ns/b');
    assert.ok(e.satisfied('k'));
  });

  it('expires, so a lost watch event cannot wedge a controller', () => {
    let now = 1000;
    const e = new Expectations({ now: () => now });
    e.expect('k', 1);
    now += EXPECTATIONS_TIMEOUT_MS;
    assert.equal(e.satisfied('k'), false);
    now += 1;
    assert.ok(e.satisfied('k'));
  });
});
