// One measured run, as the main table, the peer table and the load sweep take it: a probe request
// (a target that answers anything but the origin's 2xx body fails here, with its status, instead of
// being measured serving error pages), the measured process pinned to a CPU of its own, a warm-up,
// then the load, with the CPU the process used over it.
import { request } from 'node:http';
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
export async function probe(req: LoadRequest, expectedBytes: number, timeoutMs = 5000): Promise<void> {
  const url = new URL(req.connectUrl);
  const { status, bytes } = await new Promise<{ status: number; bytes: number }>((resolve, reject) => {
    const clientReq = request(
      {
        host: url.hostname,
        port: url.port,
        path: req.requestTarget,
        headers: { host: req.host },
        agent: false,
      },
      (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
        res.on('error', reject);
      },
    );
    clientReq.setTimeout(timeoutMs, () => clientReq.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    clientReq.on('error', reject);
    clientReq.end();
  });
  if (status < 200 || status > 299 || bytes !== expectedBytes) {
    throw new Error(
      `GET ${req.requestTarget} answered ${status} with ${bytes} bytes (want 2xx, ${expectedBytes})`,
    );
  }
}
