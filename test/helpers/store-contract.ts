/**
 * The CacheStore contract: every store implementation runs this suite (memory now, Redis later).
 * `factory` gets the sizes and a clock and returns a fresh, empty store.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CacheStore, StoredResponse } from '../../src/cache/store.js';
import type { TieredStore } from '../../src/cache/tiered-store.js';

export type StoreFactory = (opts: {
  maxSizeBytes: number;
  maxEntryBytes: number;
  now: () => number;
}) => CacheStore | Promise<CacheStore>;

export function entry(
  key: string,
  variantKey = '',
  body = 'hello',
  deleteAt = Number.MAX_SAFE_INTEGER,
): StoredResponse {
  return {
    key,
    variantKey,
    vary: variantKey === '' ? [] : ['accept'],
    varyValues: variantKey === '' ? [] : [variantKey],
    status: 200,
    statusText: 'OK',
    headers: { 'content-type': 'text/plain', 'x-list': ['a', 'b'] },
    body: Buffer.from(body),
    requestTime: 1000,
    responseTime: 1001,
    fetchMs: 12.5,
    deleteAt,
  };
}

/**
 * Fills a two-tier store one write at a time with 20,000-byte bodies past L1's `share` of the cache
 * budget: L1 stays within the share and uses the rest; an entry larger than the share (within
 * cache.maxEntryBytes) goes to L2 only. Resolves the body length used.
 */
export async function checkL1Share(store: TieredStore, share: number): Promise<number> {
  const l1 = store.l1;
  assert.ok(l1 !== null);
  const body = 'x'.repeat(20_000);
  for (let i = 0; i < 80; i++) assert.equal(await store.put(entry(`https://a.test/${i}`, '', body)), true);
  assert.ok(l1.evictions > 0, 'the fill went past the cap');
  assert.ok(l1.size.bytes <= share, `L1 holds ${l1.size.bytes} bytes`);
  assert.ok(l1.size.bytes > share - 2 * body.length, 'and uses the rest');
  const big = entry('https://a.test/big', '', 'y'.repeat(share + 1));
  assert.equal(await store.put(big), true);
  assert.deepEqual(await l1.get(big.key), []);
  assert.equal((await store.l2.get(big.key)).length, 1);
  return body.length;
}

export function describeStoreContract(name: string, factory: StoreFactory): void {
  describe(`CacheStore contract: ${name}`, () => {
    let clock = 10_000;
    const make = () => factory({ maxSizeBytes: 1_000_000, maxEntryBytes: 10_000, now: () => clock });

    test('get of an unknown key resolves []', async () => {
      const s = await make();
      assert.deepEqual(await s.get('nope'), []);
    });
    test('put then get returns the same data (serialisable round trip)', async () => {
      const s = await make();
      const e = entry('k1');
      assert.equal(await s.put(e), true);
      const [got] = await s.get('k1');
      assert.ok(got);
      assert.equal(got.status, 200);
      assert.deepEqual(got.headers, e.headers);
      assert.equal(Buffer.from(got.body).toString(), 'hello');
      assert.equal(got.fetchMs, 12.5);
    });
    test('variants live side by side; put with the same variantKey replaces', async () => {
      const s = await make();
      await s.put(entry('k', 'json'));
      await s.put(entry('k', 'html'));
      await s.put(entry('k', 'json', 'v2'));
      const got = await s.get('k');
      assert.equal(got.length, 2);
      assert.equal(Buffer.from(got.find((e) => e.variantKey === 'json')!.body).toString(), 'v2');
    });
    test('delete removes every variant of a key', async () => {
      const s = await make();
      await s.put(entry('k', 'a'));
      await s.put(entry('k', 'b'));
      await s.put(entry('other'));
      assert.equal(await s.delete('k'), 2);
      assert.deepEqual(await s.get('k'), []);
      assert.equal((await s.get('other')).length, 1);
    });
    test('deletePrefix removes every key under the prefix and nothing else', async () => {
      const s = await make();
      await s.put(entry('https://a.test/x\n-\n'));
      await s.put(entry('https://a.test/x\nabc\n'));
      await s.put(entry('https://a.test/y\n-\n'));
      assert.equal(await s.deletePrefix('https://a.test/x\n'), 2);
      assert.equal((await s.get('https://a.test/y\n-\n')).length, 1);
    });
    test('an entry past deleteAt is not returned', async () => {
      const s = await make();
      await s.put(entry('k', '', 'x', clock + 100));
      assert.equal((await s.get('k')).length, 1);
      clock += 101;
      assert.deepEqual(await s.get('k'), []);
    });
    test('a body over the per-object limit is refused', async () => {
      const s = await make();
      assert.equal(await s.put(entry('big', '', 'x'.repeat(10_001))), false);
      assert.deepEqual(await s.get('big'), []);
    });
    test('stats count entries and bytes', async () => {
      const s = await make();
      await s.put(entry('a'));
      await s.put(entry('b'));
      const st = await s.stats();
      assert.equal(st.entries, 2);
      assert.ok(st.bytes >= 10);
    });
  });
}
