// Starting sidecache for the bench: `node dist/cli.js serve` (the TypeScript source through tsx when
// not built, or when asked) on free loopback ports, ready once its /readyz answers 200.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/helpers/ports.js';
import { type Child, type ChildGroup, startNodeServer, waitUntilReady } from '../harness/children.js';
import { repoRoot } from '../harness/harness.js';
import { ROUTE_NAME } from './route-table.js';

export const SIDECACHE_NOT_BUILT = 'not built, skipped (no dist/cli.js: run npm run build first)';

export const sidecacheBuilt = (): boolean => existsSync(join(repoRoot, 'dist/cli.js'));

/** What `startSidecache` runs by default, for table headers. */
export const sidecacheBuildLabel = (): string =>
  sidecacheBuilt() ? 'dist/cli.js' : 'src/cli.ts through tsx (not built)';

/**
 * The environment and Node flags of the installed `sidecache` command: the CLI's first line,
 * `#!/usr/bin/env -S NAME=VALUE... node FLAGS` (the image's ENTRYPOINT carries the same, kept equal
 * by test/deploy/dockerfile.test.ts).
 */
export function launcherLine(): { env: Record<string, string>; flags: string[] } {
  const file = join(repoRoot, sidecacheBuilt() ? 'dist/cli.js' : 'src/cli.ts');
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S ((?:\w+=\S*\s+)*)node(.*)$/.exec(first);
  if (m === null) throw new Error(`${file}: the first line is not the launcher line: ${first}`);
  const words = (text: string | undefined): string[] => (text ?? '').split(/\s+/).filter((w) => w !== '');
  const env: Record<string, string> = {};
  for (const assignment of words(m[1])) {
    const eq = assignment.indexOf('=');
    env[assignment.slice(0, eq)] = assignment.slice(eq + 1);
  }
  return { env, flags: words(m[2]) };
}

export interface SidecacheLaunch {
  /** Adds `--route origin=ORIGIN` to this origin URL. */
  readonly origin?: string;
  /** Extra `serve` arguments, e.g. `--config FILE`. */
  readonly serveArgs?: readonly string[];
  /** Node flags before the script, e.g. `--max-old-space-size=8192`. */
  readonly nodeArgs?: readonly string[];
  /** Environment variables set for the process beside the bench's own, e.g. `MALLOC_ARENA_MAX`. */
  readonly env?: Readonly<Record<string, string>>;
  /** src/cli.ts through tsx instead of dist/cli.js; default: only when not built. */
  readonly fromSource?: boolean;
  /** The process label in messages; default `sidecache`. */
  readonly label?: string;
  /** Default `warn`: no access log line per request. */
  readonly logLevel?: string;
}

export async function startSidecache(
  children: ChildGroup,
  launch: SidecacheLaunch = {},
): Promise<{ url: string; adminUrl: string; child: Child }> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const fromSource = launch.fromSource ?? !sidecacheBuilt();
  const child = children.spawn({
    label: launch.label ?? 'sidecache',
    command: process.execPath,
    args: [
      ...(launch.nodeArgs ?? []),
      ...(fromSource ? ['--import', 'tsx', join(repoRoot, 'src/cli.ts')] : [join(repoRoot, 'dist/cli.js')]),
      ...['serve', '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`],
      ...(launch.origin ? ['--route', `${ROUTE_NAME}=${launch.origin}`] : []),
      ...['--log-level', launch.logLevel ?? 'warn', ...(launch.serveArgs ?? [])],
    ],
    ...(launch.env ? { env: { ...process.env, ...launch.env } } : {}),
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await waitUntilReady(child, '/readyz', async () => {
    const res = await fetch(`${adminUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  });
  return { url: `http://127.0.0.1:${port}`, adminUrl, child };
}

/** sidecache's cache lookups that were hits, as a metric() name pattern (every label set). */
export const HIT_LOOKUPS = 'sidecache_cache_lookups_total\\{[^}]*result="hit"[^}]*\\}';

export interface RunningIntercept {
  readonly origin: {
    readonly child: Child;
    readonly port: number;
    /** `localhost:PORT`: what clients ask for, and the certificate's name. */
    readonly authority: string;
    readonly caFile: string;
  };
  readonly sidecache: {
    readonly child: Child;
    readonly url: string;
    readonly adminUrl: string;
    readonly caFile: string;
  };
}

/**
 * What the HTTPS new-connection bench and the Python per-call bench start: the HTTPS origin
 * (https-origin.ts) with a CA of its own, adding `handshakeDelayMs` to each TLS handshake round trip,
 * and sidecache from source (a stale dist/ never runs) intercepting `localhost` in front of it,
 * trusting the origin's CA and minting leaves from its own. Both CAs are made under `dir`.
 */
export async function startInterceptingSidecache(
  children: ChildGroup,
  setup: { dir: string; handshakeDelayMs: number; label: string; nodeArgs?: readonly string[] },
): Promise<RunningIntercept> {
  const originCaDir = join(setup.dir, 'origin-ca');
  const origin = await startNodeServer(
    children,
    'https-origin',
    join(dirname(fileURLToPath(import.meta.url)), 'https-origin.ts'),
    ['--ca-dir', originCaDir, '--handshake-delay-ms', String(setup.handshakeDelayMs)],
  );
  const port = Number(new URL(origin.url).port);
  const caFile = join(originCaDir, 'ca.pem');
  const sidecache = await startSidecache(children, {
    origin: `https://localhost:${port}`,
    label: setup.label,
    fromSource: true,
    nodeArgs: setup.nodeArgs ?? [],
    // `localhost` resolves to loopback, which the egress policy admits only by address.
    serveArgs: ['--intercept', 'localhost', '--allow', '127.0.0.1/32'].concat([
      '--ca-dir',
      join(setup.dir, 'sidecache-ca'),
      '--ca-file',
      caFile,
    ]),
  });
  return {
    origin: { child: origin.child, port, authority: `localhost:${port}`, caFile },
    sidecache: { ...sidecache, caFile: join(setup.dir, 'sidecache-ca', 'ca.pem') },
  };
}
