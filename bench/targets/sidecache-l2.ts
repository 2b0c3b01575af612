// `sidecache-l2`: sidecache with its in-process cache turned off in front of a shared Redis tier
// (`cache.redis.l1: false`), so that every cache hit is read from Redis: the L2-hit row beside
// sidecache's L1 hit in `fresh-hit`. It starts its own redis-server (`--save '' --appendonly no`)
// and is skipped when redis-server or dist/cli.js is missing.
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ROUTE_NAME } from '../scenarios.js';
import type { RunningTarget, TargetContext, TargetSpec } from '../targets.js';
import { findBinary, scratchDir, waitForPort, writeFile } from './reference-caches.js';

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export function sidecacheL2(scenarios: readonly string[]): TargetSpec {
  return {
    name: 'sidecache-l2',
    description: 'sidecache, in-process cache off, hits read from a local redis-server (L2)',
    scenarios,
    skipReason: (repoRoot) => {
      if (!existsSync(join(repoRoot, 'dist/cli.js'))) return 'not built, skipped (run npm run build first)';
      return findBinary('redis-server') ? null : 'skipped: redis-server is not installed';
    },
    async start(ctx: TargetContext): Promise<RunningTarget> {
      const redisPort = await freePort();
      const scratch = scratchDir('redis');
      const redis = ctx.children.spawn({
        label: 'redis-server',
        command: findBinary('redis-server') as string,
        args: ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      });
      void redis.exited.then(() => scratch.remove());
      await waitForPort(redisPort, redis, ctx.readyTimeoutMs);
      const config = writeFile(scratch.dir, 'sidecache.yaml', 'cache:\n  redis:\n    l1: false\n');
      const port = await freePort();
      const adminPort = await freePort();
      const child = ctx.children.spawn({
        label: 'sidecache-l2',
        command: process.execPath,
        args: [
          join(ctx.repoRoot, 'dist/cli.js'),
          'serve',
          '--config',
          config,
          '--redis',
          `redis://127.0.0.1:${redisPort}`,
          '--listen',
          `127.0.0.1:${port}`,
          '--admin-listen',
          `127.0.0.1:${adminPort}`,
          '--route',
          `${ROUTE_NAME}=${ctx.origin.url}`,
          '--log-level',
          'warn',
        ],
      });
      void child.exited.then(() => redis.stop());
      try {
        await waitForPort(adminPort, child, ctx.readyTimeoutMs);
        await waitForPort(port, child, ctx.readyTimeoutMs);
      } catch (err) {
        await child.stop();
        throw new Error(`${(err as Error).message}\n${child.outputTail()}`);
      }
      return { name: 'sidecache-l2', url: `http://127.0.0.1:${port}`, role: 'proxy', child };
    },
  };
}
