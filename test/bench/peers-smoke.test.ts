/**
 * The peer table of `npm run bench` cannot rot: one short round of each workload through every
 * peer installed here (nginx, Varnish, Squid are optional; sidecache needs dist/), with real
 * processes on loopback and the real load generator. Asserts that every started peer served only
 * 2xx, that the limit rows exist and that the derived columns are filled, not timings.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withHarness } from '../../bench/harness/harness.js';
import { median, runPeerTable } from '../../bench/scenarios/peers.js';

describe('bench peer table smoke run', () => {
  it('median is the middle value (even count: mean of the two middle ones)', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([]), null);
  });

  it('measures cache-hit and pass-through through every installed peer with no error', {
    timeout: 90_000,
  }, async () => {
    await withHarness({ pin: false }, async (h) => {
      const result = await runPeerTable(h, { rounds: 1, warmupMs: 0, durationMs: 300, connections: 4 });
      assert.deepEqual(
        result.rows.filter((r) => r.failure).map((r) => `${r.workload}/${r.target}: ${r.failure}`),
        [],
        result.table,
      );
      for (const [workload, limit] of [
        ['cache-hit', 'bare-node'],
        ['pass-through', 'undici-pool-stream'],
      ] as const) {
        const row = result.rows.find((r) => r.workload === workload && r.target === limit);
        assert.ok(row, `${limit} row in:\n${result.table}`);
        assert.equal(row.ratioVsLimit, 1);
        assert.ok((row.rps ?? 0) > 0);
        assert.ok((row.peakRssMib ?? 0) > 1, 'peak RSS read from /proc');
      }
      const measured = new Set(result.rows.map((r) => r.target));
      for (const s of result.skipped) assert.ok(!measured.has(s.target), `${s.target} skipped and measured`);
      for (const row of result.rows) assert.equal(row.rounds, 1, `${row.workload}/${row.target}`);
    });
  });
});
