import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cacheSchema,
  DEFAULT_ROUTE_POLICY,
  explainPolicy,
  parseCacheOptions,
  parseRouteCachePolicy,
  routeCachePolicySchema,
} from '../../../src/cache/options.js';
import { createCacheStage, policyByRoute } from '../../../src/cache/stage.js';

describe('cache options', () => {
  test('defaults', () => {
    assert.deepEqual(parseCacheOptions({}), {
      enabled: true,
      maxSizeBytes: 64 * 1024 * 1024,
      maxEntryBytes: 4 * 1024 * 1024,
      coalesceTimeoutMs: 5000,
      hitForMissTtlMs: 10_000,
      heuristicFraction: 0.1,
      maxHeuristicTtlMs: 86_400_000,
      staleIfErrorMs: 0,
      serveStaleIfUnreachable: true,
      staleRetentionMs: 86_400_000,
      targetedFields: ['sidecache-cache-control', 'cdn-cache-control'],
      cacheStatusName: 'sidecache',
      upstreamCompression: true,
      upstreamCodings: ['br', 'gzip'],
      refreshAheadConcurrency: 4,
      hitMemoEntries: 10_000,
      redis: {
        url: null,
        cluster: false,
        required: false,
        l1: true,
        keyPrefix: 'sidecache:',
        maxEntryBytes: 1024 * 1024,
        commandTimeoutMs: 250,
        connectTimeoutMs: 2000,
        lockTtlMs: 10_000,
      },
      memcached: {
        servers: [],
        l1: true,
        l1TtlMs: 10_000,
        keyPrefix: 'sidecache:',
        maxEntryBytes: 1024 * 1024 - 1024,
        commandTimeoutMs: 250,
        connectTimeoutMs: 2000,
        lockTtlMs: 10_000,
      },
    });
  });
  test('cache.redis.url must be a redis:// or rediss:// URL; the error hides its password', () => {
    assert.equal(
      parseCacheOptions({ redis: { url: 'rediss://:pw@r:6380' } }).redis.url,
      'rediss://:pw@r:6380',
    );
    assert.throws(() => parseCacheOptions({ redis: { url: 'http://r:6379' } }), /cache\.redis\.url/);
  });
  test('unknown keys are refused (strict) with a ConfigError naming the key', () => {
    assert.throws(
      () => parseCacheOptions({ maxSize: 1 }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'SC_ERR_CONFIG');
        assert.match(err.message, /^cache: .*maxSize/);
        return true;
      },
    );
  });
  test('maxEntryBytes over maxSizeBytes is refused', () => {
    assert.throws(() => parseCacheOptions({ maxSizeBytes: 10, maxEntryBytes: 20 }), /cache\.maxEntryBytes/);
  });
  test('createCacheStage validates once and throws SC_ERR_CONFIG', () => {
    assert.throws(() => createCacheStage({ heuristicFraction: 2 }), { code: 'SC_ERR_CONFIG' });
  });
  test('every key has a description', () => {
    for (const schema of [cacheSchema, routeCachePolicySchema]) {
      const shape =
        (schema as unknown as { shape?: Record<string, { description?: string }> }).shape ??
        (schema as unknown as { def: { in: { shape: Record<string, { description?: string }> } } }).def.in
          .shape;
      for (const [k, v] of Object.entries(shape)) assert.ok(v.description, `${k} has no description`);
    }
  });
});

describe('route cache policy', () => {
  test('defaults', () => {
    assert.deepEqual(DEFAULT_ROUTE_POLICY, {
      enabled: true,
      ttlMs: null,
      ignoreNoStore: false,
      forceRevalidate: false,
      keyQuery: { sort: false, ignore: [] },
      keyHeaders: [],
      credentialHeaders: [],
      credentialCookies: [],
      cookies: 'isolate',
      storePrivate: false,
      storeSetCookie: false,
      emitAge: true,
      emitCacheStatus: true,
      upstreamCompression: true,
      refreshAhead: null,
      paths: [],
    });
  });
  test('header names are lower-cased', () => {
    assert.deepEqual(parseRouteCachePolicy({ credentialHeaders: ['X-Api-Key'] }).credentialHeaders, [
      'x-api-key',
    ]);
  });
  test('policyByRoute names the route in errors', () => {
    assert.throws(() => policyByRoute({ github: { ttlMs: -1 } }), /routes\.github\.cache\.ttlMs/);
  });
  test('explain() says what the policy does', () => {
    assert.match(
      explainPolicy(parseRouteCachePolicy({ storePrivate: true, forceRevalidate: true })),
      /every reuse revalidated/,
    );
    assert.equal(explainPolicy(parseRouteCachePolicy({ enabled: false })), 'cache: off');
  });
});

describe('check-config explains what a policy can never store (issue 19)', () => {
  test('a ttlMs route is warned that answers to requests with Authorization are not stored without storePrivate', () => {
    assert.match(
      explainPolicy(parseRouteCachePolicy({ ttlMs: 60_000 })),
      /warning: requests with Authorization are stored only when the origin allows shared caching .*set storePrivate/,
    );
    assert.doesNotMatch(
      explainPolicy(parseRouteCachePolicy({ ttlMs: 60_000, storePrivate: true })),
      /warning/,
    );
  });

  test('ignoreNoStore says it stores per credential, with no warning', () => {
    const text = explainPolicy(parseRouteCachePolicy({ ttlMs: 60_000, ignoreNoStore: true }));
    assert.match(text, /private and credentialed responses stored per credential/);
    assert.doesNotMatch(text, /warning/);
  });

  test('ttlMs 0 is warned: a response without validators is never stored', () => {
    assert.match(explainPolicy(parseRouteCachePolicy({ ttlMs: 0, storePrivate: true })), /warning: ttlMs 0/);
  });
});
