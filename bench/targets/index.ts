// The contenders. Each runs as its own process, so its CPU can be read apart from the load
// generator's, and exposes one base URL. Adding a target is adding an entry to TARGETS.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseListening } from '../harness/child-contract.js';
import type { Child, ChildGroup } from '../harness/children.js';
import type { Endpoint } from '../scenarios/requests.js';
import { ROUTE_NAME } from '../scenarios/requests.js';
import {
  childPids,
  findBinary,
  measuring,
  nginxConfig,
  scratchDir,
  varnishVcl,
  waitForPort,
  writeFile,
} from './caches.js';
import { freePort, SIDECACHE_NOT_BUILT, startSidecache } from './sidecache.js';
import { sidecacheL2 } from './sidecache-l2.js';
import { squidBinary, startSquid } from './squid.js';

export type TargetName =
  | 'direct'
  | 'http-proxy'
  | 'undici-pool'
  | 'undici-pool-stream'
  | 'sidecache'
  | 'sidecache-l2'
  | 'bare-node'
  | 'bare-node-hit-head'
  | 'node-min-cache'
  | 'nginx-cache'
  | 'varnish'
  | 'squid';

export interface RunningOrigin {
  readonly url: string;
  readonly child: Child;
}

export interface TargetContext {
  readonly children: ChildGroup;
  readonly repoRoot: string;
  readonly origin: RunningOrigin;
  readonly readyTimeoutMs: number;
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
  /** Why the target cannot run in this tree (for example, not built), or null. Never faked. */
  skipReason(repoRoot: string): string | null;
  start(ctx: TargetContext): Promise<RunningTarget>;
}

/** Starts a bench/ TypeScript server that follows child-contract.ts and returns its URL. */
export async function startBenchServer(
  children: ChildGroup,
  label: string,
  script: string,
  args: readonly string[],
  readyTimeoutMs: number,
): Promise<{ url: string; child: Child }> {
  const child = children.spawn({
    label,
    command: process.execPath,
    args: ['--import', 'tsx', script, '--listen', '127.0.0.1:0', ...args],
  });
  try {
    const port = await child.waitForLine(parseListening, readyTimeoutMs);
    return { url: `http://127.0.0.1:${port}`, child };
  } catch (err) {
    await child.stop();
    throw new Error(`${(err as Error).message}\n${child.outputTail()}`);
  }
}

export async function startOrigin(children: ChildGroup, repoRoot: string, readyTimeoutMs: number) {
  return startBenchServer(children, 'origin', join(repoRoot, 'bench/targets/origin.ts'), [], readyTimeoutMs);
}

export {
  freePort,
  SIDECACHE_NOT_BUILT,
  type SidecacheLaunch,
  sidecacheBuild,
  startSidecache,
  waitForReady,
} from './sidecache.js';

function referenceProxy(
  name: TargetName,
  file: string,
  description: string,
  args: readonly string[] = [],
): TargetSpec {
  return {
    name,
    description,
    skipReason: () => null,
    async start(ctx) {
      const { url, child } = await startBenchServer(
        ctx.children,
        name,
        join(ctx.repoRoot, 'bench/targets', file),
        ['--route', `${ROUTE_NAME}=${ctx.origin.url}`, ...args],
        ctx.readyTimeoutMs,
      );
      return { name, url, role: 'proxy', child };
    },
  };
}

const sidecache: TargetSpec = {
  name: 'sidecache',
  description: 'node dist/cli.js serve (npm run build first)',
  skipReason: (repoRoot) => (existsSync(join(repoRoot, 'dist/cli.js')) ? null : SIDECACHE_NOT_BUILT),
  async start(ctx) {
    const { url, child } = await startSidecache(ctx);
    return { name: 'sidecache', url, role: 'proxy', child };
  },
};

const CACHE_SCENARIOS = ['fresh-hit', 'fresh-hit-gzip'] as const;

/**
 * The limit for a Node process: the stored bytes written by a bare node:http server; with the
 * whole head of a sidecache hit (Date, Via, Age, Cache-Status, Server-Timing) as `bare-node-hit-head`.
 */
function bareNode(name: 'bare-node' | 'bare-node-hit-head', description: string, args: string[]): TargetSpec {
  return {
    name,
    description,
    scenarios: CACHE_SCENARIOS,
    skipReason: () => null,
    async start(ctx) {
      const { url, child } = await startBenchServer(
        ctx.children,
        name,
        join(ctx.repoRoot, 'bench/targets/bare-node.ts'),
        args,
        ctx.readyTimeoutMs,
      );
      return { name, url, role: 'proxy', child };
    },
  };
}

