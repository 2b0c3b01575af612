import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runChildScript } from '../../helpers/child-script.js';

const CHILD = new URL('./default-destination.child.ts', import.meta.url);

/** The child's padding of line `i` (multi-byte characters, one line longer than a batch). */
function padOf(i: number): string {
  if (i === 250) return 'y'.repeat(40_000);
  return (i % 5 === 0 ? '€' : 'x').repeat((i * 37) % 900);
}

/** The `i` of each `numbered` line printed, in order; each line must carry its padding whole. */
function numbers(out: string): number[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes('"msg":"numbered"'))
    .map((l) => {
      const { i, pad } = JSON.parse(l) as { i: number; pad: string };
      assert.equal(pad, padOf(i), `line ${i}`);
      return i;
    });
}

describe('the default JSON destination (batched lines on stdout)', () => {
  for (const how of ['end', 'exit', 'throw', 'flush']) {
    it(`writes every line, in order, when the process ends by ${how}`, async () => {
      const { out, signal } = await runChildScript(CHILD, { args: [how, '500'], killAfterMs: 20_000 });
      assert.equal(signal, null);
      assert.deepEqual(
        numbers(out),
        Array.from({ length: 500 }, (_, i) => i),
      );
    });
  }

  it('writes a few lines after logger.flush() without waiting for exit', async () => {
    const { out } = await runChildScript(CHILD, { args: ['flush', '3'], killAfterMs: 20_000 });
    const flushedAt = out.indexOf('flushed');
    assert.ok(flushedAt > 0, out);
    assert.deepEqual(numbers(out.slice(0, flushedAt)), [0, 1, 2]);
  });
});
