// The load generator, wrk: hold `connections` keep-alive connections to one URL for a fixed time,
// send one request shape, and report throughput, latency percentiles and errors (C, one thread
// pinned to the load CPU, Lua scripts beside this file for exact p50/p99 and a non-2xx count).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import type { ChildGroup } from './children.js';
import type { Pinning } from './pinning.js';

const HERE = dirname(fileURLToPath(import.meta.url));

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
  readonly maxMs: number;
  /** Responses with a status outside 200-299. */
  readonly non2xx: number;
  /** Connect, read and write errors plus timeouts. */
  readonly socketErrors: number;
  /** Requests with no answer within the generator's timeout (counted in socketErrors too). */
  readonly timeouts: number;
}

export interface LoadGenerator {
  readonly name: 'wrk';
  run(plan: LoadPlan): Promise<LoadResult>;
}

export interface LoadDeps {
  readonly children: ChildGroup;
  readonly pinning: Pinning;
}

export function wrkInstalled(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore', timeout: 5000 }).error === undefined;
}

/** wrk, or an error saying how to install it. */
export function loadGenerator(deps: LoadDeps): LoadGenerator {
  if (!wrkInstalled()) throw new Error('wrk is not installed (apt-get install -y wrk)');
  return wrkLoad(deps);
}

/** Reads the `BENCH_RESULT {json}` line the Lua scripts print. */
function resultLine(stdout: string): Record<string, number> | null {
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  return line === undefined ? null : JSON.parse(line.slice('BENCH_RESULT '.length));
}

export interface WrkScriptRun {
  /** A Lua script beside this file: wrk-report.lua, wrk-keys.lua. */
  readonly script: string;
  readonly connectUrl: string;
  readonly connections: number;
  readonly durationMs: number;
  /** wrk's --timeout, e.g. `5s`. */
  readonly timeout: string;
  /** wrk threads; default 1 (it is pinned to the load CPU). */
  readonly threads?: number;
  /** Environment the script reads (added to this process's). */
  readonly env: Readonly<Record<string, string>>;
  /** Polled every 250 ms while wrk runs; once it resolves true, wrk is stopped (SIGINT) and reports. */
  readonly stopWhen?: () => Promise<boolean>;
}

/**
 * Runs wrk with one of the bench Lua scripts and returns its report, plus the script's own extra
 * fields. wrk takes whole seconds, so a fractional window is ended with SIGINT, on which wrk stops
 * and reports as usual; every run is killed 20 s after its window at the latest.
 */
export async function runWrkScript(
  deps: LoadDeps,
  run: WrkScriptRun,
): Promise<{ load: LoadResult; extra: Readonly<Record<string, number>> }> {
  const wholeSeconds = Math.max(1, Math.ceil(run.durationMs / 1000));
  const { command, args } = deps.pinning.wrap('wrk', [
    `-t${run.threads ?? 1}`,
    `-c${run.connections}`,
    `-d${wholeSeconds}s`,
    '--timeout',
    run.timeout,
    '-s',
    join(HERE, run.script),
    `${run.connectUrl}/`,
  ]);
  // wrk-result.lua, which the scripts `require`, sits beside them.
  const env = { ...process.env, LUA_PATH: `${join(HERE, '?.lua')};;`, ...run.env };
  const child = deps.children.spawn({ label: 'wrk', command, args, env });
  const timers = [
    setTimeout(() => child.process.kill('SIGKILL'), run.durationMs + 20_000),
    ...(run.durationMs < wholeSeconds * 1000
      ? [setTimeout(() => child.process.kill('SIGINT'), run.durationMs)]
      : []),
  ];
  let polling = false;
  const { stopWhen } = run;
  const poll = stopWhen
    ? setInterval(() => {
        if (polling || child.hasExited()) return;
        polling = true;
        stopWhen()
          .then((stop) => stop && !child.hasExited() && child.process.kill('SIGINT'))
          .catch(() => {})
          .finally(() => {
            polling = false;
          });
      }, 250)
    : undefined;
  const exit = await child.exited;
  clearInterval(poll);
  for (const timer of timers) clearTimeout(timer);
  const report = resultLine(child.stdout());
  if (exit.code !== 0 || report === null) {
    throw new Error(`wrk failed (code ${exit.code}, signal ${exit.signal}): ${child.outputTail()}`);
  }
  const { requests = 0, durationUs = 1, p50Us = 0, p99Us = 0, maxUs = 0, non2xx = 0, ...rest } = report;
  const { connectErrors = 0, readErrors = 0, writeErrors = 0, timeouts = 0, ...extra } = rest;
  return {
    load: {
      requests,
      durationS: durationUs / 1e6,
      rps: requests / (durationUs / 1e6),
      p50Ms: p50Us / 1000,
      p99Ms: p99Us / 1000,
      maxMs: maxUs / 1000,
      non2xx,
      socketErrors: connectErrors + readErrors + writeErrors + timeouts,
      timeouts,
    },
    extra,
  };
}

