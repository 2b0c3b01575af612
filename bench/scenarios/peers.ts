// The peer table: the same cache-hit and pass-through workloads through sidecache and the
// established caches (nginx, Varnish, Squid, where installed) beside the limits for a Node process.
// Rounds are interleaved (round 1 runs every target once, then round 2, each round starting one
// target later), so a noisy neighbour on a shared machine hits every target alike; the table shows
// the median over rounds. See bench/README.md ("The peer table").
import { type Harness, loadAverage } from '../harness/harness.js';
import { measureRun, type RunResult } from '../harness/measure.js';
import { peakRssMib } from '../harness/proc.js';
import { columnLines, fixed } from '../harness/report.js';
import { BODY_BYTES } from '../targets/body.js';
import { type RunningTarget, startOrigin, TARGETS, type TargetName } from '../targets/index.js';
import { requestFor, SCENARIOS } from './requests.js';

export type PeerWorkloadName = 'cache-hit' | 'pass-through';

interface PeerWorkload {
  readonly name: PeerWorkloadName;
  /** The scenario whose request it sends (requests.ts). */
  readonly scenario: string;
  /** The target every other row is divided by. */
  readonly limit: TargetName;
  readonly targets: readonly TargetName[];
}

const PEERS: readonly TargetName[] = [
  'sidecache',
  'sidecache-defaults',
  'sidecache-shipped',
  'nginx-cache',
  'varnish',
  'squid',
];

export const PEER_WORKLOADS: readonly PeerWorkload[] = [
  // bare-node writes the stored bytes from memory: no cache lookup at all; bare-node-hit-head writes
  // the whole head a sidecache hit sends; node-min-cache adds the least any cache does.
  {
    name: 'cache-hit',
    scenario: 'fresh-hit',
    limit: 'bare-node',
    targets: [...PEERS, 'node-min-cache', 'bare-node-hit-head', 'bare-node'],
  },
  // Bare Node forwarders (no routing, policy or cache): undici-pool-stream (pool.stream, writing into
  // the response) is the limit; undici-pool (pool.request + pipeline) and http-proxy the common shapes.
  {
    name: 'pass-through',
    scenario: 'pass-through',
    limit: 'undici-pool-stream',
    targets: [...PEERS, 'http-proxy', 'undici-pool', 'undici-pool-stream'],
  },
];

export interface PeerTableOptions {
  readonly rounds: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly connections: number;
}

export interface PeerRow {
  readonly workload: PeerWorkloadName;
  readonly target: TargetName;
  readonly rounds: number;
  readonly rps: number | null;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly cpuUsPerReq: number | null;
  /** Median req/s divided by the workload's limit's median req/s. */
  readonly ratioVsLimit: number | null;
  /** Median CPU µs per request divided by the limit's (pass-through target: at most 1.3). */
  readonly cpuVsLimit: number | null;
  /** Sum of VmHWM over the target's processes after this workload's rounds, MiB. */
  readonly peakRssMib: number | null;
  readonly errors: number;
  readonly failure: string | null;
}

export interface PeerTableResult {
  readonly rows: readonly PeerRow[];
  readonly skipped: readonly { target: TargetName; reason: string }[];
  readonly table: string;
}

