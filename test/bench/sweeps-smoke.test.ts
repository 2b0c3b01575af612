/**
 * `npm run bench:sweep` and `npm run bench:entries` cannot rot: a two-point load sweep and a
 * two-step entries sweep with tiny sizes, through real processes on loopback. Asserts what the
 * scripts check (no error, entries reached on /metrics, hits never went upstream), not timings.
 * The entries sweep needs wrk (its Lua script walks keys): required under CI=true, skipped otherwise.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withHarness } from '../../bench/harness/harness.js';
import { wrkInstalled } from '../../bench/harness/load.js';
import { runEntriesSweep } from '../../bench/scenarios/entries.js';
import { runLoadSweep } from '../../bench/scenarios/sweep.js';

describe('bench sweeps smoke run', () => {
  it('load sweep: every point served only 2xx', { timeout: 90_000 }, async () => {
    await withHarness({ pin: false }, async (h) => {
      const { points, table } = await runLoadSweep(h, { connections: [1, 4], warmupMs: 0, durationMs: 300 });
      assert.equal(points.length, 8, table); // 2 workloads × 2 targets × 2 points
      assert.deepEqual(
        points
          .filter((p) => p.failure)
          .map((p) => `${p.workload}/${p.target}@${p.connections}: ${p.failure}`),
        [],
        table,
      );
      for (const p of points) assert.ok((p.load?.requests ?? 0) > 0, table);
    });
  });

  it('entries sweep: fills to each size, then hits never go upstream', { timeout: 90_000 }, async (t) => {
    if (!wrkInstalled()) {
      if (process.env['CI'] === 'true') assert.fail('wrk is required under CI=true (.ci/run)');
      t.skip('wrk not installed (apt-get install -y wrk)');
      return;
    }
    await withHarness({ pin: false }, async (h) => {
      const { rows, table } = await runEntriesSweep(h, {
        sizes: [50, 300],
        fillConnections: 8,
        connections: 4,
        warmupMs: 0,
        durationMs: 300,
      });
      assert.deepEqual(
        rows.map((r) => r.failure),
        [null, null],
        table,
      );
      assert.ok((rows[0]?.entries ?? 0) >= 50, table);
      assert.ok((rows[1]?.entries ?? 0) >= 300, table);
      for (const r of rows) {
        assert.equal(r.upstreamDuringHits, 0, `every request of the hit window was a hit:\n${table}`);
        assert.ok((r.hits?.requests ?? 0) > 0, table);
      }
    });
  });
});
