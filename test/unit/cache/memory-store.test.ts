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
  // Each 1,200-byte variant counts about 2.2 kB (store.ts entrySizeBytes): two fit, a third evicts.
  const s = createMemoryStore({ maxSizeBytes: 5_000, maxEntryBytes: 2_000 });
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

test('memory store: keeps a body that is a view into a larger buffer in a right-sized copy', async () => {
  const s = createMemoryStore({ maxSizeBytes: 100_000, maxEntryBytes: 10_000 });
  const socketRead = Buffer.from(`HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello${'x'.repeat(500)}`);
  const view = socketRead.subarray(socketRead.indexOf('hello'), socketRead.indexOf('hello') + 5);
  assert.equal(view.buffer.byteLength > 500, true);
  await s.put({ ...entry('k'), body: view });
  const [stored] = await s.get('k');
  assert.equal(Buffer.from(stored!.body).toString(), 'hello');
  assert.equal(stored!.body.buffer.byteLength, 5, 'the stored body holds its own 5 bytes, not the read');
  socketRead.fill(0); // the caller's buffer is reused: the stored copy must not change
  assert.equal(Buffer.from(stored!.body).toString(), 'hello');
});

test('memory store: a key goes from one variant to several and back in its index', async () => {
  const s = createMemoryStore({ maxSizeBytes: 100_000, maxEntryBytes: 10_000 });
  await s.put(entry('k', 'a'));
  await s.put(entry('k', 'b'));
  await s.put(entry('k', 'b', 'again'));
  assert.deepEqual((await s.get('k')).map((e) => e.variantKey).sort(), ['a', 'b']);
  assert.equal(s.size.entries, 2);
  assert.equal(await s.delete('k'), 2);
  assert.deepEqual(await s.get('k'), []);
  await s.put(entry('k', 'c'));
  assert.deepEqual(
    (await s.get('k')).map((e) => e.variantKey),
    ['c'],
  );
  assert.equal(await s.deletePrefix('k'), 1);
  assert.equal(s.size.entries, 0);
});

test('memory store: a key with a variant that varies on nothing beside varying ones', async () => {
  // The variant with no Vary is stored under the key itself and is not in the index; a varying one
  // is. Every read, peek and delete must see both.
  const s = createMemoryStore({ maxSizeBytes: 100_000, maxEntryBytes: 10_000 });
  await s.put(entry('https://a.test/k', '', 'plain'));
  assert.equal(s.peekOnly('https://a.test/k')?.variantKey, '');
  await s.put(entry('https://a.test/k', 'gzip', 'varied'));
  assert.deepEqual((await s.get('https://a.test/k')).map((e) => e.variantKey).sort(), ['', 'gzip']);
  assert.equal(s.peekOnly('https://a.test/k'), undefined, 'two variants: no single one to peek');
  assert.equal(await s.delete('https://a.test/k'), 2);
  assert.deepEqual(await s.get('https://a.test/k'), []);
  assert.equal(s.size.entries, 0);

  // Only a varying variant: peeked through the index. Then the plain one comes back beside it.
  await s.put(entry('https://a.test/k', 'br', 'varied'));
  assert.equal(s.peekOnly('https://a.test/k')?.variantKey, 'br');
  await s.put(entry('https://a.test/k', '', 'plain'));
  await s.put(entry('https://a.test/k2', '', 'other'));
  await s.put(entry('https://b.test/k', '', 'elsewhere'));
  // A prefix purge finds keys by the LRU's item keys, plain and varying alike.
  assert.equal(await s.deletePrefix('https://a.test/'), 3);
  assert.deepEqual(await s.get('https://a.test/k'), []);
  assert.deepEqual(await s.get('https://a.test/k2'), []);
  assert.equal((await s.get('https://b.test/k')).length, 1);

  // Expiry of the plain variant of an unindexed key drops it.
  let t = 1_000;
  const timed = createMemoryStore({ maxSizeBytes: 100_000, maxEntryBytes: 10_000, now: () => t });
  await timed.put(entry('https://a.test/e', '', 'x', 2_000));
  assert.equal((await timed.get('https://a.test/e')).length, 1);
  t = 2_000;
  assert.deepEqual(await timed.get('https://a.test/e'), []);
  assert.equal(timed.size.entries, 0);
});
