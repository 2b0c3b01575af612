import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CacheInfo, OriginInfo } from '../../../src/exchange.js';
import { createSavedTimeLedger, upstreamAvoided } from '../../../src/metrics/saved-time.js';
import { makeExchange } from '../../helpers/exchange.js';

const ORIGIN = 'https://api.example.com';
const connect = (connectMs: number, tlsMs?: number, origin = ORIGIN) => ({
  origin,
  ok: true,
  dnsMs: 1,
  connectMs,
  tlsMs,
});
function exchange(originInfo?: Partial<OriginInfo>, cache?: CacheInfo) {
  const ex = makeExchange(`${ORIGIN}/x`);
  if (originInfo)
    ex.originInfo = { origin: ORIGIN, reusedConnection: false, retried: false, bodyBytes: 0, ...originInfo };
  if (cache) ex.cache = cache;
  return ex;
}

describe('saved-time ledger: reused connections', () => {
  test('credits nothing before any connection to the origin was measured', () => {
    const ledger = createSavedTimeLedger();
    assert.deepEqual(ledger.exchangeSavings(exchange({ reusedConnection: true })), {});
  });

  test('credits the measured connect + TLS time (DNS excluded) to a reused connection', () => {
    const ledger = createSavedTimeLedger();
    ledger.recordConnect(connect(4, 16));
    assert.equal(ledger.connectionCostMs(ORIGIN), 20);
    assert.deepEqual(ledger.exchangeSavings(exchange({ reusedConnection: true })), { connection: 20 });
  });

  test('credits nothing to an exchange that opened its own connection', () => {
    const ledger = createSavedTimeLedger();
    ledger.recordConnect(connect(4, 16));
    assert.deepEqual(ledger.exchangeSavings(exchange({ reusedConnection: false })), {});
  });

  test('keeps an exponentially weighted moving average per origin', () => {
    const ledger = createSavedTimeLedger({ alpha: 0.5 });
    ledger.recordConnect(connect(10));
    ledger.recordConnect(connect(30));
    assert.equal(ledger.connectionCostMs(ORIGIN), 20);
    ledger.recordConnect(connect(100, undefined, 'http://other.example'));
    assert.equal(ledger.connectionCostMs(ORIGIN), 20);
    assert.equal(ledger.connectionCostMs('http://other.example'), 100);
  });

  test('ignores failed connection attempts', () => {
    const ledger = createSavedTimeLedger();
    ledger.recordConnect({ origin: ORIGIN, ok: false, dnsMs: 1, connectMs: 5000, tlsMs: undefined });
    assert.equal(ledger.connectionCostMs(ORIGIN), undefined);
  });

  test('forgets the least recently measured origin beyond maxOrigins', () => {
    const ledger = createSavedTimeLedger({ maxOrigins: 2 });
    ledger.recordConnect(connect(1, undefined, 'http://a'));
    ledger.recordConnect(connect(2, undefined, 'http://b'));
    ledger.recordConnect(connect(3, undefined, 'http://a'));
    ledger.recordConnect(connect(4, undefined, 'http://c'));
    assert.equal(ledger.connectionCostMs('http://b'), undefined);
    assert.notEqual(ledger.connectionCostMs('http://a'), undefined);
  });

  test('refuses a bad alpha at creation', () => {
    assert.throws(() => createSavedTimeLedger({ alpha: 0 }), RangeError);
    assert.throws(() => createSavedTimeLedger({ alpha: 1.5 }), RangeError);
  });
});

describe('saved-time ledger: cache answers', () => {
  test('credits ex.cache.savedMs when positive', () => {
    const ledger = createSavedTimeLedger();
    const ex = exchange(undefined, { outcome: 'hit', savedMs: 48.5, savedBytes: 10 });
    assert.deepEqual(ledger.exchangeSavings(ex), { cache: 48.5 });
  });

  test('credits nothing for savedMs 0, absent, or not finite', () => {
    const ledger = createSavedTimeLedger();
    for (const savedMs of [0, undefined, Number.NaN, -3]) {
      const cache: CacheInfo = savedMs === undefined ? { outcome: 'hit' } : { outcome: 'hit', savedMs };
      assert.deepEqual(ledger.exchangeSavings(exchange(undefined, cache)), {});
    }
  });

  test('a 304 revalidation on a reused connection saves both kinds', () => {
    const ledger = createSavedTimeLedger();
    ledger.recordConnect(connect(3, 7));
    const ex = exchange({ reusedConnection: true }, { outcome: 'revalidated', savedMs: 12 });
    assert.deepEqual(ledger.exchangeSavings(ex), { connection: 10, cache: 12 });
  });
});

describe('saved-time ledger: DNS', () => {
  const ledger = createSavedTimeLedger();
  const event = (
    result: 'hit' | 'miss' | 'stale' | 'negative' | 'error' | 'prefetch' | 'static',
    savedMs?: number,
  ) => ({
    host: 'api.example.com',
    result,
    mode: 'system',
    durationMs: 0.01,
    ...(savedMs === undefined ? {} : { savedMs }),
  });
  test('a cache answer saves the last real lookup time', () => {
    assert.equal(ledger.dnsSavingsMs(event('hit', 23)), 23);
    assert.equal(ledger.dnsSavingsMs(event('stale', 5)), 5);
    assert.equal(ledger.dnsSavingsMs(event('negative', 9)), 9);
  });
  test('a lookup that went to a resolver saves nothing', () => {
    for (const r of ['miss', 'error', 'prefetch', 'static'] as const)
      assert.equal(ledger.dnsSavingsMs(event(r, 23)), 0);
    assert.equal(ledger.dnsSavingsMs(event('hit')), 0);
  });
});

describe('upstreamAvoided', () => {
  test('true for hit, stale and coalesced answers with no origin request', () => {
    for (const outcome of ['hit', 'stale', 'coalesced'] as const)
      assert.equal(upstreamAvoided(exchange(undefined, { outcome })), true);
  });
  test('false when the origin was asked (stale-if-error, revalidated, miss) or no cache', () => {
    assert.equal(upstreamAvoided(exchange({}, { outcome: 'stale' })), false);
    assert.equal(upstreamAvoided(exchange({}, { outcome: 'revalidated' })), false);
    assert.equal(upstreamAvoided(exchange(undefined, { outcome: 'miss' })), false);
    assert.equal(upstreamAvoided(exchange(undefined, { outcome: 'bypass' })), false);
    assert.equal(upstreamAvoided(exchange()), false);
  });
});
