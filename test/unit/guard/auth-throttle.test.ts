/** The proxy-auth back-off: doubling up to its cap, reset on success, and a bounded address table. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAuthThrottle } from '../../../src/guard/auth-throttle.js';

test('back-off starts at maxFailures, doubles per failure, stops at maxBackoffMs', () => {
  let now = 1_000_000;
  const blocks: number[] = [];
  const t = createAuthThrottle({
    maxFailures: 3,
    backoffMs: 1_000,
    maxBackoffMs: 5_000,
    now: () => now,
    onFailure: (ms) => blocks.push(ms),
  });
  for (let i = 0; i < 6; i++) {
    assert.equal(t.waitMs('a'), 0);
    t.failed('a');
    now += blocks.at(-1) as number;
  }
  assert.deepEqual(blocks, [0, 0, 1_000, 2_000, 4_000, 5_000]);
  t.failed('a');
  assert.equal(t.waitMs('a'), 5_000);
  assert.equal(t.waitMs('b'), 0, 'per address');
  t.succeeded('a');
  assert.equal(t.waitMs('a'), 0);
  t.failed('a');
  assert.equal(t.waitMs('a'), 0, 'a success forgot the failures');
});

test('maxFailures 0 turns it off; the table holds at most maxClients addresses', () => {
  const off = createAuthThrottle({ maxFailures: 0, backoffMs: 1_000, maxBackoffMs: 1_000 });
  for (let i = 0; i < 10; i++) off.failed('a');
  assert.equal(off.waitMs('a'), 0);

  const t = createAuthThrottle({ maxFailures: 1, backoffMs: 60_000, maxBackoffMs: 60_000, maxClients: 100 });
  t.failed('first');
  assert.ok(t.waitMs('first') > 0);
  for (let i = 0; i < 100; i++) t.failed(`10.0.${i >> 8}.${i & 255}`);
  assert.equal(t.waitMs('first'), 0, 'the oldest address was evicted');
  assert.ok(t.waitMs('10.0.0.99') > 0);
});
