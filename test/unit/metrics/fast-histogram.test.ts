/**
 * FastHistogram must be indistinguishable from prom-client's Histogram on /metrics: the same
 * observations into each (in their own registries) give the same exposition text.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { FastHistogram } from '../../../src/metrics/fast-histogram.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

describe('FastHistogram', () => {
  it('exports what prom-client exports for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    // The same configuration for both, each in its own registry.
    const config = {
      name: 'x_duration_seconds',
      help: 'A duration, by route.',
      labelNames: ['route'] as const,
      buckets: BUCKETS,
    };
    const fast = new FastHistogram({ ...config, registers: [ours] });
    const reference = new Histogram({ ...config, registers: [theirs] });
    // On and between bounds, below the first and above the last, zero, and several series.
    const values = [
      0, 0.0001, 0.0005, 0.00051, 0.001, 0.003, 0.05, 0.0500001, 0.7, 1, 2.5, 9.99, 10, 11, 120,
    ];
    const routes = ['github', 'stripe', 'a "quoted" route'];
    for (const [i, v] of values.entries()) {
      for (const [j, route] of routes.entries()) {
        if ((i + j) % 3 === 0) continue;
        fast.series(route, { route }).observe(v);
        reference.observe({ route }, v);
      }
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
  });

  it('a series is found by its key; reset forgets every series', async () => {
    const registry = new Registry();
    const fast = new FastHistogram({
      name: 'y_seconds',
      help: 'y',
      labelNames: ['origin'] as const,
      buckets: [0.1, 1],
      registers: [registry],
    });
    const a = fast.series('a', { origin: 'a' });
    assert.equal(fast.series('a', { origin: 'ignored: known by its key' }), a);
    a.observe(0.5);
    a.observe(2);
    const text = await registry.metrics();
    assert.match(text, /^y_seconds_bucket\{le="0.1",origin="a"\} 0$/m);
    assert.match(text, /^y_seconds_bucket\{le="1",origin="a"\} 1$/m);
    assert.match(text, /^y_seconds_bucket\{le="\+Inf",origin="a"\} 2$/m);
    assert.match(text, /^y_seconds_sum\{origin="a"\} 2.5$/m);
    assert.match(text, /^y_seconds_count\{origin="a"\} 2$/m);
    registry.resetMetrics();
    assert.doesNotMatch(await registry.metrics(), /y_seconds_count/);
  });

  it('refuses buckets that do not increase', () => {
    assert.throws(
      () => new FastHistogram({ name: 'z', help: 'z', labelNames: [], buckets: [1, 1], registers: [] }),
      /buckets must increase/,
    );
  });
});
