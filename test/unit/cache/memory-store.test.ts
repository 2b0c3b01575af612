import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMemoryStore } from '../../../src/cache/memory-store.js';
import type { EvictionInfo } from '../../../src/cache/store.js';
import { describeStoreContract, entry } from '../../helpers/store-contract.js';

describeStoreContract('memory', (o) => createMemoryStore(o));

test('memory store: stays within maxSizeBytes, evicts least recently used and counts evictions', async () => {
  const removed: EvictionInfo[] = [];
  const s = createMemoryStore({
    maxSizeBytes: 20_000,
    maxEntryBytes: 2_000,
    onRemove: (e) => removed.push(e),
  });
  for (let i = 0; i < 200; i++) {
    await s.put(entry(`k${i}`, '', 'x'.repeat(1000)));
    assert.ok(s.size.bytes <= 20_000, `bytes ${s.size.bytes} over the bound`);
  }
  assert.ok(s.evictions > 150, `evictions ${s.evictions}`);
  assert.equal(removed.filter((r) => r.reason === 'evict').length, s.evictions);
  assert.deepEqual(await s.get('k0'), []);
  assert.equal((await s.get('k199')).length, 1);
  const st = await s.stats();
  assert.ok(st.entries > 0 && st.entries < 20);
});

test('memory store: evicting a variant keeps the key index consistent', async () => {
  const s = createMemoryStore({ maxSizeBytes: 3_000, maxEntryBytes: 2_000 });
  await s.put(entry('k', 'a', 'x'.repeat(1200)));
  await s.put(entry('k', 'b', 'x'.repeat(1200)));
  await s.put(entry('other', '', 'x'.repeat(1200)));
  const left = await s.get('k');
  assert.deepEqual(
    left.map((e) => e.variantKey),
    ['b'],
  );
  assert.equal(await s.deletePrefix('k'), 1);
});

test('memory store: rejects a bad configuration with SC_ERR_CONFIG', () => {
  assert.throws(() => createMemoryStore({ maxSizeBytes: 10, maxEntryBytes: 20 }), { code: 'SC_ERR_CONFIG' });
});
