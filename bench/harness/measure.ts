// One measured run, as the main table, the peer table and the load sweep take it: a probe request
// (a target that answers anything but the origin's 2xx body fails here, with its status, instead of
// being measured serving error pages), the measured process pinned to a CPU of its own, a warm-up,
// then the load, with the CPU the process used over it.
import { send } from '../../test/helpers/client.js';
import type { Child } from './children.js';
import type { Harness } from './harness.js';
import type { LoadRequest, LoadResult } from './load.js';
import { cpuSeconds } from './proc.js';

export interface RunPlan {
  readonly request: LoadRequest;
  /** Body bytes the probe must get. */
  readonly expectedBytes: number;
  readonly connections: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** The process whose CPU is measured: pinned to the measured CPU; `others` are moved off it. */
  readonly target: Child;
  readonly others: readonly number[];
  /** Another process whose CPU over the same window is reported too (the origin's). */
  readonly alsoCpu?: Child;
}

export interface RunResult {
  readonly load: LoadResult | null;
  /** CPU µs of `target` per completed request. */
  readonly cpuUsPerReq: number | null;
  readonly alsoCpuUsPerReq: number | null;
  /** Why the run failed (probe, exit, nothing answered, errors served), or null. */
  readonly failure: string | null;
}

export async function measureRun(h: Pick<Harness, 'load' | 'pinning'>, plan: RunPlan): Promise<RunResult> {
  const failed = (failure: string, load: LoadResult | null = null): RunResult => ({
    load,
    cpuUsPerReq: null,
    alsoCpuUsPerReq: null,
    failure,
  });
  try {
    await probe(plan.request, plan.expectedBytes);
  } catch (err) {
    return failed(`probe: ${(err as Error).message}`);
  }
  try {
    h.pinning.isolate(plan.target.pid, plan.others);
    const run = { request: plan.request, connections: plan.connections };
    if (plan.warmupMs > 0) await h.load.run({ ...run, durationMs: plan.warmupMs });
    const cpu = () => [plan.target, plan.alsoCpu].map((c) => (c ? cpuSeconds(c.pid) : null));
    const before = cpu();
    const load = await h.load.run({ ...run, durationMs: plan.durationMs });
    const after = cpu();
    if (plan.target.hasExited()) return failed(`exited during the run: ${plan.target.outputTail()}`, load);
    if (load.requests === 0) return failed('no response completed', load);
    if (load.non2xx + load.socketErrors > 0)
      return failed(`${load.non2xx} non-2xx responses, ${load.socketErrors} socket errors/timeouts`, load);
    const perRequest = (i: number): number | null => {
      const [b, a] = [before[i], after[i]];
      return b == null || a == null ? null : ((a - b) * 1e6) / load.requests;
    };
    return { load, cpuUsPerReq: perRequest(0), alsoCpuUsPerReq: perRequest(1), failure: null };
  } catch (err) {
    return failed((err as Error).message);
  }
}

/** One GET before any load; throws unless it answers 2xx with `expectedBytes` of body. */
export async function probe(req: LoadRequest, expectedBytes: number): Promise<void> {
  const res = await send(req.connectUrl, req.requestTarget, {
    headers: { host: req.host },
    signal: AbortSignal.timeout(5000),
  });
  if (res.status < 200 || res.status > 299 || res.body.length !== expectedBytes) {
    throw new Error(
      `GET ${req.requestTarget} answered ${res.status} with ${res.body.length} bytes (want 2xx, ${expectedBytes})`,
    );
  }
}
