import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createReclaimer, reclaimThresholdBytes } from '../../../src/cache/reclaim.js';

const MiB = 1024 * 1024;

describe('reclaim', () => {
  it('collects after a sixteenth of the cap has left the store, at least 1 MiB', () => {
    assert.equal(reclaimThresholdBytes(32 * MiB), 2 * MiB);
    assert.equal(reclaimThresholdBytes(1024 * MiB), 64 * MiB);
    assert.equal(reclaimThresholdBytes(4 * MiB), MiB);
  });

  it('asks for a full GC once the threshold has left, at most once per interval', () => {
    let t = 1_000;
    const r = createReclaimer({ thresholdBytes: 2 * MiB, minIntervalMs: 250, now: () => t });
    r.released(MiB);
    assert.equal(r.collections, 0);
    r.released(MiB);
    assert.equal(r.collections, 1);
    r.released(3 * MiB);
    assert.equal(r.collections, 1, 'within the interval: no second collection');
    t += 250;
    r.released(1);
    assert.equal(r.collections, 2, 'the bytes that left meanwhile count once the interval is over');
    r.released(MiB);
    t += 1_000;
    r.released(MiB - 1);
    assert.equal(r.collections, 2, 'the count started again after the last collection');
    r.released(1);
    assert.equal(r.collections, 3);
  });

  it('collects inside the interval once twice the threshold has left (large bodies turning over fast)', () => {
    let t = 1_000;
    const r = createReclaimer({ thresholdBytes: 2 * MiB, minIntervalMs: 250, now: () => t });
    r.released(2 * MiB);
    assert.equal(r.collections, 1);
    t += 10;
    r.released(4 * MiB - 1);
    assert.equal(r.collections, 1, 'under twice the threshold: the interval holds');
    r.released(1);
    assert.equal(r.collections, 2, 'twice the threshold: collected at once');
    t += 10;
    r.released(2 * MiB);
    assert.equal(r.collections, 2, 'the count started again: one threshold waits for the interval');
  });
});
