// The contenders of `npm run bench` and of the peer table. Each runs as its own process, so its CPU
// is read apart from the load generator's, and exposes one base URL. Adding a target is adding an
// entry to TARGETS (bench/README.md, "Adding a scenario or a target").
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Child, type ChildGroup, startNodeServer } from '../harness/children.js';
import { findBinary, startNginx, startSquid, startTierServer, startVarnish } from './caches.js';
import { ROUTE_NAME } from './route-table.js';
import {
  launcherLine,
  SIDECACHE_NOT_BUILT,
  type SidecacheLaunch,
  sidecacheBuilt,
  startSidecache,
} from './sidecache.js';

const HERE = dirname(fileURLToPath(import.meta.url));

export type TargetName =
  | 'direct'
  | 'http-proxy'
  | 'undici-pool'
  | 'undici-pool-stream'
  | 'sidecache'
  | 'sidecache-defaults'
  | 'sidecache-shipped'
  | 'sidecache-l2'
  | 'sidecache-no-advisor'
  | 'bare-node'
  | 'bare-node-hit-head'
  | 'node-min-cache'
  | 'nginx-cache'
  | 'varnish'
  | 'squid';

export interface Endpoint {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly role: 'origin' | 'proxy';
}

export interface RunningOrigin {
  readonly url: string;
  readonly child: Child;
}

export interface TargetContext {
  readonly children: ChildGroup;
  readonly origin: RunningOrigin;
}

export interface RunningTarget extends Endpoint {
  readonly name: TargetName;
  /** The process whose CPU is measured: the proxy, or the origin for `direct`. */
  readonly child: Child;
}

export interface TargetSpec {
  readonly name: TargetName;
  readonly description: string;
  /** The scenarios this target makes sense in; absent: every scenario. */
  readonly scenarios?: readonly string[];
  /** Why the target cannot run here (not built, not installed), or null. Never faked. */
  skipReason(): string | null;
  start(ctx: TargetContext): Promise<RunningTarget>;
}

/** The bench origin (origin.ts): every target is measured against it. */
export function startOrigin(children: ChildGroup): Promise<RunningOrigin> {
  return startNodeServer(children, 'origin', join(HERE, 'origin.ts'));
}

const CACHE_SCENARIOS = ['fresh-hit', 'fresh-hit-gzip'];

/** A server of this folder (child-contract.ts); a proxy gets `--route origin=ORIGIN`. */
function nodeServer(
  name: TargetName,
  description: string,
  file: string,
  args: readonly string[],
  kind: 'proxy' | 'cache-hit limit',
): TargetSpec {
  return {
    name,
    description,
    ...(kind === 'proxy' ? {} : { scenarios: CACHE_SCENARIOS }),
    skipReason: () => null,
    async start(ctx) {
      const route = kind === 'proxy' ? ['--route', `${ROUTE_NAME}=${ctx.origin.url}`] : [];
      const { url, child } = await startNodeServer(ctx.children, name, join(HERE, file), [...route, ...args]);
      return { name, url, role: 'proxy', child };
    },
  };
}

/** A cache-hit target that needs `binary` installed; skipped with a note where it is not. */
function installed(
  name: TargetName,
  binary: string,
  description: string,
  start: (ctx: TargetContext) => Promise<{ url: string; child: Child }>,
  skip: () => string | null = () => null,
): TargetSpec {
  return {
    name,
    description,
    scenarios: CACHE_SCENARIOS,
    skipReason: () => skip() ?? (findBinary(binary) ? null : `skipped: ${binary} is not installed`),
    start: async (ctx) => ({ name, role: 'proxy', ...(await start(ctx)) }),
  };
}

/**
 * sidecache as `node dist/cli.js serve` with a route to the bench origin, started the way `launch`
 * says (log level, Node flags, extra arguments); the target's name is its process label.
 */
function sidecacheVariant(
  name: TargetName,
  description: string,
  launch: () => SidecacheLaunch,
  scenarios?: readonly string[],
): TargetSpec {
  return {
    name,
    description,
    ...(scenarios ? { scenarios } : {}),
    skipReason: () => (sidecacheBuilt() ? null : SIDECACHE_NOT_BUILT),
    async start(ctx) {
      const { url, child } = await startSidecache(ctx.children, {
        origin: ctx.origin.url,
        label: name,
        ...launch(),
      });
      return { name, url, role: 'proxy', child };
    },
  };
}

