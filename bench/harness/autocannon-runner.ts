// Child process for the autocannon fallback: runs one LoadPlan (JSON in argv[2]) and prints
// `BENCH_RESULT {LoadResult}`. Exits when the run ends or when the harness closes stdin.
// autocannon's own latency histogram keeps whole milliseconds, too coarse for a local proxy, so
// latencies come from its `response` event into a microsecond histogram. It also ends runs on its
// sampling tick (one second by default), so the tick is shortened and the window is ended here
// with stop() at the planned time.
import { createHistogram } from 'node:perf_hooks';
import autocannon from 'autocannon';
import type { LoadPlan, LoadResult } from './load.js';

const plan = JSON.parse(process.argv[2] ?? '{}') as LoadPlan;
process.stdin.on('close', () => process.exit(1));
process.stdin.resume();

const latencyUs = createHistogram();
const startedAt = performance.now();
const result = await new Promise<autocannon.Result>((resolve, reject) => {
  const instance = autocannon(
    {
      url: plan.request.connectUrl,
      connections: plan.connections,
      duration: Math.ceil(plan.durationMs / 1000) + 1,
      timeout: 5,
      sampleInt: 50,
      headers: {
        host: plan.request.host,
        ...(plan.request.acceptEncoding ? { 'accept-encoding': plan.request.acceptEncoding } : {}),
      },
      requests: [{ method: 'GET', path: plan.request.requestTarget }],
    },
    (err, res) => (err ? reject(err) : resolve(res)),
  );
  instance.on('response', (_client, _status, _bytes, responseTimeMs) => {
    latencyUs.record(Math.max(1, Math.round(responseTimeMs * 1000)));
  });
  setTimeout(() => instance.stop(), plan.durationMs);
});
const durationS = (performance.now() - startedAt) / 1000;
const report: LoadResult = {
  requests: result.requests.total,
  durationS,
  rps: result.requests.total / durationS,
  p50Ms: latencyUs.count ? latencyUs.percentile(50) / 1000 : 0,
  p99Ms: latencyUs.count ? latencyUs.percentile(99) / 1000 : 0,
  maxMs: latencyUs.count ? latencyUs.max / 1000 : 0,
  non2xx: result.non2xx,
  // autocannon's `errors` already includes `timeouts`.
  socketErrors: result.errors,
  timeouts: result.timeouts,
};
process.stdout.write(`BENCH_RESULT ${JSON.stringify(report)}\n`);
process.exit(0);