export function median(values: readonly (number | null)[]): number | null {
  const sorted = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Starts the origin and every peer that is installed, runs the interleaved rounds, stops them all. */
export async function runPeerTable(h: Harness, opts: PeerTableOptions): Promise<PeerTableResult> {
  const origin = await startOrigin(h.children);
  const running: RunningTarget[] = [];
  const skipped: { target: TargetName; reason: string }[] = [];
  const failures = new Map<TargetName, string>();
  try {
    for (const name of new Set(PEER_WORKLOADS.flatMap((w) => w.targets))) {
      const spec = TARGETS.find((t) => t.name === name) as (typeof TARGETS)[number];
      const skip = spec.skipReason();
      if (skip !== null) skipped.push({ target: name, reason: skip });
      else
        await spec.start({ children: h.children, origin }).then(
          (t) => running.push(t),
          (err: Error) => failures.set(name, `did not start: ${err.message}`),
        );
    }
    const rows: PeerRow[] = [];
    for (const workload of PEER_WORKLOADS) {
      const scenario = SCENARIOS.find((s) => s.name === workload.scenario) as (typeof SCENARIOS)[number];
      const targets = running.filter((t) => workload.targets.includes(t.name));
      const rounds = new Map<TargetName, RunResult[]>(targets.map((t) => [t.name, []]));
      const failed = new Map<TargetName, string>();
      for (let r = 0; r < opts.rounds; r++) {
        for (let i = 0; i < targets.length; i++) {
          const target = targets[(i + r) % targets.length] as RunningTarget;
          if (failed.has(target.name)) continue;
          const result = await measureRun(h, {
            ...opts,
            request: requestFor(scenario, target, origin.url),
            expectedBytes: BODY_BYTES,
            target: target.child,
            others: [origin.child.pid, process.pid, ...running.map((t) => t.child.pid)],
          });
          if (result.failure) failed.set(target.name, result.failure);
          else rounds.get(target.name)?.push(result);
        }
      }
      const limitRuns = failed.has(workload.limit) ? [] : (rounds.get(workload.limit) ?? []);
      const limit = median(limitRuns.map((x) => x.load?.rps ?? null));
      const limitCpu = median(limitRuns.map((x) => x.cpuUsPerReq));
      for (const name of workload.targets) {
        const target = targets.find((t) => t.name === name);
        const list = rounds.get(name) ?? [];
        const failure = target ? (failed.get(name) ?? null) : failures.get(name);
        if (failure === undefined) continue; // skipped
        const rps = median(list.map((x) => x.load?.rps ?? null));
        const cpuUsPerReq = median(list.map((x) => x.cpuUsPerReq));
        rows.push({
          workload: workload.name,
          target: name,
          rounds: list.length,
          rps,
          p50Ms: median(list.map((x) => x.load?.p50Ms ?? null)),
          p99Ms: median(list.map((x) => x.load?.p99Ms ?? null)),
          cpuUsPerReq,
          ratioVsLimit: failure === null && rps !== null && limit ? rps / limit : null,
          cpuVsLimit: failure === null && cpuUsPerReq !== null && limitCpu ? cpuUsPerReq / limitCpu : null,
          peakRssMib: target ? peakRssMib(target.child.process.pid ?? target.child.pid) : null,
          errors: list.reduce((sum, x) => sum + (x.load ? x.load.non2xx + x.load.socketErrors : 0), 0),
          failure,
        });
      }
    }
    const context = [`CPU: ${h.pinning.description}`, `load average at the end: ${loadAverage()}`];
    return { rows, skipped, table: formatPeerTable(rows, skipped, opts, context) };
  } finally {
    await Promise.all([...running.map((t) => t.child.stop()), origin.child.stop()]);
  }
}

export function formatPeerTable(
  rows: readonly PeerRow[],
  skipped: readonly { target: TargetName; reason: string }[],
  opts: PeerTableOptions,
  context: readonly string[] = [],
): string {
  const columns = [
    'workload',
    'target',
    'rounds',
    'req/s',
    'x limit',
    'p50 ms',
    'p99 ms',
    'CPU µs/req',
    'CPU x limit',
  ];
  const body = rows.map((r) => [
    r.workload,
    r.target,
    String(r.rounds),
    fixed(r.rps, 0),
    fixed(r.ratioVsLimit, 2),
    fixed(r.p50Ms, 3),
    fixed(r.p99Ms, 3),
    fixed(r.cpuUsPerReq, 1),
    fixed(r.cpuVsLimit, 2),
    fixed(r.peakRssMib, 1),
    r.failure ? 'FAILED' : String(r.errors),
  ]);
  return [
    `peer table: ${opts.rounds} interleaved round(s) per target, each ${opts.warmupMs / 1000} s warm-up + ` +
      `${opts.durationMs / 1000} s measured, ${opts.connections} connections; medians over rounds`,
    "x limit: req/s / the limit's req/s (cache-hit: bare-node, node:http writing the bytes from memory; " +
      "pass-through: undici-pool-stream, a bare Node forwarder on pool.stream); CPU x limit: CPU µs/req / the limit's",
    "peak RSS: VmHWM summed over the target's processes (/proc/PID/status), since it started",
    ...context,
    ...skipped.map((s) => `${s.target} ${s.reason}`),
    '',
    ...columnLines([...columns, 'peak RSS MiB', 'errors'], body, 2),
    ...rows.filter((r) => r.failure).map((r) => `FAILED ${r.workload} / ${r.target}: ${r.failure}`),
  ].join('\n');
}
