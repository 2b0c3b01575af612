/**
 * `npm run bench:scenario` cannot rot: one page per mode with small delays, through the same code
 * (fake TLS origins, slow nameserver, bench/scenario/app.py direct and intercepted). Asserts the
 * checks pass and what reached the origins, not timings. Needs /usr/bin/python3
 * with flask and requests: required under CI=true, skipped otherwise.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatScenario, runScenario } from '../../bench/scenarios/page/scenario.js';
import { hasFlask } from '../helpers/python.js';

describe('bench:scenario smoke run', () => {
  it('renders identical pages direct and through sidecache, the POST always reaching the origin', {
    timeout: 30_000,
  }, async (t) => {
    if (!(await hasFlask())) {
      if (process.env.CI === 'true')
        assert.fail('python3-flask and python3-requests are required in CI (.ci/run)');
      t.skip(
        'python3-flask or python3-requests not installed (apt-get install python3-flask python3-requests)',
      );
      return;
    }
    const result = await runScenario({
      pages: 1,
      dnsDelayMs: 20,
      handshakeDelayMs: 2,
      thinkMinMs: 1,
      thinkMaxMs: 3,
      // routes mode differs only in the app's base URLs; leaving it out keeps this under 30 s on a
      // loaded 2-core machine (`npm run bench:scenario` runs all three).
      modes: ['direct', 'intercept'],
      // Keep-warm on (the default config); no after-idle pages (each needs seconds of idling).
      keepWarm: ['on'],
      idleMs: 0,
      idlePages: 0,
      originIdleMs: 60_000,
      dnsTtlS: 300,
    });
    const table = formatScenario(result);
    assert.deepEqual(result.failures, [], table);
    const row = (label: string) => {
      const r = result.rows.find((x) => x.label.startsWith(label));
      assert.ok(r, `${label} row in:\n${table}`);
      return r;
    };
    const direct = row('direct');
    assert.equal(direct.originRequests, 20);
    assert.equal(direct.handshakes, 20, 'a new TLS connection per call');
    assert.equal(direct.dnsQueries, 20, 'one lookup per call');
    assert.equal(direct.githubUnits, 7);
    for (const mode of ['intercept']) {
      const first = row(`${mode}, keep-warm on: first`);
      assert.equal(first.originRequests, 20);
      // Keep-warm opened the connections before /readyz said ready: none during the page.
      assert.equal(first.handshakes, 0, 'connections opened before the first page');
      assert.equal(first.dnsQueries, 0, 'names resolved before the first page');
      const purged = row(`${mode}, keep-warm on: cache purged`);
      assert.equal(purged.handshakes, 0, 'pools stay warm');
      assert.equal(purged.dnsQueries, 0, 'DNS answers stay cached');
      const warm = row(`${mode}, keep-warm on: warm`);
      // The Stripe balance (no-store, live), the POST, and the custom data it invalidated.
      assert.equal(warm.originRequests, 3, table);
      assert.equal(warm.githubUnits, 0, 'GitHub answers from the cache spend no rate limit');
    }
  });
});
