import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { compileRuntime } from '../../../src/config/runtime.js';
import type { Exchange } from '../../../src/exchange.js';
import { createMetrics, type Metrics } from '../../../src/metrics/metrics.js';
import { parsePromText, sumOf } from '../../../src/metrics/prom-text.js';
import { makeExchange } from '../../helpers/exchange.js';

const ORIGIN = 'https://api.example.com';

function setup(): {
  metrics: Metrics;
  route: Exchange['route'];
  read(): Promise<Map<string, import('../../../src/metrics/prom-text.js').MetricFamily>>;
} {
  const runtime = compileRuntime(parseConfig({ routes: [{ name: 'api', origin: ORIGIN }] }));
  const metrics = createMetrics(runtime);
  return {
    metrics,
    route: runtime.routes[0] ?? null,
    read: async () => parsePromText(await metrics.registry.metrics()),
  };
}

const HELP_RE = /^# HELP (\S+) (.+)$/;

describe('metrics registry', () => {
  test('every sidecache metric has a one-line help and a unit suffix', async () => {
    const { metrics } = setup();
    const text = await metrics.registry.metrics();
    const helps = text.split('\n').filter((l) => l.startsWith('# HELP sidecache_'));
    assert.ok(helps.length >= 15, `expected many sidecache metrics, got ${helps.length}`);
    for (const line of helps) {
      const m = HELP_RE.exec(line);
      assert.ok(m, line);
      const name = m[1] as string;
      assert.match(
        name,
        /_(total|seconds|bytes|requests|entries|info)$/,
        `${name} ends in a unit (or counts entries, or is an _info metric)`,
      );
      assert.ok((m[2] as string).length > 10, `${name} has a help text`);
    }
  });

  test('saved seconds start at zero for every kind of every configured route', async () => {
    const { read } = setup();
    const f = await read();
    for (const kind of ['dns', 'connection', 'cache'])
      assert.equal(sumOf(f, 'sidecache_saved_seconds_total', { kind, route: 'api' }), 0);
  });
});

describe('observeDnsLookup', () => {
  test('counts lookups by result, times them by mode and credits DNS saved seconds to the route', async () => {
    const { metrics, read } = setup();
    metrics.observeDnsLookup({ host: 'api.example.com', result: 'miss', mode: 'system', durationMs: 40 });
    metrics.observeDnsLookup({
      host: 'api.example.com',
      result: 'hit',
      mode: 'system',
      durationMs: 0.02,
      savedMs: 40,
    });
    metrics.observeDnsLookup({
      host: 'API.example.com.',
      result: 'stale',
      mode: 'system',
      durationMs: 0.03,
      savedMs: 30,
    });
    metrics.observeDnsLookup({
      host: 'elsewhere.example',
      result: 'hit',
      mode: 'doh',
      durationMs: 0.01,
      savedMs: 100,
    });
    metrics.observeDnsLookup({ host: 'api.example.com', result: 'error', mode: 'udp', durationMs: 5 });
    const f = await read();
    assert.equal(sumOf(f, 'sidecache_dns_lookups_total', { result: 'hit' }), 2);
    assert.equal(sumOf(f, 'sidecache_dns_lookups_total', { result: 'miss' }), 1);
    assert.equal(sumOf(f, 'sidecache_dns_lookups_total', { result: 'stale' }), 1);
    assert.equal(sumOf(f, 'sidecache_dns_lookups_total', { result: 'error' }), 1);
    assert.equal(sumOf(f, 'sidecache_dns_lookup_duration_seconds_count', { mode: 'system' }), 3);
    assert.equal(sumOf(f, 'sidecache_dns_lookup_duration_seconds_count', { mode: 'doh' }), 1);
    assert.ok(
      Math.abs(sumOf(f, 'sidecache_dns_lookup_duration_seconds_sum', { mode: 'system' }) - 0.04005) < 1e-9,
    );
    assert.ok(
      Math.abs(sumOf(f, 'sidecache_saved_seconds_total', { kind: 'dns', route: 'api' }) - 0.07) < 1e-9,
    );
    assert.ok(
      Math.abs(sumOf(f, 'sidecache_saved_seconds_total', { kind: 'dns', route: 'forward' }) - 0.1) < 1e-9,
    );
  });

  test('keeps labels bounded: an unknown mode becomes "other"', async () => {
    const { metrics, read } = setup();
    metrics.observeDnsLookup({ host: 'x', result: 'miss', mode: 'Weird Mode!', durationMs: 1 });
    const f = await read();
    assert.equal(sumOf(f, 'sidecache_dns_lookup_duration_seconds_count', { mode: 'other' }), 1);
  });
});

