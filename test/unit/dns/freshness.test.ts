import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  answerState,
  negativeTtlMs,
  positiveTtlMs,
  prefetchAt,
  type TtlPolicy,
} from '../../../src/dns/freshness.js';
import { DNS_DEFAULTS } from '../../../src/dns/options.js';

const policy: TtlPolicy = { ...DNS_DEFAULTS };

describe('positiveTtlMs', () => {
  const cases: [string, number | null, number][] = [
    ['a record TTL inside the bounds is kept', 60_000, 60_000],
    ['a TTL of 0 is raised to minTtlMs', 0, 5_000],
    ['a TTL under minTtlMs is raised', 1_000, 5_000],
    ['a TTL over maxTtlMs is lowered', 7 * 86_400_000, 86_400_000],
    ['no TTL (system resolver) gets systemTtlMs', null, 30_000],
  ];
  for (const [name, ttl, expected] of cases)
    test(name, () => assert.equal(positiveTtlMs(ttl, policy), expected));
});

describe('negativeTtlMs (RFC 2308 §5)', () => {
  test('negativeTtlMs when the SOA is unknown', () => assert.equal(negativeTtlMs(null, policy), 30_000));
  test('an SOA-derived TTL is capped', () => assert.equal(negativeTtlMs(86_400_000, policy), 3_600_000));
  test('a short SOA-derived TTL is kept', () => assert.equal(negativeTtlMs(1_000, policy), 1_000));
});

describe('prefetchAt and answerState (RFC 8767)', () => {
  const entry = { storedAt: 0, expiresAt: 10_000 };
  test('prefetch starts in the last 10% of the TTL', () => assert.equal(prefetchAt(0, 10_000, 0.1), 9_000));
  test('ratio 0 never prefetches', () => assert.equal(prefetchAt(0, 10_000, 0), Number.POSITIVE_INFINITY));
  const states: [number, string][] = [
    [0, 'fresh'],
    [8_999, 'fresh'],
    [9_000, 'prefetch'],
    [9_999, 'prefetch'],
    [10_000, 'stale'],
    [10_000 + 3_600_000 - 1, 'stale'],
    [10_000 + 3_600_000, 'expired'],
  ];
  for (const [now, state] of states) {
    test(`at ${now} ms the answer is ${state}`, () => assert.equal(answerState(entry, now, policy), state));
  }
});
