// `npm run bench:sweep`: how throughput and tail latency move with load. Pass-through and cache-hit
// through sidecache, each beside its Node reference (undici-pool, a bare forwarder; bare-node,
// the bytes from memory), at 1, 10, 100 and 1,000 concurrent keep-alive connections. Every point
// is a short warm-up plus a few measured seconds; the script never fails on a number, only when a
// target cannot start or serves an error. See bench/README.md ("Load sweep").
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  type Harness,
  READY_TIMEOUT_MS,
  repoRoot,
  runSweepScript,
  sidecacheConfigFile,
} from '../harness/harness.js';
import type { LoadResult } from '../harness/load.js';
import { probe } from '../harness/measure.js';
import { columnLines, fixed } from '../harness/report.js';
import { BODY_BYTES } from '../targets/body.js';
import {
  type RunningOrigin,
  type RunningTarget,
  sidecacheBuild,
  startOrigin,
  startSidecache,
  TARGETS,
  type TargetName,
} from '../targets/index.js';
import { requestFor, SCENARIOS } from './requests.js';

export interface SweepOptions {
  readonly connections: readonly number[];
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface SweepPoint {
  readonly workload: 'pass-through' | 'cache-hit';
  readonly target: TargetName;
  readonly connections: number;
  readonly load: LoadResult | null;
  readonly cpuUsPerReq: number | null;
  readonly failure: string | null;
}

const SWEEP: readonly {
  workload: SweepPoint['workload'];
  scenario: string;
  targets: readonly TargetName[];
}[] = [
  { workload: 'pass-through', scenario: 'pass-through', targets: ['sidecache', 'undici-pool'] },
  { workload: 'cache-hit', scenario: 'fresh-hit', targets: ['sidecache', 'bare-node'] },
];

/** 1,000 connections from one address is sidecache's default per-client limit: lift it here. */
const SWEEP_CONFIG = 'limits:\n  maxConnectionsPerClient: 10000\n  maxConnections: 20000\n';

async function startTarget(h: Harness, name: TargetName, origin: RunningOrigin, configPath: string) {
  const ctx = { children: h.children, repoRoot, origin, readyTimeoutMs: READY_TIMEOUT_MS };
  if (name === 'sidecache') {
    const { url, child } = await startSidecache(ctx, {
      serveArgs: ['--config', configPath],
      fromSource: sidecacheBuild(repoRoot).fromSource,
    });
    return { name, url, role: 'proxy', child } satisfies RunningTarget;
  }
  const spec = TARGETS.find((t) => t.name === name);
  if (!spec) throw new Error(`unknown target ${name}`);
  return spec.start(ctx);
}

export async function runLoadSweep(
  h: Harness,
  opts: SweepOptions,
): Promise<{ points: SweepPoint[]; table: string }> {
  const config = sidecacheConfigFile(SWEEP_CONFIG);
  const origin = await startOrigin(h.children, repoRoot, READY_TIMEOUT_MS);
  const points: SweepPoint[] = [];
  try {
    const names = [...new Set(SWEEP.flatMap((s) => s.targets))];
    const running: RunningTarget[] = [];
    for (const name of names) running.push(await startTarget(h, name, origin, config.path));
    for (const sweep of SWEEP) {
      const scenario = SCENARIOS.find((s) => s.name === sweep.scenario);
      if (!scenario) throw new Error(`unknown scenario ${sweep.scenario}`);
      for (const connections of opts.connections) {
        for (const name of sweep.targets) {
          const target = running.find((t) => t.name === name) as RunningTarget;
          points.push(
            await measurePoint(h, sweep.workload, target, origin, running, connections, opts, scenario),
          );
        }
      }
    }
    await Promise.all([...running.map((t) => t.child.stop()), origin.child.stop()]);
  } finally {
    config.remove();
  }
  return { points, table: formatSweep(points, h, opts) };
}

async function measurePoint(
  h: Harness,
  workload: SweepPoint['workload'],
  target: RunningTarget,
  origin: RunningOrigin,
  running: readonly RunningTarget[],
  connections: number,
  opts: SweepOptions,
  scenario: (typeof SCENARIOS)[number],
): Promise<SweepPoint> {
  const base = { workload, target: target.name, connections };
  const request = requestFor(scenario, target, origin.url);
  try {
    await probe(request, BODY_BYTES);
    h.pinning.isolate(target.child.pid, [origin.child.pid, process.pid, ...running.map((t) => t.child.pid)]);
    if (opts.warmupMs > 0) await h.load.run({ request, connections, durationMs: opts.warmupMs });
    const before = h.cpu?.cpuSeconds(target.child.pid) ?? null;
    const load = await h.load.run({ request, connections, durationMs: opts.durationMs });
    const after = target.child.hasExited() ? null : (h.cpu?.cpuSeconds(target.child.pid) ?? null);
    const failure = target.child.hasExited()
      ? `exited: ${target.child.outputTail()}`
      : load.requests === 0
        ? 'no response completed'
        : load.non2xx + load.socketErrors > 0
          ? `${load.non2xx} non-2xx responses, ${load.socketErrors} socket errors/timeouts`
          : null;
    const cpuUsPerReq =
      before !== null && after !== null && load.requests > 0
        ? ((after - before) * 1e6) / load.requests
        : null;
    return { ...base, load, cpuUsPerReq, failure };
  } catch (err) {
    return { ...base, load: null, cpuUsPerReq: null, failure: (err as Error).message };
  }
}

export function formatSweep(points: readonly SweepPoint[], h: Harness, opts: SweepOptions): string {
  const columns = ['workload', 'target', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'errors'];
  const body = points.map((p) => [
    p.workload,
    p.target,
    String(p.connections),
    fixed(p.load?.rps, 0),
    fixed(p.load?.p50Ms, 3),
    fixed(p.load?.p99Ms, 3),
    fixed(p.cpuUsPerReq, 1),
    p.failure ? 'FAILED' : String((p.load?.non2xx ?? 0) + (p.load?.socketErrors ?? 0)),
  ]);
  return [
    `load sweep: ${h.header[0]}`,
    ...h.header.slice(1),
    fdLimitNote(Math.max(...opts.connections)),
    `sidecache: ${sidecacheBuild(repoRoot).label}; each point ${opts.warmupMs / 1000} s warm-up + ${opts.durationMs / 1000} s measured; ${BODY_BYTES}-byte JSON body`,
    '',
    ...columnLines(columns, body, 2),
    ...points
      .filter((p) => p.failure)
      .map((p) => `FAILED ${p.workload} / ${p.target} @ ${p.connections}: ${p.failure}`),
  ].join('\n');
}

/** The soft open-files limit children inherit (Node raises its own to the hard limit at start). */
export function fdLimitNote(connections: number): string {
  let soft = 'unknown';
  try {
    soft = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? soft;
  } catch {
    // not Linux
  }
  const enough = soft === 'unlimited' || Number(soft) >= connections * 2 + 256;
  return `open files limit (inherited by wrk and the targets): ${soft}${enough ? '' : ` - too low for ${connections} connections: raise it (ulimit -n 65536) before running`}`;
}

function parseSweepArgs(argv: readonly string[]): SweepOptions & { pin: boolean; json: string } {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      quick: { type: 'boolean' },
      connections: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'no-pin': { type: 'boolean' },
      json: { type: 'string' },
    },
  });
  const quick = values.quick === true;
  // Quick (the smoke run) leaves out 1,000: opening that many connections takes longer than its window.
  const connections = (values.connections ?? (quick ? '1,10,100' : '1,10,100,1000')).split(',').map(Number);
  if (connections.some((c) => !Number.isInteger(c) || c < 1 || c > 5000)) {
    throw new Error(`--connections: "${values.connections}" is not a list of integers in [1, 5000]`);
  }
  const seconds = (raw: string | undefined, fallback: number) => {
    const v = raw === undefined ? fallback : Number(raw);
    if (!Number.isFinite(v) || v < 0 || v > 120)
      throw new Error(`"${raw}" is not a number of seconds in [0, 120]`);
    return Math.round(v * 1000);
  };
  return {
    connections,
    warmupMs: seconds(values.warmup, quick ? 0.2 : 1),
    durationMs: seconds(values.duration, quick ? 0.5 : 3),
    pin: values['no-pin'] !== true,
    json: values.json ?? 'bench/results/sweep.json',
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const opts = parseSweepArgs(process.argv.slice(2));
  await runSweepScript(opts, async (h) => {
    const { points, table } = await runLoadSweep(h, opts);
    return { table, results: { points }, failed: points.some((p) => p.failure) };
  });
}
