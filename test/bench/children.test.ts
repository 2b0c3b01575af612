/**
 * The bench's child processes (bench/harness/children.ts): a ready line split across writes is
 * still found, output is kept as a bounded tail (the last MiB, not the first), and stderr is in
 * output() but not in stdout(). Real child processes, no stubs.
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { type ChildGroup, createChildGroup } from '../../bench/harness/children.js';

const node = (code: string) => ({ command: process.execPath, args: ['-e', code] });

/** Runs `test` with a child group of its own, every child stopped afterwards. */
async function withChildren(test: (group: ChildGroup) => Promise<void>): Promise<void> {
  const group = createChildGroup(tmpdir());
  try {
    await test(group);
  } finally {
    await group.stopAll();
  }
}

describe('bench child output', () => {
  it('finds a line written in pieces, before and after the wait starts', () =>
    withChildren(async (group) => {
      // "listening on 4" is split over three writes with pauses, so it reaches the parent in pieces.
      const child = group.spawn({
        label: 'pieces',
        ...node(`
          const w = (s, ms) => new Promise((r) => setTimeout(() => { process.stdout.write(s); r(); }, ms));
          (async () => {
            await w('early line\\nlist', 0); await w('ening on ', 150); await w('4\\nlater\\n', 150);
            setTimeout(() => {}, 5000);
          })();`),
      });
      const port = await child.waitForLine((line) => /^listening on (\d+)$/.exec(line)?.[1] ?? null, 5000);
      assert.equal(port, '4');
      // A wait started after the line came reads it from what was kept.
      const early = await child.waitForLine((line) => (line === 'early line' ? line : null), 1000);
      assert.equal(early, 'early line');
      await child.stop(500);
    }));

  it('keeps the last MiB of a large output and stderr only in output()', () =>
    withChildren(async (group) => {
      // 3 MiB of numbered 64-byte lines in many writes, then a marker on stderr.
      const child = group.spawn({
        label: 'large',
        ...node(`
          let i = 0;
          const next = () => {
            let s = '';
            for (let k = 0; k < 512; k++) s += String(i++).padStart(63, '0') + '\\n';
            process.stdout.write(s, () => {
              if (i < 49152) next();
              else process.stderr.write('stderr-marker\\n');
            });
          };
          next();`),
      });
      // 'exit' can come before the last output is read; 'close' comes after the pipes are drained.
      await new Promise((resolve) => child.process.once('close', resolve));
      const out = child.stdout();
      assert.equal(out.length, 1 << 20, 'exactly the last MiB is kept');
      assert.ok(out.endsWith(`${String(49151).padStart(63, '0')}\n`), 'the tail is the end of the output');
      assert.ok(!out.includes('stderr-marker'));
      assert.ok(child.output().includes('stderr-marker'));
      assert.ok(child.outputTail().endsWith('stderr-marker'));
    }));

  it('rejects a wait when the child exits without the line', () =>
    withChildren(async (group) => {
      const child = group.spawn({ label: 'quits', ...node(`process.stdout.write('no port here\\n')`) });
      await assert.rejects(
        child.waitForLine((line) => (line.startsWith('listening') ? line : null), 5000),
        /quits exited \(code 0/,
      );
    }));
});