function wrkLoad(deps: LoadDeps): LoadGenerator {
  return {
    name: 'wrk',
    run: async (plan) =>
      (
        await runWrkScript(deps, {
          script: 'wrk-report.lua',
          connectUrl: plan.request.connectUrl,
          connections: plan.connections,
          durationMs: plan.durationMs,
          timeout: '5s',
          env: {
            BENCH_REQUEST_TARGET: plan.request.requestTarget,
            BENCH_HOST: plan.request.host,
            BENCH_ACCEPT_ENCODING: plan.request.acceptEncoding ?? '',
          },
        })
      ).load,
  };
}

/** wrk over a key space (wrk-keys.lua): fill keys [from, to) in order, or hits on random keys below `to`. */
export interface KeysPlan {
  readonly connectUrl: string;
  readonly host: string;
  readonly prefix: string;
  readonly from: number;
  readonly to: number;
  readonly mode: 'fill' | 'random';
  readonly connections: number;
  /** Window for `random`; upper bound for `fill` (stopped by `stopWhen` once the count is reached). */
  readonly durationMs: number;
  readonly stopWhen?: () => Promise<boolean>;
}

export interface KeysResult extends LoadResult {
  /** Responses counted by the fill (0 in random mode). */
  readonly filled: number;
}

export async function runWrkKeys(deps: LoadDeps, plan: KeysPlan): Promise<KeysResult> {
  const { load, extra } = await runWrkScript(deps, {
    script: 'wrk-keys.lua',
    connectUrl: plan.connectUrl,
    connections: plan.connections,
    durationMs: plan.durationMs,
    timeout: '10s',
    env: {
      BENCH_KEYS_PREFIX: plan.prefix,
      BENCH_KEYS_FROM: String(plan.from),
      BENCH_KEYS_TO: String(plan.to),
      BENCH_KEYS_MODE: plan.mode,
      BENCH_HOST: plan.host,
    },
    ...(plan.stopWhen ? { stopWhen: plan.stopWhen } : {}),
  });
  return { ...load, filled: extra['filled'] ?? 0 };
}

/**
 * GET `path(i)` for i in [0, count) to `url`, `concurrency` at a time over one keep-alive undici
 * Pool (for fills: every response read to its end); throws on a status other than 200 or once
 * `deadline` (a Date.now() value) has passed. Resolves with the responses received.
 */
export async function sendEach(
  url: string,
  count: number,
  path: (i: number) => string,
  opts: { readonly concurrency: number; readonly deadline?: number; readonly host?: string },
): Promise<number> {
  const pool = new Pool(url, { connections: opts.concurrency });
  let next = 0;
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      if (opts.deadline !== undefined && Date.now() > opts.deadline)
        throw new Error(`${sent} of ${count} requests done within the time bound`);
      const i = next++;
      const res = await pool.request({
        method: 'GET',
        path: path(i),
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
        ...(opts.host ? { headers: { host: opts.host } } : {}),
      });
      await res.body.dump({ limit: 32 * 1024 * 1024 });
      if (res.statusCode !== 200) throw new Error(`${path(i)}: status ${res.statusCode}`);
      sent++;
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  } finally {
    await pool.close();
  }
  return sent;
}
