// wrk over a key space (wrk-keys.lua): fill a cache with keys [from, to) once each, or send hits to
// random keys below `to`. Needs wrk (no autocannon fallback: the Lua script is the point).
import type { LoadDeps, LoadResult } from './load.js';
import { runWrkScript } from './wrk.js';

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
    stopWhen: plan.stopWhen,
  });
  return { ...load, filled: extra['filled'] as number };
}
