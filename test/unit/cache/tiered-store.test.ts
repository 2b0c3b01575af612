/**
 * The tiered store's bound on L2 writes in flight: with an L2 that does not answer, writes beyond
 * `maxPendingL2Bytes` are not sent (L1 keeps the entry, the drop is counted), nothing waits, and
 * the budget comes back as L2 answers. L2 here is an in-process CacheStore whose writes finish
 * only when the test lets them (the Redis and memcached tiers are tested against real servers in
 * test/integration/).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMemoryStore } from '../../../src/cache/memory-store.js';
import type { StoredResponse } from '../../../src/cache/store.js';
import { createTieredStore, L2_WRITE_OVERHEAD, type SharedL2Store } from '../../../src/cache/tiered-store.js';
import { entry } from '../../helpers/store-contract.js';

function heldL2(): { store: SharedL2Store; written: StoredResponse[]; finishAll: () => void } {
  const written: StoredResponse[] = [];
  let held: (() => void)[] = [];
  const store: SharedL2Store = {
    fill: { claim: async () => ({ role: 'leader', release() {} }) },
    get: async () => [],
    put: (e) =>
      new Promise((resolve) => {
        held.push(() => {
          written.push(e);
          resolve(true);
        });
      }),
    delete: async () => 0,
    deletePrefix: async () => 0,
    stats: async () => ({ entries: written.length, bytes: 0 }),
    close: async () => {},
  };
  const finishAll = (): void => {
    const now = held;
    held = [];
    for (const f of now) f();
  };
  return { store, written, finishAll };
}

test('L2 writes in flight stay within maxPendingL2Bytes; the rest are dropped and counted, L1 keeps them', async () => {
  const body = 'x'.repeat(1000);
  const cost = body.length + L2_WRITE_OVERHEAD;
  const l2 = heldL2();
  const dropped: number[] = [];
  const l1 = createMemoryStore({ maxSizeBytes: 1_000_000, maxEntryBytes: 10_000 });
  const tiered = createTieredStore({
    l1,
    l2: l2.store,
    maxPendingL2Bytes: 3 * cost,
    onWriteDropped: (bytes) => dropped.push(bytes),
  });
  const puts = Array.from({ length: 5 }, (_, i) => tiered.put(entry(`k${i}`, '', body)));
  // The two writes past the budget resolve at once (L1 took them); the first three wait for L2.
  const settled: boolean[] = [];
  for (const p of puts) p.then((ok) => settled.push(ok));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(settled, [true, true]);
  assert.deepEqual(dropped, [cost, cost]);
  for (let i = 0; i < 5; i++) assert.equal((await l1.get(`k${i}`)).length, 1, `k${i} in L1`);
  l2.finishAll();
  assert.deepEqual(await Promise.all(puts), [true, true, true, true, true]);
  assert.deepEqual(
    l2.written.map((e) => e.key),
    ['k0', 'k1', 'k2'],
  );
  // The budget is back: the next write goes to L2.
  const next = tiered.put(entry('k5', '', body));
  await new Promise((resolve) => setImmediate(resolve));
  l2.finishAll();
  assert.equal(await next, true);
  assert.deepEqual(
    l2.written.map((e) => e.key),
    ['k0', 'k1', 'k2', 'k5'],
  );
  assert.equal(dropped.length, 2);
});

test('one write larger than the whole budget still goes to L2 when none is in flight', async () => {
  const l2 = heldL2();
  const dropped: number[] = [];
  const tiered = createTieredStore({
    l1: null,
    l2: l2.store,
    maxPendingL2Bytes: 100,
    onWriteDropped: (bytes) => dropped.push(bytes),
  });
  const big = tiered.put(entry('big', '', 'y'.repeat(5_000)));
  // Without L1, a dropped write is not stored at all: put says so.
  assert.equal(await tiered.put(entry('second')), false);
  l2.finishAll();
  assert.equal(await big, true);
  assert.deepEqual(
    l2.written.map((e) => e.key),
    ['big'],
  );
  assert.equal(dropped.length, 1);
});

test("an L2 write's encoded copies count towards L1's reclaimer once L2 has answered, not before", async () => {
  const body = 'x'.repeat(1000);
  const cost = body.length + L2_WRITE_OVERHEAD;
  const l2 = heldL2();
  const l1 = createMemoryStore({ maxSizeBytes: 1_000_000, maxEntryBytes: 10_000 });
  const discarded: number[] = [];
  const spy = Object.assign(Object.create(l1) as typeof l1, {
    discarded: (bytes: number) => {
      discarded.push(bytes);
      l1.discarded(bytes);
    },
  });
  const tiered = createTieredStore({ l1: spy, l2: l2.store });
  const put = tiered.put(entry('k', '', body));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(discarded, [], 'in flight: L2 still holds its copies');
  l2.finishAll();
  assert.equal(await put, true);
  assert.deepEqual(discarded, [cost]);
});
