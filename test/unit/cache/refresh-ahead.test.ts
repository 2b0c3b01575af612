import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { refreshAheadSchema } from '../../../src/cache/options.js';
import { compileRefreshAhead, createHitTracker, inRefreshWindow } from '../../../src/cache/refresh-ahead.js';

const opts = (o: Record<string, unknown>) => refreshAheadSchema.parse(o);

describe('refresh-ahead rules', () => {
  test('window: the last fraction of the lifetime, or beforeExpiryMs', () => {
    const f = opts({ fraction: 0.2 });
    assert.equal(inRefreshWindow(79_000, 100_000, f), false);
    assert.equal(inRefreshWindow(80_000, 100_000, f), true);
    assert.equal(inRefreshWindow(100_000, 100_000, f), false, 'stale is not refresh-ahead');
    const b = opts({ beforeExpiryMs: 5_000 });
    assert.equal(inRefreshWindow(94_000, 100_000, b), false);
    assert.equal(inRefreshWindow(95_500, 100_000, b), true);
    assert.equal(inRefreshWindow(0, 0, b), false, 'no lifetime, nothing to refresh ahead of');
  });
  test('paths: true, or patterns where * matches anything', () => {
    assert.equal(compileRefreshAhead(opts({})).matches('/anything'), true);
    const p = compileRefreshAhead(opts({ paths: ['/repos/*', '/v1/plans'] }));
    assert.equal(p.matches('/repos/nodejs/undici'), true);
    assert.equal(p.matches('/v1/plans'), true);
    assert.equal(p.matches('/v1/plans/x'), false);
    assert.equal(p.matches('/user'), false);
  });
  test('schema refuses patterns without a leading slash', () => {
    assert.equal(refreshAheadSchema.safeParse({ paths: ['repos/*'] }).success, false);
    assert.equal(refreshAheadSchema.safeParse({ minHits: 0 }).success, false);
  });
  test('hits restart with each stored response; refreshed ones count hits past the old expiry', () => {
    const t = createHitTracker(10);
    assert.equal(t.hit('k', 1), 1);
    assert.equal(t.hit('k', 1), 2);
    assert.equal(t.hit('k', 2), 1);
    t.refreshed('k', 3, 500);
    assert.equal(t.thanksToRefresh('k', 3, 499), false);
    assert.equal(t.thanksToRefresh('k', 3, 500), true);
    assert.equal(t.hit('k', 3), 1);
  });
});
