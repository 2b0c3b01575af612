// `npm run bench:https`: only the HTTPS new-connection-per-request comparison (also part of
// `npm run bench -- --https`). See bench/README.md.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createChildGroup } from '../harness/children.js';
import { formatHttpsResult, runHttpsNewConnection } from './https.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const children = createChildGroup(repoRoot);
process.on('exit', () => children.killAllNow());
const requests = Number(process.env.BENCH_HTTPS_REQUESTS ?? 200);
const delayMs = Number(process.env.BENCH_HTTPS_DELAY_MS ?? 20);
try {
  const result = await runHttpsNewConnection({
    children,
    repoRoot,
    requests,
    delayMs,
    readyTimeoutMs: 20_000,
  });
  console.log(formatHttpsResult(result));
  await children.stopAll();
  process.exit(0);
} catch (err) {
  console.error(`bench:https failed: ${(err as Error).message}`);
  await children.stopAll();
  process.exit(1);
}
