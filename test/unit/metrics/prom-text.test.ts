import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import {
  PromTextError,
  parseNumber,
  parsePromText,
  samplesOf,
  sumBy,
  sumOf,
} from '../../../src/metrics/prom-text.js';

describe('Prometheus text format parser', () => {
  test('reads HELP, TYPE and samples with labels, grouping histogram series in one family', () => {
    const f = parsePromText(
      [
        '# HELP req_total Requests, with a \\\\ and a \\n in help.',
        '# TYPE req_total counter',
        'req_total{route="a",code="2xx"} 3',
        'req_total{route="b",code="5xx"} 4 1700000000000',
        '# TYPE lat_seconds histogram',
        'lat_seconds_bucket{le="0.1"} 1',
        'lat_seconds_bucket{le="+Inf"} 2',
        'lat_seconds_sum 0.35',
        'lat_seconds_count 2',
        'bare 1.5e-3',
        '',
      ].join('\n'),
    );
    const req = f.get('req_total');
    assert.equal(req?.type, 'counter');
    assert.equal(req?.help, 'Requests, with a \\ and a \n in help.');
    assert.equal(req?.samples.length, 2);
    assert.deepEqual(req?.samples[1]?.labels, { route: 'b', code: '5xx' });
    const lat = f.get('lat_seconds');
    assert.equal(lat?.type, 'histogram');
    assert.equal(lat?.samples.length, 4);
    assert.equal(samplesOf(f, 'lat_seconds_bucket', { le: '+Inf' })[0]?.value, 2);
    assert.equal(f.get('bare')?.samples[0]?.value, 0.0015);
    assert.equal(f.get('bare')?.type, 'untyped');
  });

  test('unescapes label values and accepts spaces and a trailing comma', () => {
    const f = parsePromText('m{a="x\\"y", b="c\\\\d\\ne",} 1\n');
    assert.deepEqual(f.get('m')?.samples[0]?.labels, { a: 'x"y', b: 'c\\d\ne' });
  });

  test('special values in any case', () => {
    assert.equal(parseNumber('+Inf'), Number.POSITIVE_INFINITY);
    assert.equal(parseNumber('-inf'), Number.NEGATIVE_INFINITY);
    assert.ok(Number.isNaN(parseNumber('Nan')));
    assert.throws(() => parseNumber('abc'));
    assert.throws(() => parseNumber(''));
  });

  test('malformed lines throw a PromTextError naming the line', () => {
    const bad = [
      'm{a=1} 1',
      'm{a="x} 1',
      'm{a="x"}',
      'm 1 2 3',
      '{a="b"} 1',
      'm{a="\\q"} 1',
      '# TYPE m flavour',
    ];
    for (const line of bad) {
      assert.throws(
        () => parsePromText(`ok 1\n${line}\n`),
        (err: unknown) => err instanceof PromTextError && err.line === 2,
        line,
      );
    }
  });

  test('sumOf and sumBy filter by labels', () => {
    const f = parsePromText('r{route="a",c="hit"} 2\nr{route="a",c="miss"} 3\nr{route="b",c="hit"} 5\n');
    assert.equal(sumOf(f, 'r'), 10);
    assert.equal(sumOf(f, 'r', { c: 'hit' }), 7);
    assert.deepEqual(
      [...sumBy(f, 'r', 'route')],
      [
        ['a', 5],
        ['b', 5],
      ],
    );
    assert.deepEqual(
      [...sumBy(f, 'r', 'c', { route: 'a' })],
      [
        ['hit', 2],
        ['miss', 3],
      ],
    );
  });

  test('round-trips what prom-client writes, including awkward label values', async () => {
    const registry = new Registry();
    const c = new Counter({ name: 'x_total', help: 'X.', labelNames: ['v'], registers: [registry] });
    const h = new Histogram({ name: 'y_seconds', help: 'Y.', buckets: [0.1, 1], registers: [registry] });
    c.inc({ v: 'quote " backslash \\ newline \n end' }, 2);
    h.observe(0.05);
    h.observe(5);
    const f = parsePromText(await registry.metrics());
    assert.equal(sumOf(f, 'x_total', { v: 'quote " backslash \\ newline \n end' }), 2);
    assert.equal(sumOf(f, 'y_seconds_count'), 2);
    assert.equal(sumOf(f, 'y_seconds_bucket', { le: '0.1' }), 1);
    assert.equal(sumOf(f, 'y_seconds_bucket', { le: '+Inf' }), 2);
    assert.equal(f.get('y_seconds')?.type, 'histogram');
  });
});
