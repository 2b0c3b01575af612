/**
 * `npm run bench:python` cannot rot: a few intercepted, routed and direct `requests.get` calls,
 * with sidecache under `node --cpu-prof`. Asserts that every mode completed, that sidecache answered
 * the intercepted calls from its cache over one minted leaf, and that the profile window held
 * samples, not timings. Needs /usr/bin/python3 with requests: required under CI=true.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createChildGroup } from '../../bench/harness/children.js';
import { repoRoot } from '../../bench/harness/harness.js';
import { runPythonCost } from '../../bench/scenarios/python-cost.js';
import { hasPythonRequests } from '../helpers/python.js';

describe('bench:python smoke run', () => {
  it('times each mode and profiles sidecache over the intercepted loop', { timeout: 90_000 }, async (t) => {
    if (!(await hasPythonRequests())) {
      if (process.env['CI'] === 'true') assert.fail('python3-requests is required under CI=true (.ci/run)');
      t.skip('python3-requests not installed');
      return;
    }
    const children = createChildGroup(repoRoot);
    try {
      const r = await runPythonCost(children, { calls: 3, pythonProfile: false, cpuProfile: true });
      assert.ok(Object.keys(r.modes).length >= 4);
      for (const [mode, s] of Object.entries(r.modes)) assert.equal(s.calls, 3, mode);
      assert.equal(r.byHand['total']?.calls, 3);
      assert.equal(r.sidecache.leafCertsIssued, 1, 'one leaf for the one intercepted host');
      // The origin answer is cacheable: fetched once (at most once per addressing mode), then hits.
      assert.ok(r.sidecache.upstreamRequests <= 2, `upstream requests: ${r.sidecache.upstreamRequests}`);
      assert.ok(r.sidecache.cacheHits >= 3, `cache hits: ${r.sidecache.cacheHits}`);
      assert.ok(r.cpuProfile && r.cpuProfile.windowMs > 0, 'profile samples inside the intercepted loop');
    } finally {
      await children.stopAll();
    }
  });
});
