// wrk as the load generator: one thread (it is pinned to the load CPU), a Lua done() script for
// exact p50/p99 and a non-2xx count. wrk takes whole seconds, so a fractional window is ended with
// SIGINT, on which wrk stops and reports as usual. runWrkScript is shared with wrk-keys.ts.
import { join } from 'node:path';
import type { LoadDeps, LoadGenerator, LoadPlan, LoadResult } from './load.js';
import { parseResultLine, watchdogMs } from './load.js';

/** The fields every bench wrk script prints in its `BENCH_RESULT {json}` line (wrk-result.lua). */
interface WrkReport {
  requests: number;
  durationUs: number;
  p50Us: number;
  p99Us: number;
  non2xx: number;
  connectErrors: number;
  readErrors: number;
  writeErrors: number;
  timeouts: number;
}

export interface WrkScriptRun {
  /** Lua script in bench/harness/. */
  readonly script: string;
  readonly connectUrl: string;
  readonly connections: number;
  readonly durationMs: number;
  /** wrk's --timeout, e.g. `5s`. */
  readonly timeout: string;
  /** Environment the script reads (added to this process's). */
  readonly env: Readonly<Record<string, string>>;
  /** Polled every 250 ms while wrk runs; once it resolves true, wrk is stopped (SIGINT) and reports. */
  readonly stopWhen?: () => Promise<boolean>;
}

/**
 * Runs wrk with one of the bench Lua scripts and returns its report as a LoadResult, plus the
 * script's own extra fields (`extra`, numbers) beside the common ones.
 */
export async function runWrkScript(
  deps: LoadDeps,
  run: WrkScriptRun,
): Promise<{ load: LoadResult; extra: Readonly<Record<string, number>> }> {
  const wholeSeconds = Math.max(1, Math.ceil(run.durationMs / 1000));
  const { command, args } = deps.pinning.wrap('wrk', [
    '-t1',
    `-c${run.connections}`,
    `-d${wholeSeconds}s`,
    '--timeout',
    run.timeout,
    '-s',
    join(deps.benchDir, 'harness', run.script),
    `${run.connectUrl}/`,
  ]);
  const child = deps.children.spawn({
    label: 'wrk',
    command,
    args,
    env: {
      ...process.env,
      // wrk-result.lua, which the scripts `require`, sits beside them.
      LUA_PATH: `${join(deps.benchDir, 'harness', '?.lua')};;`,
      ...run.env,
    },
  });
  const early =
    run.durationMs < wholeSeconds * 1000
      ? setTimeout(() => child.process.kill('SIGINT'), run.durationMs)
      : null;
  const watchdog = setTimeout(() => child.process.kill('SIGKILL'), watchdogMs(run.durationMs));
  let polling = false;
  const stopWhen = run.stopWhen;
  const poll = stopWhen
    ? setInterval(() => {
        if (polling || child.hasExited()) return;
        polling = true;
        stopWhen()
          .then((stop) => {
            if (stop && !child.hasExited()) child.process.kill('SIGINT');
          })
          .catch(() => {})
          .finally(() => {
            polling = false;
          });
      }, 250)
    : null;
  const exit = await child.exited;
  if (poll) clearInterval(poll);
  if (early) clearTimeout(early);
  clearTimeout(watchdog);
  const report = parseResultLine(child.stdout()) as (WrkReport & Record<string, number>) | null;
  if (exit.code !== 0 || report === null) {
    throw new Error(`wrk failed (code ${exit.code}, signal ${exit.signal}): ${child.outputTail()}`);
  }
  const {
    requests,
    durationUs,
    p50Us,
    p99Us,
    non2xx,
    connectErrors,
    readErrors,
    writeErrors,
    timeouts,
    ...extra
  } = report;
  const durationS = durationUs / 1e6;
  return {
    load: {
      requests,
      durationS,
      rps: requests / durationS,
      p50Ms: p50Us / 1000,
      p99Ms: p99Us / 1000,
      non2xx,
      socketErrors: connectErrors + readErrors + writeErrors + timeouts,
    },
    extra,
  };
}

export function createWrkLoad(deps: LoadDeps): LoadGenerator {
  return {
    name: 'wrk',
    async run(plan: LoadPlan): Promise<LoadResult> {
      const { load } = await runWrkScript(deps, {
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
      });
      return load;
    },
  };
}
