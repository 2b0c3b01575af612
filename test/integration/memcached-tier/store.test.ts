/**
 * The memcached tier on a real memcached: the CacheStore contract (alone and behind memory L1),
 * expiry arithmetic (the 30-day relative TTL rule), consistent hashing, fill locks by `add`, the
 * short L1 lifetime that stands in for broadcast purges, and configuration.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  createHashRing,
  createMemcachedStore,
  MAX_TRACKED_BYTES,
  type MemcachedStore,
  memcachedExpiry,
  packVariants,
  RELATIVE_TTL_LIMIT_S,
  TRACKED_KEY_OVERHEAD,
  trackedBytesFor,
  unpackVariants,
} from '../../../src/cache/memcached-store.js';
import { createMemoryStore } from '../../../src/cache/memory-store.js';
import { createSharedTier } from '../../../src/cache/shared-tier.js';
import { createTieredStore, pendingL2BytesFor } from '../../../src/cache/tiered-store.js';
import { loadConfig } from '../../../src/config/load.js';
import {
  memcachedUnavailable,
  startTestMemcached,
  type TestMemcached,
} from '../../helpers/memcached-server.js';
import { checkL1Share, describeStoreContract, entry } from '../../helpers/store-contract.js';

const skip = memcachedUnavailable() ?? false;

test('memcached expiry: seconds up to 30 days, an absolute unix time beyond', () => {
  assert.equal(memcachedExpiry(1), 1);
  assert.equal(memcachedExpiry(60_000), 60);
  assert.equal(memcachedExpiry(RELATIVE_TTL_LIMIT_S * 1000), RELATIVE_TTL_LIMIT_S);
  const wall = 1_700_000_000_000;
  assert.equal(
    memcachedExpiry(RELATIVE_TTL_LIMIT_S * 1000 + 1000, wall),
    1_700_000_000 + RELATIVE_TTL_LIMIT_S + 1,
  );
  assert.equal(memcachedExpiry(Number.MAX_SAFE_INTEGER, wall), 1_700_000_000 + 365 * 24 * 3600);
});

test('consistent hashing: adding a server moves only some keys', () => {
  const two = createHashRing(['a:1', 'b:1']);
  const three = createHashRing(['a:1', 'b:1', 'c:1']);
  let moved = 0;
  const used = new Set<number>();
  for (let i = 0; i < 3000; i++) {
    const k = `key-${i}`;
    used.add(two(k));
    if (three(k) !== 2 && three(k) !== two(k)) moved++;
  }
  assert.deepEqual([...used].sort(), [0, 1]);
  assert.equal(moved, 0); // keys leave only for the new server
});

test('variants pack and unpack; truncated data is refused', () => {
  const packed = packVariants([Buffer.from('one'), Buffer.from('second')]);
  assert.deepEqual(unpackVariants(packed)?.map(String), ['one', 'second']);
  assert.equal(unpackVariants(packed.subarray(0, packed.length - 1)), null);
});

test('config: --memcached and SIDECACHE_MEMCACHED set the servers; both tiers at once is an error', () => {
  const flag = loadConfig({ env: {}, argv: { memcached: ['m1:11211', 'm2:11211'] } }).config;
  assert.deepEqual(flag.cache.memcached.servers, ['m1:11211', 'm2:11211']);
  const env = loadConfig({ env: { SIDECACHE_MEMCACHED: 'm1:11211, m2:11212' } }).config;
  assert.deepEqual(env.cache.memcached.servers, ['m1:11211', 'm2:11212']);
  assert.throws(
    () => loadConfig({ env: {}, argv: { memcached: ['m1:11211'], redis: 'redis://r:6379' } }),
    (err: Error & { code?: string }) =>
      err.code === 'SC_ERR_CONFIG' &&
      err.message.includes('cache.redis.url') &&
      err.message.includes('cache.memcached.servers'),
  );
  assert.throws(() => loadConfig({ env: {}, argv: { memcached: ['no-port'] } }));
});

describe('memcached store', { skip }, () => {
  let mc: TestMemcached;
  const stores: MemcachedStore[] = [];
  const open = (o: { maxEntryBytes: number; now: () => number }, prefix = randomBytes(4).toString('hex')) => {
    const s = createMemcachedStore({
      servers: [mc.server],
      keyPrefix: `t${prefix}:`,
      maxEntryBytes: o.maxEntryBytes + 1024,
      commandTimeoutMs: 1_000,
      connectTimeoutMs: 1_000,
      lockTtlMs: 1_000,
      now: o.now,
    });
    stores.push(s);
    return s;
  };
  const limited = (o: { maxEntryBytes: number; now: () => number }) => {
    // The contract's per-object limit is on the body; the store's is on the encoded value.
    const s = open(o);
    return {
      ...s,
      put: (e: Parameters<MemcachedStore['put']>[0]) =>
        e.body.byteLength > o.maxEntryBytes ? Promise.resolve(false) : s.put(e),
    };
  };

  before(async () => {
    mc = await startTestMemcached();
  });
  after(async () => {
    for (const s of stores) await s.close();
    await mc?.close();
  });

  describeStoreContract('memcached', (o) => limited(o));
  describeStoreContract('memory + memcached (two tiers)', (o) =>
    createTieredStore({ l1: createMemoryStore(o), l2: limited(o), l1TtlMs: 5_000, now: o.now }),
  );

  test('a value over maxEntryBytes is refused by memcached and stays in L1', async () => {
    const o = { maxSizeBytes: 1_000_000, maxEntryBytes: 100_000, now: Date.now };
    const l2 = createMemcachedStore({
      servers: [mc.server],
      keyPrefix: `t${randomBytes(4).toString('hex')}:`,
      maxEntryBytes: 2_000,
      commandTimeoutMs: 1_000,
      connectTimeoutMs: 1_000,
      lockTtlMs: 1_000,
    });
    stores.push(l2);
    const tiered = createTieredStore({ l1: createMemoryStore(o), l2, l1TtlMs: 60_000 });
    assert.equal(await tiered.put(entry('big', '', 'x'.repeat(5_000))), true);
    assert.deepEqual(await l2.get('big'), []);
    assert.equal((await tiered.get('big')).length, 1);
  });

  test('the keys remembered for prefix purges and stats stay within maxTrackedBytes, newest kept', async () => {
    const keys = [
      'https://a.test/1',
      'https://a.test/2',
      'https://a.test/3',
      'https://a.test/4',
      'https://a.test/5',
    ];
    const s = createMemcachedStore({
      servers: [mc.server],
      keyPrefix: `t${randomBytes(4).toString('hex')}:`,
      maxEntryBytes: 10_000,
      maxTrackedBytes: 3 * ((keys[0] as string).length + TRACKED_KEY_OVERHEAD),
      commandTimeoutMs: 1_000,
      connectTimeoutMs: 1_000,
      lockTtlMs: 1_000,
    });
    stores.push(s);
    for (const k of keys) assert.equal(await s.put(entry(k)), true);
    assert.equal((await s.stats()).entries, 3);
    // A rewrite of a remembered key does not count it twice.
    assert.equal(await s.put(entry(keys[4] as string)), true);
    assert.equal((await s.stats()).entries, 3);
    assert.equal(await s.deletePrefix('https://a.test/'), 3);
    for (const k of keys.slice(2)) assert.deepEqual(await s.get(k), [], k);
    // The two oldest were forgotten: out of the prefix purge's reach, still in memcached.
    for (const k of keys.slice(0, 2)) assert.equal((await s.get(k)).length, 1, k);
  });

  test('the remembered keys and the writes in flight come out of the cache budget: L1 holds the rest', async () => {
    assert.equal(trackedBytesFor(32 * 1024 * 1024), MAX_TRACKED_BYTES);
    assert.equal(trackedBytesFor(256 * 1024 * 1024), MAX_TRACKED_BYTES);
    assert.equal(trackedBytesFor(8 * 1024 * 1024), 512 * 1024);
    const cap = 1024 * 1024;
    const share = cap - trackedBytesFor(cap) - pendingL2BytesFor(cap);
    const { cache } = loadConfig({ env: {}, argv: { memcached: [mc.server] } }).config;
    const tier = await createSharedTier(
      {
        ...cache,
        maxSizeBytes: cap,
        maxEntryBytes: cap,
        memcached: { ...cache.memcached, keyPrefix: `t${randomBytes(4).toString('hex')}:` },
      },
      { warn: () => {} },
    );
    assert.ok(tier !== null && tier.store.l1 !== null);
    try {
      await checkL1Share(tier.store, share);
    } finally {
      await tier.close();
    }
  });

  test('a fill claim by add is exclusive; the follower sees the release by polling', async () => {
    const prefix = randomBytes(4).toString('hex');
    const a = open({ maxEntryBytes: 10_000, now: Date.now }, prefix);
    const b = open({ maxEntryBytes: 10_000, now: Date.now }, prefix);
    const lead = await a.fill.claim('k');
    const follow = await b.fill.claim('k');
    assert.equal(lead.role, 'leader');
    assert.equal(follow.role, 'follower');
    if (follow.role !== 'follower' || lead.role !== 'leader') return;
    const t0 = Date.now();
    const waited = follow.wait(5_000, new AbortController().signal);
    setTimeout(() => lead.release(), 100);
    assert.equal(await waited, 'released');
    assert.ok(Date.now() - t0 < 1_000);
    assert.equal((await b.fill.claim('k')).role, 'leader');
  });

  test("another replica's L1 copy lives at most l1TtlMs after a purge", async () => {
    const prefix = randomBytes(4).toString('hex');
    let clock = Date.now();
    const o = { maxSizeBytes: 1_000_000, maxEntryBytes: 10_000, now: () => clock };
    const a = createTieredStore({
      l1: createMemoryStore(o),
      l2: open(o, prefix),
      l1TtlMs: 1_000,
      now: o.now,
    });
    const b = createTieredStore({
      l1: createMemoryStore(o),
      l2: open(o, prefix),
      l1TtlMs: 1_000,
      now: o.now,
    });
    const k = 'https://a.test/p/1\n-\n';
    await a.put(entry(k, '', 'v', clock + 600_000));
    assert.equal((await b.get(k)).length, 1); // L2 hit fills b's L1
    await a.delete(k);
    assert.equal((await b.l1!.get(k)).length, 1); // no broadcast: b still has it
    clock += 1_001;
    assert.deepEqual(await b.get(k), []);
  });

  test('memcached down: reads miss, writes fail, claims lead, all fast', async (t) => {
    if (!mc.owned) return t.skip('MEMCACHED_SERVERS given: cannot stop that server');
    const s = open({ maxEntryBytes: 10_000, now: Date.now });
    await s.put(entry('before'));
    await mc.stop();
    try {
      const t0 = Date.now();
      await assert.rejects(s.get('before'));
      await assert.rejects(s.put(entry('during')));
      assert.equal((await s.fill.claim('k')).role, 'leader');
      assert.equal(s.connected, false);
      assert.ok(Date.now() - t0 < 3_000, `took ${Date.now() - t0} ms`);
    } finally {
      await mc.start();
    }
  });
});
