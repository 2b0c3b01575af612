// The peer table: the same cache-hit and pass-through workloads through sidecache and the
// established caches (nginx, Varnish, Squid, where installed) beside the limit for a Node process.
// Rounds are interleaved (round 1 runs every target once, then round 2, each round starting one
// target later), so a noisy neighbour on a shared machine hits every target alike; the table shows
// the median over rounds. See bench/README.md ("The peer table").
import type { Child, ChildGroup } from '../harness/children.js';
import { loadAverage } from '../harness/harness.js';
import type { LoadGenerator, LoadResult } from '../harness/load.js';
import { probe } from '../harness/measure.js';
import type { Pinning } from '../harness/pinning.js';
import type { CpuClock } from '../harness/proc.js';
import { columnLines, fixed } from '../harness/report.js';
import { peakRssMib } from '../harness/rss.js';
import { BODY_BYTES } from '../targets/body.js';
import {
  type RunningOrigin,
  type RunningTarget,
  startOrigin,
  TARGETS,
  type TargetName,
} from '../targets/index.js';
import { requestFor, SCENARIOS } from './requests.js';

export type PeerWorkloadName = 'cache-hit' | 'pass-through';

interface PeerWorkload {
  readonly name: PeerWorkloadName;
  /** The bench scenario whose request it sends (bench/scenarios.ts). */
  readonly scenario: string;
  /** The target every other row is divided by. */
  readonly limit: TargetName;
  readonly targets: readonly TargetName[];
}

const PEERS: readonly TargetName[] = ['sidecache', 'nginx-cache', 'varnish', 'squid'];

