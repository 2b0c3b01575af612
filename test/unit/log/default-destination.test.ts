import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
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

  for (const how of ['end', 'exit', 'throw']) {
    it(`waits for a pipe that is full and writes every line, in order, when the process ends by ${how}`, async () => {
      // 2,000 lines (~1 MB) into a pipe (pipe(2), as a shell or a container runtime gives; Node
      // gives its children socket pairs) that nobody reads for 400 ms: it fills, batches wait.
      const node = [process.execPath, '--import', 'tsx', fileURLToPath(CHILD), how, '2000'];
      const script = `${node.map((a) => `'${a}'`).join(' ')} 2>/dev/null | (sleep 0.4; cat)`;
      const { signal, out } = await run('/bin/sh', ['-c', script]);
      assert.equal(signal, null);
      assert.deepEqual(
        numbers(out),
        Array.from({ length: 2000 }, (_, i) => i),
      );
    });
  }

  for (const how of ['end', 'exit', 'throw']) {
    it(`waits for a socket that is full and writes every line, in order, when the process ends by ${how}`, async () => {
      // Node gives its children socket pairs: 2,000 lines (~1 MB) that nobody reads for 400 ms.
      const args = ['--import', 'tsx', fileURLToPath(CHILD), how, '2000'];
      const { signal, out } = await run(process.execPath, args, { pauseMs: 400 });
      assert.equal(signal, null);
      assert.deepEqual(
        numbers(out),
        Array.from({ length: 2000 }, (_, i) => i),
      );
    });
  }

  it('writes every line to a file as standard output', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sc-log-'));
    try {
      const file = join(dir, 'out.log');
      const fd = openSync(file, 'w');
      const args = ['--import', 'tsx', fileURLToPath(CHILD), 'end', '500'];
      const { signal } = await run(process.execPath, args, { stdout: fd }).finally(() => closeSync(fd));
      assert.equal(signal, null);
      assert.deepEqual(
        numbers(readFileSync(file, 'utf8')),
        Array.from({ length: 500 }, (_, i) => i),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Runs `command` and collects its standard output, read from the start or only after `pauseMs`
 * (a socket pair from Node), or written to `stdout` (a file descriptor) instead.
 */
async function run(
  command: string,
  args: readonly string[],
  opts: { pauseMs?: number; stdout?: number } = {},
): Promise<{ signal: string | null; out: string }> {
  const child = spawn(command, args, { stdio: ['ignore', opts.stdout ?? 'pipe', 'ignore'] });
  const closed = once(child, 'close') as Promise<[number | null, string | null]>;
  const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
  let out = '';
  const stdout = child.stdout;
  if (stdout !== null) {
    stdout.pause();
    if (opts.pauseMs !== undefined) await sleep(opts.pauseMs);
    stdout.setEncoding('utf8');
    stdout.on('data', (d: string) => {
      out += d;
    });
    stdout.resume();
  }
  const [, signal] = await closed;
  clearTimeout(kill);
  return { signal, out };
}