describe('observeExchange: saved time and avoided requests', () => {
  function ended(ex: Exchange) {
    ex.timings.end = ex.timings.start + 2;
    return { ex, status: 200, bytes: 10, replySource: 'cache' as const };
  }

  test('a cache hit credits its savedMs and saved bytes, and counts an avoided upstream request', async () => {
    const { metrics, route, read } = setup();
    const ex = makeExchange(`${ORIGIN}/x`, { route });
    ex.cache = { outcome: 'hit', savedMs: 120, savedBytes: 2048 };
    ex.reason = 'cache_hit';
    metrics.observeExchange(ended(ex));
    const f = await read();
    assert.ok(
      Math.abs(sumOf(f, 'sidecache_saved_seconds_total', { kind: 'cache', route: 'api' }) - 0.12) < 1e-9,
    );
    assert.equal(sumOf(f, 'sidecache_saved_body_bytes_total', { route: 'api' }), 2048);
    assert.equal(sumOf(f, 'sidecache_upstream_requests_avoided_total', { route: 'api' }), 1);
    assert.equal(
      sumOf(f, 'sidecache_requests_total', { route: 'api', cache: 'hit', reason: 'cache_hit' }),
      1,
    );
  });

  test('a reused connection is credited the origin connect + TLS average from connect events', async () => {
    const { metrics, route, read } = setup();
    metrics.observeConnect({ origin: ORIGIN, ok: true, dnsMs: 2, connectMs: 10, tlsMs: 30 });
    const ex = makeExchange(`${ORIGIN}/x`, { route });
    ex.originInfo = { origin: ORIGIN, reusedConnection: true, retried: false, bodyBytes: 0 };
    ex.timings.phases.upstream = 5;
    metrics.observeExchange(ended(ex));
    const f = await read();
    assert.ok(
      Math.abs(sumOf(f, 'sidecache_saved_seconds_total', { kind: 'connection', route: 'api' }) - 0.04) < 1e-9,
    );
    assert.equal(sumOf(f, 'sidecache_upstream_requests_total', { origin: ORIGIN, connection: 'reused' }), 1);
    assert.equal(sumOf(f, 'sidecache_upstream_requests_avoided_total'), 0);
    assert.equal(
      sumOf(f, 'sidecache_upstream_connect_duration_seconds_count', { origin: ORIGIN, phase: 'tls' }),
      1,
    );
  });

  test('a miss that was not stored is counted with its reason; odd details become "other"', async () => {
    const { metrics, route, read } = setup();
    for (const detail of ['no-store', 'no-store', 'Not A Token']) {
      const ex = makeExchange(`${ORIGIN}/x`, { route });
      ex.cache = { outcome: 'miss', stored: false, detail };
      ex.originInfo = { origin: ORIGIN, reusedConnection: false, retried: false, bodyBytes: 0 };
      metrics.observeExchange(ended(ex));
    }
    const f = await read();
    assert.equal(
      sumOf(f, 'sidecache_cache_responses_not_stored_total', { route: 'api', reason: 'no-store' }),
      2,
    );
    assert.equal(
      sumOf(f, 'sidecache_cache_responses_not_stored_total', { route: 'api', reason: 'other' }),
      1,
    );
    assert.equal(sumOf(f, 'sidecache_saved_seconds_total', { kind: 'connection' }), 0);
  });
});
