// wrk as the load generator: one thread (it is pinned to the load CPU), a Lua done() script for
// exact p50/p99 and a non-2xx count. wrk takes whole seconds, so a fractional window is ended with
// SIGINT, on which wrk stops and reports as usual.
import { join } from 'node:path';
import type { LoadDeps, LoadGenerator, LoadPlan, LoadResult } from './load-generator.js';
import { parseResultLine, watchdogMs } from './load-generator.js';

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

export function createWrkLoad(deps: LoadDeps): LoadGenerator {
  const script = join(deps.benchDir, 'load', 'wrk-report.lua');
  return {
    name: 'wrk',
    async run(plan: LoadPlan): Promise<LoadResult> {
      const wholeSeconds = Math.max(1, Math.ceil(plan.durationMs / 1000));
      const wrkArgs = [
        '-t1',
        `-c${plan.connections}`,
        `-d${wholeSeconds}s`,
        '--timeout',
        '5s',
        '-s',
        script,
        `${plan.request.connectUrl}/`,
      ];
      const { command, args } = deps.pinning.wrap('wrk', wrkArgs);
      const child = deps.children.spawn({
        label: 'wrk',
        command,
        args,
        env: {
          ...process.env,
          BENCH_REQUEST_TARGET: plan.request.requestTarget,
          BENCH_HOST: plan.request.host,
        },
      });
      const early =
        plan.durationMs < wholeSeconds * 1000
          ? setTimeout(() => child.process.kill('SIGINT'), plan.durationMs)
          : null;
      const watchdog = setTimeout(() => child.process.kill('SIGKILL'), watchdogMs(plan.durationMs));
      const exit = await child.exited;
      if (early) clearTimeout(early);
      clearTimeout(watchdog);
      const report = parseResultLine(child.stdout()) as WrkReport | null;
      if (exit.code !== 0 || report === null) {
        throw new Error(`wrk failed (code ${exit.code}, signal ${exit.signal}): ${child.outputTail()}`);
      }
      const durationS = report.durationUs / 1e6;
      return {
        requests: report.requests,
        durationS,
        rps: report.requests / durationS,
        p50Ms: report.p50Us / 1000,
        p99Ms: report.p99Us / 1000,
        non2xx: report.non2xx,
        socketErrors: report.connectErrors + report.readErrors + report.writeErrors + report.timeouts,
      };
    },
  };
}