const nginxCache: TargetSpec = {
  name: 'nginx-cache',
  description: 'nginx proxy_cache, one process (only where nginx is installed)',
  scenarios: CACHE_SCENARIOS,
  skipReason: () => (findBinary('nginx') ? null : 'skipped: nginx is not installed'),
  async start(ctx) {
    const port = await freePort();
    const scratch = scratchDir('nginx');
    const conf = writeFile(scratch.dir, 'nginx.conf', nginxConfig(scratch.dir, port, ctx.origin.url));
    const child = ctx.children.spawn({
      label: 'nginx-cache',
      command: findBinary('nginx') as string,
      args: ['-p', scratch.dir, '-c', conf],
    });
    void child.exited.then(() => scratch.remove());
    try {
      await waitForPort(port, child, ctx.readyTimeoutMs);
    } catch (err) {
      await child.stop();
      throw new Error(`${(err as Error).message}\n${child.outputTail()}`);
    }
    return { name: 'nginx-cache', url: `http://127.0.0.1:${port}`, role: 'proxy', child };
  },
};

/**
 * Starts varnishd with malloc storage of `mallocSize` (varnishd's syntax, e.g. `64m`); the returned
 * child measures its cache worker process. `workDir` is Varnish's -n directory (for varnishstat).
 */
export async function startVarnish(
  ctx: TargetContext,
  mallocSize: string,
): Promise<{ url: string; child: Child; workDir: string }> {
  const port = await freePort();
  const scratch = scratchDir('varnish');
  const vcl = writeFile(scratch.dir, 'bench.vcl', varnishVcl(ctx.origin.url));
  const workDir = join(scratch.dir, 'work');
  const manager = ctx.children.spawn({
    label: 'varnish',
    command: findBinary('varnishd') as string,
    args: [
      '-F',
      '-j',
      'none',
      '-n',
      workDir,
      '-a',
      `127.0.0.1:${port}`,
      '-f',
      vcl,
      '-s',
      `malloc,${mallocSize}`,
    ],
  });
  void manager.exited.then(() => scratch.remove());
  try {
    await waitForPort(port, manager, ctx.readyTimeoutMs);
    const workers = childPids(manager.pid);
    if (workers.length !== 1) throw new Error(`varnish: expected one cache worker, found ${workers.length}`);
    return { url: `http://127.0.0.1:${port}`, child: measuring(manager, workers[0] as number), workDir };
  } catch (err) {
    await manager.stop();
    throw new Error(`${(err as Error).message}\n${manager.outputTail()}`);
  }
}

const varnish: TargetSpec = {
  name: 'varnish',
  description: 'varnishd, malloc storage; its cache worker process is measured (only where installed)',
  scenarios: CACHE_SCENARIOS,
  skipReason: () => (findBinary('varnishd') ? null : 'skipped: varnishd is not installed'),
  async start(ctx) {
    const { url, child } = await startVarnish(ctx, '64m');
    return { name: 'varnish', url, role: 'proxy', child };
  },
};

const squid: TargetSpec = {
  name: 'squid',
  description: 'squid -N, reverse proxy (accelerator) caching in memory (only where installed)',
  scenarios: CACHE_SCENARIOS,
  skipReason: () => (squidBinary() ? null : 'skipped: squid is not installed (apt-get install -y squid)'),
  async start(ctx) {
    const { url, child } = await startSquid(
      ctx.children,
      await freePort(),
      ctx.origin.url,
      ctx.readyTimeoutMs,
    );
    return { name: 'squid', url, role: 'proxy', child };
  },
};

export const TARGETS: readonly TargetSpec[] = [
  {
    name: 'direct',
    description: 'the origin itself: the baseline for latency (its CPU is the origin CPU)',
    skipReason: () => null,
    start: async (ctx) => ({ name: 'direct', url: ctx.origin.url, role: 'origin', child: ctx.origin.child }),
  },
  referenceProxy('http-proxy', 'http-proxy.ts', 'http-proxy pass-through with a keep-alive Agent'),
  referenceProxy('undici-pool', 'undici-pool.ts', 'undici Pool pass-through (pool.request + pipeline)'),
  referenceProxy(
    'undici-pool-stream',
    'undici-pool.ts',
    'undici Pool pass-through writing into the response (pool.stream)',
    ['--stream'],
  ),
  sidecache,
  sidecacheL2(CACHE_SCENARIOS),
  bareNode('bare-node', 'bare node:http serving the same bytes from memory (cache-hit reference)', []),
  bareNode(
    'bare-node-hit-head',
    "bare-node sending a sidecache hit's whole head from memory (what the head alone costs)",
    ['--hit-head'],
  ),
  {
    ...referenceProxy(
      'node-min-cache',
      'node-min-cache.ts',
      'the least a Node cache can do: Map by URL, max-age, Age and Cache-Status (cache-hit reference)',
    ),
    scenarios: CACHE_SCENARIOS,
  },
  nginxCache,
  varnish,
  squid,
];