export const TARGETS: readonly TargetSpec[] = [
  {
    name: 'direct',
    description: 'the origin itself: the baseline for latency (its CPU is the origin CPU)',
    skipReason: () => null,
    start: async (ctx) => ({ name: 'direct', url: ctx.origin.url, role: 'origin', child: ctx.origin.child }),
  },
  nodeServer('http-proxy', 'http-proxy pass-through with a keep-alive Agent', 'http-proxy.ts', [], 'proxy'),
  nodeServer(
    'undici-pool',
    'undici Pool pass-through (pool.request + pipeline)',
    'undici-pool.ts',
    [],
    'proxy',
  ),
  nodeServer(
    'undici-pool-stream',
    'undici Pool pass-through writing into the response (pool.stream)',
    'undici-pool.ts',
    ['--stream'],
    'proxy',
  ),
  sidecacheVariant('sidecache', 'node dist/cli.js serve (npm run build first)', () => ({})),
  // `npm start`: the default log level (an access line per request), no launcher flags. Beside
  // `sidecache` (warn) it shows what the access log costs, beside `sidecache-shipped` what the
  // launcher's flags cost.
  sidecacheVariant(
    'sidecache-defaults',
    'node dist/cli.js serve at the default log level (info): npm start, no launcher flags',
    () => ({ logLevel: 'info' }),
    ['fresh-hit', 'pass-through'],
  ),
  // sidecache as users run it: the installed command's environment and Node flags (the CLI's
  // launcher line, also the image's ENTRYPOINT) and the default log level (an access line per request).
  sidecacheVariant(
    'sidecache-shipped',
    "sidecache as installed: the launcher line's environment and Node flags, log level info",
    () => {
      const { env, flags } = launcherLine();
      return { nodeArgs: flags, env, logLevel: 'info' };
    },
  ),
  // The policy advisor's cost on the pass-through path: the same sidecache without it.
  sidecacheVariant(
    'sidecache-no-advisor',
    'sidecache --no-advisor: the policy advisor off (its cost is the difference to sidecache)',
    () => ({ serveArgs: ['--no-advisor'] }),
    ['pass-through', 'pass-through-1conn'],
  ),
  // Every hit read from Redis: sidecache's in-process cache off (`cache.redis.l1: false`).
  installed(
    'sidecache-l2',
    'redis-server',
    'sidecache, in-process cache off, hits read from a local redis-server (L2)',
    async (ctx) => {
      const redis = await startTierServer(ctx.children, 'redis');
      const config = join(redis.dir, 'sidecache.yaml');
      writeFileSync(config, 'cache:\n  redis:\n    l1: false\n');
      const sidecache = await startSidecache(ctx.children, {
        origin: ctx.origin.url,
        label: 'sidecache-l2',
        serveArgs: ['--config', config, '--redis', `redis://127.0.0.1:${redis.port}`],
      }).catch(async (err: unknown) => {
        await redis.child.stop();
        throw err;
      });
      void sidecache.child.exited.then(() => redis.child.stop());
      return sidecache;
    },
    () => (sidecacheBuilt() ? null : SIDECACHE_NOT_BUILT),
  ),
  nodeServer(
    'bare-node',
    'bare node:http serving the same bytes from memory',
    'bare-node.ts',
    [],
    'cache-hit limit',
  ),
  nodeServer(
    'bare-node-hit-head',
    "bare-node sending a sidecache hit's whole head from memory (what the head alone costs)",
    'bare-node.ts',
    ['--hit-head'],
    'cache-hit limit',
  ),
  {
    ...nodeServer(
      'node-min-cache',
      'the least a Node cache can do: Map by URL, max-age, Age and Cache-Status',
      'node-min-cache.ts',
      [],
      'proxy',
    ),
    scenarios: CACHE_SCENARIOS,
  },
  installed('nginx-cache', 'nginx', 'nginx proxy_cache, one process', (ctx) =>
    startNginx(ctx.children, ctx.origin.url),
  ),
  installed('varnish', 'varnishd', 'varnishd, malloc storage; its cache worker process is measured', (ctx) =>
    startVarnish(ctx.children, ctx.origin.url, '64m'),
  ),
  installed('squid', 'squid', 'squid -N, an accelerator caching in memory', (ctx) =>
    startSquid(ctx.children, ctx.origin.url),
  ),
];
