/**
 * Runs a TypeScript script in a child Node process (through tsx) and collects what it printed:
 * for tests that need a process of their own (its exit, --expose-gc, a clean heap). The child is
 * killed after `killAfterMs`; a `signal` in the result says it was.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export interface ChildScriptResult {
  readonly code: number | null;
  readonly signal: string | null;
  /** stdout and stderr, interleaved as they arrived. */
  readonly out: string;
}

export async function runChildScript(
  script: URL,
  opts: {
    args?: readonly string[];
    nodeFlags?: readonly string[];
    killAfterMs: number;
    /** A command that runs node, e.g. `['unshare', '-n', '--']` for a network namespace of its own. */
    wrapper?: readonly string[];
  },
): Promise<ChildScriptResult> {
  const argv = [
    process.execPath,
    ...(opts.nodeFlags ?? []),
    '--import',
    'tsx',
    fileURLToPath(script),
    ...(opts.args ?? []),
  ];
  const [command, ...rest] = [...(opts.wrapper ?? []), ...argv] as [string, ...string[]];
  const child = spawn(command, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  // Decoded by each stream's own decoder: a character split between two reads stays whole.
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    out += d;
  });
  child.stderr.on('data', (d: string) => {
    out += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(timer);
  return { code, signal, out };
}
