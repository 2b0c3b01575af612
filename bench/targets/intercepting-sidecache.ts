// What the HTTPS new-connection bench (scenarios/https.ts) and the Python per-call cost bench
// (scenarios/python-cost.ts) both start: the HTTPS origin (https-origin.ts) with a CA of its own, and sidecache
// from source (tsx, so a stale dist/ never runs) intercepting `localhost` in front of it, trusting
// the origin's CA and minting leaves from a CA of its own. Both CAs are made under `dir`.
import { join } from 'node:path';
import type { Child, ChildGroup } from '../harness/children.js';
import { startBenchServer, startSidecache } from './index.js';

/** sidecache's cache lookups that were hits, as a metricSum() name pattern (every label set). */
export const HIT_LOOKUPS = 'sidecache_cache_lookups_total\\{[^}]*result="hit"[^}]*\\}';

export interface InterceptSetup {
  readonly children: ChildGroup;
  readonly repoRoot: string;
  /** Where both CA directories go (`origin-ca/`, `sidecache-ca/`); the caller removes it. */
  readonly dir: string;
  /** Added by the origin to each TLS handshake round trip. */
  readonly handshakeDelayMs: number;
  readonly readyTimeoutMs: number;
  /** sidecache's process label in messages. */
  readonly label: string;
  /** Node flags for sidecache, e.g. `--cpu-prof`. */
  readonly nodeArgs?: readonly string[];
}

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
    readonly port: number;
    readonly url: string;
    readonly adminUrl: string;
    readonly caFile: string;
  };
}

export async function startInterceptingSidecache(setup: InterceptSetup): Promise<RunningIntercept> {
  const originCaDir = join(setup.dir, 'origin-ca');
  const origin = await startBenchServer(
    setup.children,
    'https-origin',
    join(setup.repoRoot, 'bench/targets/https-origin.ts'),
    ['--ca-dir', originCaDir, '--handshake-delay-ms', String(setup.handshakeDelayMs)],
    setup.readyTimeoutMs,
  );
  const originPort = Number(new URL(origin.url).port);
  const authority = `localhost:${originPort}`;
  const originCaFile = join(originCaDir, 'ca.pem');
  const scCaDir = join(setup.dir, 'sidecache-ca');
  const sidecache = await startSidecache(
    {
      children: setup.children,
      repoRoot: setup.repoRoot,
      origin: { url: `https://${authority}`, child: origin.child },
      readyTimeoutMs: setup.readyTimeoutMs,
    },
    {
      label: setup.label,
      fromSource: true,
      nodeArgs: setup.nodeArgs ?? [],
      serveArgs: [
        '--intercept',
        'localhost',
        // `localhost` resolves to loopback, which the egress policy admits only by address.
        '--allow',
        '127.0.0.1/32',
        '--ca-dir',
        scCaDir,
        '--ca-file',
        originCaFile,
      ],
    },
  );
  return {
    origin: { child: origin.child, port: originPort, authority, caFile: originCaFile },
    sidecache: {
      ...sidecache,
      port: Number(new URL(sidecache.url).port),
      caFile: join(scCaDir, 'ca.pem'),
    },
  };
}
