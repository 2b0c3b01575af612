// Starting a sidecache process for the bench (startSidecache: the sidecache targets, the sweeps, the
// HTTPS and Python interception benches), and what it needs: free ports to give it, a /readyz poll.
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Child } from '../harness/children.js';
import { ROUTE_NAME } from '../scenarios/requests.js';
import type { TargetContext } from './index.js';

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not reserve a port');
  return address.port;
}

/** Polls `readyzUrl` until it answers 200; fails early when `child` exits. */
export async function waitForReady(child: Child, readyzUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.hasExited()) throw new Error(`${child.label} exited before it was ready`);
    try {
      const res = await fetch(readyzUrl, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${child.label}: ${readyzUrl} not 200 within ${timeoutMs} ms (last: ${last})`);
}

export interface SidecacheLaunch {
  /** Extra `serve` arguments, e.g. `--config FILE`. */
  readonly serveArgs?: readonly string[];
  /** Node flags before the script, e.g. `--max-old-space-size=8192`. */
  readonly nodeArgs?: readonly string[];
  /** Run src/cli.ts through tsx instead of dist/cli.js (for scripts that work without a build). */
  readonly fromSource?: boolean;
  /** The process label in messages; default `sidecache`. */
  readonly label?: string;
}

/** dist/cli.js when built, else the TypeScript source through tsx; `label` says which. */
export function sidecacheBuild(repoRoot: string): { fromSource: boolean; label: string } {
  return existsSync(join(repoRoot, 'dist/cli.js'))
    ? { fromSource: false, label: 'dist/cli.js' }
    : { fromSource: true, label: 'src/cli.ts through tsx (not built)' };
}

/** Starts `node dist/cli.js serve` with the origin route and `launch`'s extra arguments; resolves once /readyz answers 200. */
export async function startSidecache(
  ctx: TargetContext,
  launch: SidecacheLaunch = {},
): Promise<{ url: string; adminUrl: string; child: Child }> {
  const port = await freePort();
  const adminPort = await freePort();
  const child = ctx.children.spawn({
    label: launch.label ?? 'sidecache',
    command: process.execPath,
    args: [
      ...(launch.nodeArgs ?? []),
      ...(launch.fromSource
        ? ['--import', 'tsx', join(ctx.repoRoot, 'src/cli.ts')]
        : [join(ctx.repoRoot, 'dist/cli.js')]),
      'serve',
      '--listen',
      `127.0.0.1:${port}`,
      '--admin-listen',
      `127.0.0.1:${adminPort}`,
      '--route',
      `${ROUTE_NAME}=${ctx.origin.url}`,
      '--log-level',
      'warn',
      ...(launch.serveArgs ?? []),
    ],
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  try {
    await waitForReady(child, `${adminUrl}/readyz`, ctx.readyTimeoutMs);
  } catch (err) {
    await child.stop();
    throw new Error(`${(err as Error).message}\n${child.outputTail()}`);
  }
  return { url: `http://127.0.0.1:${port}`, adminUrl, child };
}

export const SIDECACHE_NOT_BUILT = 'not built, skipped (no dist/cli.js: run npm run build first)';
