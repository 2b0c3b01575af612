// Child process for the autocannon fallback: runs one LoadPlan (JSON in argv[2]) and prints
// `BENCH_RESULT {LoadResult}`. Exits when the run ends or when the harness closes stdin.
import autocannon from 'autocannon';
import type { LoadPlan, LoadResult } from './load-generator.js';

const plan = JSON.parse(process.argv[2] ?? '{}') as LoadPlan;
process.stdin.on('close', () => process.exit(1));
process.stdin.resume();

const result = await autocannon({
  url: plan.request.connectUrl,
  connections: plan.connections,
  duration: plan.durationMs / 1000,
  timeout: 5,
  headers: { host: plan.request.host },
  requests: [{ method: 'GET', path: plan.request.requestTarget }],
});
const report: LoadResult = {
  requests: result.requests.total,
  durationS: result.duration,
  rps: result.requests.total / result.duration,
  p50Ms: result.latency.p50,
  p99Ms: result.latency.p99,
  non2xx: result.non2xx,
  // autocannon's `errors` already includes `timeouts`.
  socketErrors: result.errors,
};
process.stdout.write(`BENCH_RESULT ${JSON.stringify(report)}\n`);
process.exit(0);
