import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseGoDuration } from './duration.ts';

describe("Go's time.ParseDuration", () => {
  it('reads what client-go sends (Duration.String()) and the short forms', () => {
    const cases: Array<[string, number]> = [
      ['30s', 30_000],
      ['1m0s', 60_000],
      ['1h2m3s', 3_723_000],
      ['500ms', 500],
      ['1.5s', 1500],
      ['.5m', 30_000],
      ['250us', 0.25],
      ['0', 0],
      ['-2s', -2000],
      ['+1m', 60_000],
    ];
    for (const [text, ms] of cases) assert.deepEqual(parseGoDuration(text), { ms }, text);
  });

  it("refuses the rest with Go's own message", () => {
    assert.deepEqual(parseGoDuration('30'), { error: 'time: missing unit in duration "30"' });
    assert.deepEqual(parseGoDuration('soon'), { error: 'time: invalid duration "soon"' });
    assert.deepEqual(parseGoDuration('5d'), { error: 'time: unknown unit "d" in duration "5d"' });
    assert.deepEqual(parseGoDuration(''), { error: 'time: invalid duration ""' });
    assert.deepEqual(parseGoDuration('.s'), { error: 'time: invalid duration ".s"' });
  });
});
