/**
 * The CacheStore contract against the Redis store alone and the two-tier store (memory L1 in front
 * of Redis L2), on a real redis-server; plus the entry encoding and what a corrupt value does.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { decodeEntry, encodeEntry, encodeEntryParts } from '../../../src/cache/entry-codec.js';
import { createMemoryStore } from '../../../src/cache/memory-store.js';
import {
  createRedisStore,
  escapeGlob,
  type RedisStore,
  redactRedisUrl,
} from '../../../src/cache/redis-store.js';
import { createSharedTier } from '../../../src/cache/shared-tier.js';
import { createTieredStore, L2_WRITE_OVERHEAD, pendingL2BytesFor } from '../../../src/cache/tiered-store.js';
import { loadConfig } from '../../../src/config/load.js';
import { redisUnavailable, startTestRedis, type TestRedis } from '../../helpers/redis-server.js';
import { checkL1Share, describeStoreContract, entry } from '../../helpers/store-contract.js';

const skip = redisUnavailable() ?? false;

test('entry codec: round trip keeps every field; the body is raw bytes', () => {
  const e = { ...entry('https://a.test/x\n-\n', 'json'), body: Buffer.from([0, 255, 1, 2]) };
  const r = decodeEntry(encodeEntry(e));
  assert.ok(r.ok);
  assert.deepEqual({ ...r.entry, body: Buffer.from(r.entry.body) }, { ...e, body: Buffer.from(e.body) });
});

test('entry codec: the two parts join to the encoding; the body part is the stored bytes, not a copy', () => {
  // A body that is a view into a larger allocation (as a stored body may be), with multi-byte text
  // in the metadata so that characters and bytes differ.
  const backing = new Uint8Array(64).fill(7);
  const body = backing.subarray(8, 24);
  const e = { ...entry('https://a.test/\u00e9\u6f22', 'json'), body };
  const [head, part] = encodeEntryParts(e);
  assert.ok(Buffer.isBuffer(part), 'ioredis sends a Buffer argument as bytes, anything else as text');
  assert.equal(part.buffer, backing.buffer);
  assert.equal(part.byteOffset, 8);
  assert.equal(part.byteLength, 16);
  const joined = Buffer.concat([head, part]);
  assert.deepEqual(joined, encodeEntry(e));
  const r = decodeEntry(joined);
  assert.ok(r.ok);
  assert.equal(r.entry.key, e.key);
  assert.deepEqual(Buffer.from(r.entry.body), Buffer.from(body));
});

test('entry codec: wrong magic, unknown version, short or garbled data are refused', () => {
  const good = encodeEntry(entry('k'));
  assert.deepEqual(decodeEntry(Buffer.from('hello world')), { ok: false, why: 'magic' });
  const v2 = Buffer.from(good);
  v2[2] = 2;
  assert.deepEqual(decodeEntry(v2), { ok: false, why: 'version' });
  assert.deepEqual(decodeEntry(good.subarray(0, 20)), { ok: false, why: 'length' });
  const garbled = Buffer.from(good);
  garbled[8] = 0x7b; // '{' inside the JSON
  assert.equal(decodeEntry(garbled).ok, false);
});

test('redis URL redaction and glob escaping', () => {
  assert.equal(redactRedisUrl('redis://user:s3cret@h:6379/0'), 'redis://***:***@h:6379/0');
  assert.equal(redactRedisUrl('rediss://:s3cret@h:6380'), 'rediss://:***@h:6380');
  assert.equal(escapeGlob('https://a.test/x?[*]\\'), 'https://a.test/x\\?\\[\\*\\]\\\\');
});

describe('Redis store', { skip }, () => {
  let redis: TestRedis;
  const stores: RedisStore[] = [];
  const open = (o: { maxEntryBytes: number; now: () => number }, prefix = randomBytes(4).toString('hex')) => {
    const s = createRedisStore({
      url: redis.url,
      keyPrefix: `t${prefix}:`,
      maxEntryBytes: o.maxEntryBytes,
      commandTimeoutMs: 1_000,
      connectTimeoutMs: 1_000,
      lockTtlMs: 1_000,
      now: o.now,
    });
    stores.push(s);
    return s;
  };
  const ready = async (s: RedisStore) => {
    for (let i = 0; i < 200 && !s.connected; i++) await new Promise((r) => setTimeout(r, 10));
    return s;
  };

  before(async () => {
    redis = await startTestRedis();
  });
  after(async () => {
    for (const s of stores) await s.close();
    await redis?.close();
  });

  describeStoreContract('redis', (o) => ready(open(o)));
  describeStoreContract('memory + redis (two tiers)', async (o) =>
    createTieredStore({ l1: createMemoryStore(o), l2: await ready(open(o)) }),
  );

  test('a corrupt value in Redis is a miss, and is deleted', async () => {
    const prefix = randomBytes(4).toString('hex');
    const s = await ready(open({ maxEntryBytes: 10_000, now: Date.now }, prefix));
    await s.put(entry('https://a.test/c\n-\n'));
    const raw = new Redis(redis.url);
    try {
      await raw.hset(`t${prefix}:k:https://a.test/c\n-\n`, '', Buffer.from('SC\u0001garbage'));
      assert.deepEqual(await s.get('https://a.test/c\n-\n'), []);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(await raw.exists(`t${prefix}:k:https://a.test/c\n-\n`), 0);
    } finally {
      raw.disconnect();
    }
  });

  test('Redis TTL follows deleteAt (freshness plus stale retention)', async () => {
    const prefix = randomBytes(4).toString('hex');
    const s = await ready(open({ maxEntryBytes: 10_000, now: Date.now }, prefix));
    await s.put(entry('ttl', '', 'x', Date.now() + 60_000));
    const raw = new Redis(redis.url);
    try {
      const ttl = await raw.pttl(`t${prefix}:k:ttl`);
      assert.ok(ttl > 55_000 && ttl <= 60_000, `pttl ${ttl}`);
    } finally {
      raw.disconnect();
    }
  });

  test('a fill claim is exclusive; the follower is woken when the leader releases', async () => {
    const prefix = randomBytes(4).toString('hex');
    const a = await ready(open({ maxEntryBytes: 10_000, now: Date.now }, prefix));
    const b = await ready(open({ maxEntryBytes: 10_000, now: Date.now }, prefix));
    await new Promise((r) => setTimeout(r, 50)); // subscriptions in place
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

  test('the writes in flight come out of the cache budget: L1 holds the rest, no more is in flight', async () => {
    assert.equal(pendingL2BytesFor(32 * 1024 * 1024), 4 * 1024 * 1024);
    assert.equal(pendingL2BytesFor(256 * 1024 * 1024), 4 * 1024 * 1024);
    assert.equal(pendingL2BytesFor(8 * 1024 * 1024), 1024 * 1024);
    const cap = 1024 * 1024;
    const share = cap - pendingL2BytesFor(cap);
    const { cache } = loadConfig({ env: {}, argv: { redis: redis.url } }).config;
    let dropped = 0;
    const tier = await createSharedTier(
      {
        ...cache,
        maxSizeBytes: cap,
        maxEntryBytes: cap,
        // required: ready() then says when the connection is up.
        redis: { ...cache.redis, required: true, keyPrefix: `t${randomBytes(4).toString('hex')}:` },
      },
      { warn: () => {}, observer: { onWriteDropped: () => dropped++ } },
    );
    assert.ok(tier !== null && tier.store.l1 !== null);
    try {
      for (let i = 0; i < 200 && !tier.ready().ready; i++) await new Promise((r) => setTimeout(r, 10));
      const bodyLength = await checkL1Share(tier.store, share);
      assert.equal(dropped, 0, 'one write at a time is never dropped');
      // Twenty writes at once: only as many as the share holds go to Redis; L1 keeps them all.
      const body = 'z'.repeat(bodyLength);
      const burst = Array.from({ length: 20 }, (_, i) => entry(`https://a.test/burst/${i}`, '', body));
      assert.deepEqual(
        await Promise.all(burst.map((e) => tier.store.put(e))),
        burst.map(() => true),
      );
      const fit = Math.floor(pendingL2BytesFor(cap) / (body.length + L2_WRITE_OVERHEAD));
      assert.equal(dropped, burst.length - fit);
      assert.equal((await tier.store.l2.get(burst[fit - 1]!.key)).length, 1);
      assert.deepEqual(await tier.store.l2.get(burst[fit]!.key), []);
    } finally {
      await tier.close();
    }
  });

  test('deletes are broadcast: another process drops its in-memory copy', async () => {
    const prefix = randomBytes(4).toString('hex');
    const o = { maxSizeBytes: 1_000_000, maxEntryBytes: 10_000, now: Date.now };
    const a = createTieredStore({ l1: createMemoryStore(o), l2: await ready(open(o, prefix)) });
    const b = createTieredStore({ l1: createMemoryStore(o), l2: await ready(open(o, prefix)) });
    await new Promise((r) => setTimeout(r, 50));
    await a.put(entry('https://a.test/p/1\n-\n'));
    assert.equal((await b.get('https://a.test/p/1\n-\n')).length, 1); // L2 hit fills b's L1
    assert.equal((await b.l1!.get('https://a.test/p/1\n-\n')).length, 1);
    await a.deletePrefix('https://a.test/p/');
    for (let i = 0; i < 100 && (await b.l1!.get('https://a.test/p/1\n-\n')).length > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(await b.get('https://a.test/p/1\n-\n'), []);
  });
});

test('config: --redis and SIDECACHE_REDIS_URL set cache.redis.url; a bad URL is reported without its password', () => {
  const flag = loadConfig({ env: {}, argv: { redis: 'redis://127.0.0.1:6379' } }).config;
  assert.equal(flag.cache.redis.url, 'redis://127.0.0.1:6379');
  const env = loadConfig({ env: { SIDECACHE_REDIS_URL: 'rediss://:pw@r:6380/1' } }).config;
  assert.equal(env.cache.redis.url, 'rediss://:pw@r:6380/1');
  assert.throws(
    () => loadConfig({ env: { SIDECACHE_REDIS_URL: 'http://user:topsecret@r' } }),
    (err: Error & { code?: string }) => err.code === 'SC_ERR_CONFIG' && !err.message.includes('topsecret'),
  );
});
