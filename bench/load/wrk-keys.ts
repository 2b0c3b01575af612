// wrk over a key space (wrk-keys.lua): fill a cache with keys [from, to) once each, or send hits to
// random keys below `to`. Needs wrk (no autocannon fallback: the Lua script is the point).
import { join } from 'node:path';
import type { ChildGroup } from '../children.js';
import type { Pinning } from '../pinning.js';
import type { LoadResult } from './load-generator.js';
import { parseResultLine } from './load-generator.js';

export interface KeysPlan {
  readonly connectUrl: string;
  readonly host: string;
  readonly prefix: string;
  readonly from: number;
  readonly to: number;
  readonly mode: 'fill' | 'random';
  readonly connections: number;
  /** Window for `random`; upper bound for `fill` (which stops by itself once every key was answered). */
  readonly durationMs: number;
  /** Polled every 250 ms while wrk runs; once it resolves true, wrk is stopped (SIGINT) and reports. */
  readonly stopWhen?: () => Promise<boolean>;
}

export interface KeysResult extends LoadResult {
  /** Responses counted by the fill (0 in random mode). */
  readonly filled: number;
}

export async function runWrkKeys(
  deps: { children: ChildGroup; pinning: Pinning; benchDir: string },
  plan: KeysPlan,
): Promise<KeysResult> {
  const wholeSeconds = Math.max(1, Math.ceil(plan.durationMs / 1000));
  const { command, args } = deps.pinning.wrap('wrk', [
    '-t1',
    `-c${plan.connections}`,
    `-d${wholeSeconds}s`,
    '--timeout',
    '10s',
    '-s',
    join(deps.benchDir, 'load', 'wrk-keys.lua'),
    `${plan.connectUrl}/`,
  ]);
  const child = deps.children.spawn({
    label: 'wrk',
    command,
    args,
    env: {
      ...process.env,
      BENCH_KEYS_PREFIX: plan.prefix,
      BENCH_KEYS_FROM: String(plan.from),
      BENCH_KEYS_TO: String(plan.to),
      BENCH_KEYS_MODE: plan.mode,
      BENCH_HOST: plan.host,
    },
  });
  const early =
    plan.durationMs < wholeSeconds * 1000
      ? setTimeout(() => child.process.kill('SIGINT'), plan.durationMs)
      : null;
  const watchdog = setTimeout(() => child.process.kill('SIGKILL'), plan.durationMs + 20_000);
  let polling = false;
  const poll = plan.stopWhen
    ? setInterval(() => {
        if (polling || child.hasExited()) return;
        polling = true;
        (plan.stopWhen as () => Promise<boolean>)()
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
  const r = parseResultLine(child.stdout()) as {
    requests: number;
    durationUs: number;
    p50Us: number;
    p99Us: number;
    non2xx: number;
    connectErrors: number;
    readErrors: number;
    writeErrors: number;
    timeouts: number;
    filled: number;
  } | null;
  if (exit.code !== 0 || r === null) {
    throw new Error(`wrk failed (code ${exit.code}, signal ${exit.signal}): ${child.outputTail()}`);
  }
  const durationS = r.durationUs / 1e6;
  return {
    requests: r.requests,
    durationS,
    rps: r.requests / durationS,
    p50Ms: r.p50Us / 1000,
    p99Ms: r.p99Us / 1000,
    non2xx: r.non2xx,
    socketErrors: r.connectErrors + r.readErrors + r.writeErrors + r.timeouts,
    filled: r.filled,
  };
}
