// What the harness asks of a load generator: hold `connections` keep-alive connections to one URL
// for a fixed time, send one request shape, and report throughput, latency percentiles and errors.
import { spawnSync } from 'node:child_process';
import { createAutocannonLoad } from './autocannon.js';
import type { ChildGroup } from './children.js';
import type { Pinning } from './pinning.js';
import { createWrkLoad } from './wrk.js';

export type LoadGeneratorName = 'wrk' | 'autocannon';

export interface LoadRequest {
  /** Where to connect: `http://127.0.0.1:PORT`. */
  readonly connectUrl: string;
  /** Request-target: origin-form (`/origin/no-store/item`) or absolute-form for a forward proxy. */
  readonly requestTarget: string;
  /** Host header value. */
  readonly host: string;
  /** Accept-Encoding header value; none sent when absent. */
  readonly acceptEncoding?: string;
}

export interface LoadPlan {
  readonly request: LoadRequest;
  readonly connections: number;
  readonly durationMs: number;
}

export interface LoadResult {
  /** Responses completed within the window. */
  readonly requests: number;
  readonly durationS: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Responses with a status outside 200-299. */
  readonly non2xx: number;
  /** Connect, read and write errors plus timeouts. */
  readonly socketErrors: number;
}

export interface LoadGenerator {
  readonly name: LoadGeneratorName;
  run(plan: LoadPlan): Promise<LoadResult>;
}

export interface LoadDeps {
  readonly children: ChildGroup;
  readonly pinning: Pinning;
  readonly benchDir: string;
}

export function wrkInstalled(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore', timeout: 5000 }).error === undefined;
}

/** `auto` takes wrk when installed (C: it leaves the CPU to the processes under test), else autocannon. */
export function chooseLoadGenerator(
  wanted: LoadGeneratorName | 'auto',
  deps: LoadDeps,
): { generator: LoadGenerator; note: string | null } {
  if (wanted === 'autocannon') return { generator: createAutocannonLoad(deps), note: null };
  if (wrkInstalled()) return { generator: createWrkLoad(deps), note: null };
  if (wanted === 'wrk') throw new Error('--loadgen wrk: wrk is not installed (apt-get install -y wrk)');
  return {
    generator: createAutocannonLoad(deps),
    note: 'wrk not found (apt-get install -y wrk): using autocannon, a Node load generator that needs more CPU',
  };
}

/** Reads the `BENCH_RESULT {json}` line both generators print. */
export function parseResultLine(stdout: string): unknown {
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  return line === undefined ? null : JSON.parse(line.slice('BENCH_RESULT '.length));
}

/** Kills a load generator that overruns its window by more than `graceMs`; all runs are bounded. */
export function watchdogMs(durationMs: number): number {
  return durationMs + 20_000;
}
