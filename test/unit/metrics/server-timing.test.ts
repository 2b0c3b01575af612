import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { compileRuntime } from '../../../src/config/runtime.js';
import {
  createServerTiming,
  formatDuration,
  formatServerTiming,
  serverTimingMetrics,
  serverTimingValue,
} from '../../../src/metrics/server-timing.js';
import { makeExchange } from '../../helpers/exchange.js';

const ORIGIN = 'https://api.example.com';

function originExchange(reused: boolean) {
  const ex = makeExchange(`${ORIGIN}/x`);
  ex.originInfo = { origin: ORIGIN, reusedConnection: reused, retried: false, bodyBytes: 0 };
  return ex;
}

describe('Server-Timing metrics from the Exchange timeline', () => {
  test('a new TLS connection: dns, connect, tls, then upstream without the setup time', () => {
    const ex = originExchange(false);
    Object.assign(ex.timings.phases, { dns: 3, connect: 2, tls: 10, upstream: 65 });
    const m = serverTimingMetrics(ex, ex.timings.start + 70);
    assert.deepEqual(
      m.map((x) => [x.name, Math.round(x.dur * 1000) / 1000, x.desc]),
      [
        ['dns', 3, undefined],
        ['connect', 2, 'new'],
        ['tls', 10, undefined],
        ['upstream', 50, undefined],
        ['total', 70, 'to headers'],
      ],
    );
  });

  test('a reused connection: connect;dur=0;desc="reused", upstream is the whole wait', () => {
    const ex = originExchange(true);
    ex.timings.phases.upstream = 40;
    const m = serverTimingMetrics(ex, ex.timings.start + 41);
    assert.deepEqual(
      m.map((x) => [x.name, Math.round(x.dur * 1000) / 1000, x.desc]),
      [
        ['connect', 0, 'reused'],
        ['upstream', 40, undefined],
        ['total', 41, 'to headers'],
      ],
    );
  });

  test('a cache miss: the cache slice excludes the origin request it enclosed', () => {
    const ex = originExchange(true);
    ex.cache = { outcome: 'miss', stored: true };
    Object.assign(ex.timings.phases, { cache: 52, upstream: 50 });
    const m = serverTimingMetrics(ex, ex.timings.start + 53);
    assert.deepEqual(m[0], { name: 'cache', dur: 2, desc: 'miss' });
    const sum = m.filter((x) => x.name !== 'total').reduce((a, x) => a + x.dur, 0);
    assert.ok(sum <= 53);
  });

  test('a cache hit: cache and total only', () => {
    const ex = makeExchange(`${ORIGIN}/x`);
    ex.cache = { outcome: 'hit', savedMs: 40 };
    ex.timings.phases.cache = 0.25;
    const m = serverTimingMetrics(ex, ex.timings.start + 0.5);
    assert.deepEqual(
      m.map((x) => x.name),
      ['cache', 'total'],
    );
  });

  test('formats durations with 1 to 3 decimals and quotes descriptions', () => {
    assert.equal(formatDuration(2), '2.0');
    assert.equal(formatDuration(1.5), '1.5');
    assert.equal(formatDuration(0.12), '0.12');
    assert.equal(formatDuration(0.123456), '0.123');
    assert.equal(formatDuration(52.3049), '52.305');
    assert.equal(formatDuration(0), '0.0');
    assert.equal(formatDuration(0.0004), '0.0');
    assert.equal(formatDuration(0.0005), '0.001');
    assert.equal(formatDuration(0.05), '0.05');
    assert.equal(formatDuration(1.005), '1.005');
    assert.equal(formatDuration(1000.1), '1000.1');
    assert.equal(formatDuration(9.9999), '10.0');
    assert.equal(
      formatServerTiming([
        { name: 'cache', dur: 0.5, desc: 'a "q"' },
        { name: 'total', dur: 3 },
      ]),
      'cache;dur=0.5;desc="a \\"q\\"", total;dur=3.0',
    );
  });
});

describe('the Server-Timing value built without metric objects', () => {
  test('is the formatted list of the metrics, for every shape of timeline', () => {
    const newTls = originExchange(false);
    Object.assign(newTls.timings.phases, { dns: 3.25, connect: 2, tls: 10.5, upstream: 65.0004 });
    const reused = originExchange(true);
    reused.cache = { outcome: 'miss', stored: false, detail: 'no-store' };
    Object.assign(reused.timings.phases, { cache: 1.75, upstream: 0.5 });
    const hit = makeExchange(`${ORIGIN}/x`);
    hit.cache = { outcome: 'hit' };
    hit.timings.phases.cache = 0.125;
    const quoted = makeExchange(`${ORIGIN}/x`);
    quoted.cache = { outcome: 'a "q"' as 'hit' };
    quoted.timings.phases.cache = 2;
    for (const [ex, at] of [
      [newTls, 70],
      [reused, 3],
      [hit, 0.5],
      [quoted, 4],
    ] as const) {
      const value = serverTimingValue(ex, ex.timings.start + at);
      assert.equal(value, formatServerTiming(serverTimingMetrics(ex, ex.timings.start + at)));
    }
    assert.equal(
      serverTimingValue(reused, reused.timings.start + 3),
      'cache;dur=1.25;desc="miss", connect;dur=0.0;desc="reused", upstream;dur=0.5, total;dur=3.0;desc="to headers"',
    );
    assert.equal(
      serverTimingValue(quoted, quoted.timings.start + 4),
      'cache;dur=2.0;desc="a \\"q\\"", total;dur=4.0;desc="to headers"',
    );
  });
});

describe('the Server-Timing header hook', () => {
  const runtime = compileRuntime(
    parseConfig({
      routes: [
        { name: 'on', origin: ORIGIN },
        { name: 'off', origin: 'https://b.example', observability: { serverTiming: false } },
      ],
    }),
  );
  const hook = createServerTiming(runtime, () => 0);

  test('is added on a route that keeps it, after any Server-Timing from the origin', () => {
    const ex = makeExchange(`${ORIGIN}/x`, { route: runtime.routes[0] ?? null });
    const out = hook(ex, { 'server-timing': 'db;dur=12', 'x-a': '1' });
    assert.match(String(out['server-timing']), /^db;dur=12, total;dur=/);
    assert.equal(out['x-a'], '1');
  });

  test('is left out on a route that switched it off', () => {
    const ex = makeExchange('https://b.example/x', { route: runtime.routes[1] ?? null });
    const headers = { 'x-a': '1' };
    assert.equal(hook(ex, headers), headers);
  });

  test('the global switch is the default for forward requests and routes without a setting', () => {
    const off = compileRuntime(
      parseConfig({ observability: { serverTiming: false }, routes: [{ name: 'r', origin: ORIGIN }] }),
    );
    const offHook = createServerTiming(off, () => 0);
    const ex = makeExchange(`${ORIGIN}/x`, { route: off.routes[0] ?? null });
    assert.equal(offHook(ex, {})['server-timing'], undefined);
    assert.equal(offHook(makeExchange('http://fwd.example/'), {})['server-timing'], undefined);
  });
});
