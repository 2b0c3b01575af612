/**
 * The entries sweep's "missed key": wrk 4.x calls the script's request() once on its first thread
 * before any connection opens (to check the request) and never sends that request, so a fill that
 * advanced on every call skipped its first key. bench/harness/wrk-keys.lua now leaves the first call
 * unadvanced. An origin on loopback logs the paths it receives; with one connection the order is
 * exact: the first pass must be k0..k(n-1), k0 first. Needs wrk: required under CI=true.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { it } from 'node:test';
import { withHarness } from '../../bench/harness/harness.js';
import { runWrkKeys, wrkInstalled } from '../../bench/harness/load.js';

it('wrk-keys fill: the first pass sends every key of the range, the first key first', {
  timeout: 30_000,
}, async (t) => {
  if (!wrkInstalled()) {
    if (process.env['CI'] === 'true') assert.fail('wrk is required under CI=true (.ci/run)');
    t.skip('wrk not installed (apt-get install -y wrk)');
    return;
  }
  const seen: string[] = [];
  const origin = createServer((req, res) => {
    seen.push(req.url ?? '');
    res.end('x');
  });
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  const url = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  const n = 40;
  try {
    await withHarness({ pin: false }, async (h) => {
      const result = await runWrkKeys(h, {
        connectUrl: url,
        host: new URL(url).host,
        prefix: '/k',
        from: 100,
        to: 100 + n,
        mode: 'fill',
        connections: 1,
        durationMs: 5_000,
        stopWhen: async () => seen.length >= 2 * n,
      });
      assert.ok(result.requests >= n, `wrk sent ${result.requests} requests`);
    });
  } finally {
    origin.close();
    origin.closeAllConnections();
  }
  const firstPass = seen.slice(0, n);
  assert.deepEqual(
    firstPass,
    Array.from({ length: n }, (_, i) => `/k${100 + i}`),
    `first ${n} paths: ${firstPass.join(' ')}`,
  );
});
