// `sidecache-l2`: sidecache with its in-process cache turned off in front of a shared Redis tier
// (`cache.redis.l1: false`), so that every cache hit is read from Redis: the L2-hit row beside
// sidecache's L1 hit in `fresh-hit`. It starts its own redis-server (`--save '' --appendonly no`)
// and is skipped when redis-server or dist/cli.js is missing.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { findBinary, scratchDir, waitForPort, writeFile } from './caches.js';
import type { RunningTarget, TargetContext, TargetSpec } from './index.js';
import { freePort, startSidecache } from './sidecache.js';

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
      const { url, child } = await startSidecache(ctx, {
        label: 'sidecache-l2',
        serveArgs: ['--config', config, '--redis', `redis://127.0.0.1:${redisPort}`],
      }).catch(async (err: unknown) => {
        await redis.stop();
        throw err;
      });
      void child.exited.then(() => redis.stop());
      return { name: 'sidecache-l2', url, role: 'proxy', child };
    },
  };
}
