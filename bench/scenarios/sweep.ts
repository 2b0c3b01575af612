// `npm run bench:sweep`: how throughput and tail latency move with load. Pass-through and cache-hit
// through sidecache, each beside its Node reference (undici-pool, a bare forwarder; bare-node, the
// bytes from memory), at 1, 10, 100 and 1,000 concurrent keep-alive connections. The script never
// fails on a number, only when a target cannot start or serves an error. See bench/README.md.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type Harness, integers, runScript, seconds, withConfigFile } from '../harness/harness.js';
import { measureRun, type RunResult } from '../harness/measure.js';
import { columnLines, fixed } from '../harness/report.js';
import { BODY_BYTES } from '../targets/body.js';
import { type RunningTarget, startOrigin, TARGETS, type TargetName } from '../targets/index.js';
import { sidecacheBuildLabel, startSidecache } from '../targets/sidecache.js';
import { requestFor, SCENARIOS } from './requests.js';

export interface SweepOptions {
  readonly connections: readonly number[];
  readonly warmupMs: number;
  readonly durationMs: number;
}

export interface SweepPoint extends RunResult {
  readonly workload: 'pass-through' | 'cache-hit';
  readonly target: TargetName;
  readonly connections: number;
}

const SWEEP = [
  { workload: 'pass-through', scenario: 'pass-through', targets: ['sidecache', 'undici-pool'] },
  { workload: 'cache-hit', scenario: 'fresh-hit', targets: ['sidecache', 'bare-node'] },
] as const;

/** 1,000 connections from one address is sidecache's default per-client limit: lift it here. */
const SWEEP_CONFIG = 'limits:\n  maxConnectionsPerClient: 10000\n  maxConnections: 20000\n';

export async function runLoadSweep(
  h: Harness,
  opts: SweepOptions,
): Promise<{ points: SweepPoint[]; table: string }> {
  const origin = await startOrigin(h.children);
  const points: SweepPoint[] = [];
  await withConfigFile(SWEEP_CONFIG, async (config) => {
    const running: RunningTarget[] = [];
    for (const name of new Set(SWEEP.flatMap((s) => s.targets))) {
      const start =
        name === 'sidecache'
          ? startSidecache(h.children, { origin: origin.url, serveArgs: ['--config', config] }).then(
              ({ url, child }): RunningTarget => ({ name, url, role: 'proxy', child }),
            )
          : (TARGETS.find((t) => t.name === name) as (typeof TARGETS)[number]).start({
              children: h.children,
              origin,
            });
      running.push(await start);
    }
    for (const sweep of SWEEP) {
      const scenario = SCENARIOS.find((s) => s.name === sweep.scenario) as (typeof SCENARIOS)[number];
      for (const connections of opts.connections) {
        for (const target of running.filter((t) => (sweep.targets as readonly string[]).includes(t.name))) {
          const run = await measureRun(h, {
            ...opts,
            connections,
            request: requestFor(scenario, target, origin.url),
            expectedBytes: BODY_BYTES,
            target: target.child,
            others: [origin.child.pid, process.pid, ...running.map((t) => t.child.pid)],
          });
          points.push({ workload: sweep.workload, target: target.name, connections, ...run });
        }
      }
    }
    await Promise.all([...running.map((t) => t.child.stop()), origin.child.stop()]);
  });
  return { points, table: formatSweep(points, h, opts) };
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
    `sidecache: ${sidecacheBuildLabel()}; each point ${opts.warmupMs / 1000} s warm-up + ${opts.durationMs / 1000} s measured; ${BODY_BYTES}-byte JSON body`,
    '',
    ...columnLines(columns, body, 2),
    ...points
      .filter((p) => p.failure)
      .map((p) => `FAILED ${p.workload} / ${p.target} @ ${p.connections}: ${p.failure}`),
  ].join('\n');
}

/** The soft open-files limit children inherit (Node raises its own to the hard limit at start). */
export function fdLimitNote(connections: number): string {
  const soft = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 'unknown';
  const enough = soft === 'unlimited' || Number(soft) >= connections * 2 + 256;
  return `open files limit (inherited by wrk and the targets): ${soft}${enough ? '' : ` - too low for ${connections} connections: raise it (ulimit -n 65536) before running`}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
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
  const opts = {
    connections: integers('--connections', values.connections, quick ? '1,10,100' : '1,10,100,1000', 1, 5000),
    warmupMs: seconds('--warmup', values.warmup, quick ? 0.2 : 1, 0, 120),
    durationMs: seconds('--duration', values.duration, quick ? 0.5 : 3, 0.1, 120),
    pin: values['no-pin'] !== true,
    json: values.json ?? 'bench/results/sweep.json',
  };
  await runScript(opts, async (h) => {
    const { points, table } = await runLoadSweep(h, opts);
    return { table, results: { points }, failed: points.some((p) => p.failure) };
  });
}