export const PEER_WORKLOADS: readonly PeerWorkload[] = [
  // bare-node writes the stored bytes from memory: no cache lookup at all. node-min-cache adds the
  // least any cache does (a Map lookup by URL, max-age, Age and Cache-Status): the Node ceiling.
  // bare-node-hit-head writes from memory the whole head a sidecache hit sends.
  {
    name: 'cache-hit',
    scenario: 'fresh-hit',
    limit: 'bare-node',
    targets: [...PEERS, 'node-min-cache', 'bare-node-hit-head', 'bare-node'],
  },
  // The undici forwarders are bare Node forwarders (no routing, policy or cache): undici-pool-stream
  // (pool.stream, writing into the response) is the limit; undici-pool (pool.request + pipeline,
  // an intermediate Readable per response) is the common shape.
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

export interface PeerDeps {
  readonly children: ChildGroup;
  readonly repoRoot: string;
  readonly load: LoadGenerator;
  readonly pinning: Pinning;
  readonly cpu: CpuClock | null;
  readonly readyTimeoutMs: number;
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

interface Round {
  readonly load: LoadResult;
  readonly cpuUsPerReq: number | null;
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function cpuOf(cpu: CpuClock | null, child: Child): number | null {
  return cpu && !child.hasExited() ? cpu.cpuSeconds(child.pid) : null;
}

async function measureRound(
  workload: PeerWorkload,
  target: RunningTarget,
  ctx: { deps: PeerDeps; origin: RunningOrigin; running: readonly RunningTarget[]; opts: PeerTableOptions },
): Promise<Round> {
  const scenario = SCENARIOS.find((s) => s.name === workload.scenario);
  if (!scenario) throw new Error(`unknown scenario ${workload.scenario}`);
  const request = requestFor(scenario, target, ctx.origin.url);
  await probe(request, BODY_BYTES);
  const others = [ctx.origin.child.pid, process.pid, ...ctx.running.map((t) => t.child.pid)];
  ctx.deps.pinning.isolate(target.child.pid, others);
  const plan = { request, connections: ctx.opts.connections };
  if (ctx.opts.warmupMs > 0) await ctx.deps.load.run({ ...plan, durationMs: ctx.opts.warmupMs });
  const before = cpuOf(ctx.deps.cpu, target.child);
  const load = await ctx.deps.load.run({ ...plan, durationMs: ctx.opts.durationMs });
  const after = cpuOf(ctx.deps.cpu, target.child);
  if (target.child.hasExited()) throw new Error(`exited during the run: ${target.child.outputTail()}`);
  if (load.requests === 0) throw new Error('no response completed');
  if (load.non2xx > 0 || load.socketErrors > 0)
    throw new Error(`${load.non2xx} non-2xx responses, ${load.socketErrors} socket errors/timeouts`);
  const cpuUsPerReq = before === null || after === null ? null : ((after - before) * 1e6) / load.requests;
  return { load, cpuUsPerReq };
}

/** Starts the origin and every peer that is installed, runs the interleaved rounds, stops them all. */
export async function runPeerTable(deps: PeerDeps, opts: PeerTableOptions): Promise<PeerTableResult> {
  const origin = await startOrigin(deps.children, deps.repoRoot, deps.readyTimeoutMs);
  const wanted = [...new Set(PEER_WORKLOADS.flatMap((w) => w.targets))];
  const running: RunningTarget[] = [];
  const skipped: { target: TargetName; reason: string }[] = [];
  const startFailures = new Map<TargetName, string>();
  try {
    for (const name of wanted) {
      const spec = TARGETS.find((t) => t.name === name);
      if (!spec) throw new Error(`unknown target ${name}`);
      const skip = spec.skipReason(deps.repoRoot);
      if (skip !== null) {
        skipped.push({ target: name, reason: skip });
        continue;
      }
      try {
        running.push(
          await spec.start({
            children: deps.children,
            repoRoot: deps.repoRoot,
            origin,
            readyTimeoutMs: deps.readyTimeoutMs,
          }),
        );
      } catch (err) {
        startFailures.set(name, `did not start: ${(err as Error).message}`);
      }
    }

    const rows: PeerRow[] = [];
    for (const workload of PEER_WORKLOADS) {
      const targets = running.filter((t) => workload.targets.includes(t.name));
      const rounds = new Map<TargetName, Round[]>(targets.map((t) => [t.name, []]));
      const failures = new Map<TargetName, string>();
      for (let r = 0; r < opts.rounds; r++) {
        for (let i = 0; i < targets.length; i++) {
          const target = targets[(i + r) % targets.length] as RunningTarget;
          if (failures.has(target.name)) continue;
          try {
            rounds
              .get(target.name)
              ?.push(await measureRound(workload, target, { deps, origin, running, opts }));
          } catch (err) {
            failures.set(target.name, (err as Error).message);
          }
        }
      }
      const medians = (name: TargetName) => {
        const list = rounds.get(name) ?? [];
        const cpu = list.map((x) => x.cpuUsPerReq).filter((x): x is number => x !== null);
        return {
          rounds: list.length,
          rps: median(list.map((x) => x.load.rps)),
          p50Ms: median(list.map((x) => x.load.p50Ms)),
          p99Ms: median(list.map((x) => x.load.p99Ms)),
          cpuUsPerReq: median(cpu),
          errors: list.reduce((sum, x) => sum + x.load.non2xx + x.load.socketErrors, 0),
        };
      };
      const limit = failures.has(workload.limit) ? null : medians(workload.limit).rps;
      for (const name of workload.targets) {
        const target = targets.find((t) => t.name === name);
        const notStarted = startFailures.get(name);
        if (!target) {
          if (notStarted) rows.push(emptyRow(workload.name, name, notStarted));
          continue;
        }
        const m = medians(name);
        const failure = failures.get(name) ?? null;
        rows.push({
          workload: workload.name,
          target: name,
          ...m,
          ratioVsLimit: failure === null && m.rps !== null && limit ? m.rps / limit : null,
          peakRssMib: peakRssMib(target.child.process.pid ?? target.child.pid),
          failure,
        });
      }
    }
    const context = [`CPU: ${deps.pinning.description}`, `load average at the end: ${loadAverage()}`];
    return { rows, skipped, table: formatPeerTable(rows, skipped, opts, context) };
  } finally {
    await Promise.all([...running.map((t) => t.child.stop()), origin.child.stop()]);
  }
}

function emptyRow(workload: PeerWorkloadName, target: TargetName, failure: string): PeerRow {
  return {
    workload,
    target,
    rounds: 0,
    rps: null,
    p50Ms: null,
    p99Ms: null,
    cpuUsPerReq: null,
    ratioVsLimit: null,
    peakRssMib: null,
    errors: 0,
    failure,
  };
}

const COLUMNS = [
  'workload',
  'target',
  'rounds',
  'req/s',
  'x limit',
  'p50 ms',
  'p99 ms',
  'CPU µs/req',
  'peak RSS MiB',
  'errors',
];

export function formatPeerTable(
  rows: readonly PeerRow[],
  skipped: readonly { target: TargetName; reason: string }[],
  opts: PeerTableOptions,
  context: readonly string[] = [],
): string {
  const body = rows.map((r) => [
    r.workload,
    r.target,
    String(r.rounds),
    fixed(r.rps, 0),
    fixed(r.ratioVsLimit, 2),
    fixed(r.p50Ms, 3),
    fixed(r.p99Ms, 3),
    fixed(r.cpuUsPerReq, 1),
    fixed(r.peakRssMib, 1),
    r.failure ? 'FAILED' : String(r.errors),
  ]);
  return [
    `peer table: ${opts.rounds} interleaved round(s) per target, each ${opts.warmupMs / 1000} s warm-up + ` +
      `${opts.durationMs / 1000} s measured, ${opts.connections} connections; medians over rounds`,
    "x limit: req/s / the limit's req/s (cache-hit: bare-node, node:http writing the bytes from memory; " +
      'pass-through: undici-pool-stream, a bare Node forwarder on pool.stream)',
    "peak RSS: VmHWM summed over the target's processes (/proc/PID/status), since it started",
    ...context,
    ...skipped.map((s) => `${s.target} ${s.reason}`),
    '',
    ...columnLines(COLUMNS, body, 2),
    ...rows.filter((r) => r.failure).map((r) => `FAILED ${r.workload} / ${r.target}: ${r.failure}`),
  ].join('\n');
}
