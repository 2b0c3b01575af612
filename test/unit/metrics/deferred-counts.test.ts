import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { DeferredCounts } from '../../../src/metrics/deferred-counts.js';

describe('deferred counts', () => {
  it('exports the sums at each scrape, once, next to direct increments', async () => {
    const registry = new Registry();
    const counts = new DeferredCounts<'route' | 'kind'>();
    const counter = new Counter({
      name: 'test_things_total',
      help: 'Things.',
      labelNames: ['route', 'kind'] as const,
      registers: [registry],
      collect() {
        counts.flush(this);
      },
    });
    counter.inc({ route: 'a', kind: 'x' }, 0);
    const seriesValue = async (route: string, kind: string) =>
      (await counter.get()).values.find((v) => v.labels.route === route && v.labels.kind === kind)?.value;
    counts.add('a\0x', { route: 'a', kind: 'x' });
    counts.add('a\0x', { route: 'a', kind: 'x' }, 2.5);
    counts.add('b\0y', { route: 'b', kind: 'y' }, 4);
    assert.equal(await seriesValue('a', 'x'), 3.5);
    assert.equal(await seriesValue('b', 'y'), 4);
    // A second read adds nothing new.
    assert.equal(await seriesValue('a', 'x'), 3.5);
    counts.add('a\0x', { route: 'a', kind: 'x' });
    counter.inc({ route: 'a', kind: 'x' }, 10);
    const text = await registry.metrics();
    assert.match(text, /test_things_total\{route="a",kind="x"\} 14.5/);
    assert.match(text, /test_things_total\{route="b",kind="y"\} 4/);
  });
});
