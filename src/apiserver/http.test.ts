import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { isApiError } from '../api/errors.ts';
import { type ApiRequest, readBody } from './http.ts';

const request = (stream: Readable, headers = {}): ApiRequest => Object.assign(stream, { headers }) as never;

describe('readBody on a stream', () => {
  it('joins the chunks', async () => {
    const body = await readBody(request(Readable.from([Buffer.from('{"a":'), '1}'])));
    assert.equal(body.toString(), '{"a":1}');
  });

  it('is 413 past the limit without a declared length, and stops reading', async () => {
    const s = Readable.from(['x'.repeat(10), 'y'.repeat(10)]);
    await assert.rejects(readBody(request(s), 15), (err) => isApiError(err) && err.status.code === 413);
    assert.equal(s.destroyed, true);
  });

  it('is empty for a stream already read to its end', async () => {
    const s = new PassThrough();
    s.end();
    s.resume();
    await new Promise((r) => s.once('end', r));
    assert.equal((await readBody(request(s))).length, 0);
  });

  it('fails when the stream closes before its end', async () => {
    const s = new PassThrough();
    s.write('part');
    const body = readBody(request(s));
    s.destroy();
    await assert.rejects(body, /Premature close/);
  });
});
