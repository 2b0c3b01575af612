import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatReport } from '../../../src/commands/report.js';
import { parsePromText } from '../../../src/metrics/prom-text.js';
import { ADVICE_MIN_REQUESTS, advise, type Summary, summarise } from '../../../src/metrics/summary.js';

const SCRAPE = `
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1000
# TYPE sidecache_requests_total counter
sidecache_requests_total{route="github",method="GET",status_class="2xx",cache="hit",reason="cache_hit"} 30
sidecache_requests_total{route="github",method="GET",status_class="2xx",cache="stale",reason="cache_stale"} 5
sidecache_requests_total{route="github",method="GET",status_class="2xx",cache="miss",reason="origin_response"} 15
sidecache_requests_total{route="github",method="POST",status_class="2xx",cache="bypass",reason="origin_response"} 7
sidecache_requests_total{route="stripe",method="GET",status_class="2xx",cache="miss",reason="origin_response"} 20
sidecache_requests_total{route="none",method="GET",status_class="4xx",cache="none",reason="no_route"} 2
# TYPE sidecache_saved_seconds_total counter
sidecache_saved_seconds_total{kind="cache",route="github"} 3.5
sidecache_saved_seconds_total{kind="connection",route="github"} 0.25
sidecache_saved_seconds_total{kind="dns",route="github"} 0.05
sidecache_saved_seconds_total{kind="connection",route="stripe"} 0.5
sidecache_saved_seconds_total{kind="cache",route="stripe"} 0
# TYPE sidecache_upstream_requests_avoided_total counter
sidecache_upstream_requests_avoided_total{route="github"} 33
sidecache_upstream_requests_avoided_total{route="stripe"} 0
# TYPE sidecache_cache_responses_not_stored_total counter
sidecache_cache_responses_not_stored_total{route="stripe",reason="no-store"} 18
sidecache_cache_responses_not_stored_total{route="stripe",reason="private"} 2
# TYPE sidecache_upstream_requests_total counter
sidecache_upstream_requests_total{origin="https://api.github.com",connection="new"} 2
sidecache_upstream_requests_total{origin="https://api.github.com",connection="reused"} 20
sidecache_upstream_requests_total{origin="https://api.stripe.com",connection="new"} 15
sidecache_upstream_requests_total{origin="https://api.stripe.com",connection="reused"} 5
# TYPE sidecache_upstream_duration_seconds histogram
sidecache_upstream_duration_seconds_sum{origin="https://api.github.com"} 2.2
sidecache_upstream_duration_seconds_count{origin="https://api.github.com"} 22
sidecache_upstream_duration_seconds_sum{origin="https://api.stripe.com"} 8
sidecache_upstream_duration_seconds_count{origin="https://api.stripe.com"} 20
# TYPE sidecache_upstream_connections_opened_total counter
sidecache_upstream_connections_opened_total{origin="https://api.github.com"} 2
sidecache_upstream_connections_opened_total{origin="https://api.stripe.com"} 15
# TYPE sidecache_upstream_connect_errors_total counter
sidecache_upstream_connect_errors_total{origin="https://api.stripe.com",code="ECONNRESET"} 1
# TYPE sidecache_upstream_connect_duration_seconds histogram
sidecache_upstream_connect_duration_seconds_sum{origin="https://api.stripe.com",phase="tls"} 0.3
sidecache_upstream_connect_duration_seconds_count{origin="https://api.stripe.com",phase="tls"} 15
# TYPE sidecache_dns_lookups_total counter
sidecache_dns_lookups_total{result="hit"} 9
sidecache_dns_lookups_total{result="miss"} 1
# TYPE sidecache_upstream_idle_connections gauge
sidecache_upstream_idle_connections{origin="https://api.github.com"} 2
# TYPE sidecache_upstream_connections_ahead_total counter
sidecache_upstream_connections_ahead_total{origin="https://api.github.com"} 3
# TYPE sidecache_upstream_connections_ahead_used_total counter
sidecache_upstream_connections_ahead_used_total{origin="https://api.github.com"} 1
# TYPE sidecache_warm_start_duration_seconds gauge
sidecache_warm_start_duration_seconds 0.25
# TYPE sidecache_warming gauge
sidecache_warming 0
`;

describe('summary of one scrape', () => {
  const s = summarise(parsePromText(SCRAPE), 1060);

  test('totals: requests, lookups (bypass and none left out), hits, avoided, saved by kind', () => {
    assert.equal(s.uptimeSeconds, 60);
    assert.equal(s.requests, 79);
    assert.equal(s.lookups, 70);
    assert.equal(s.hits, 35);
    assert.equal(s.hitRatio, 0.5);
    assert.equal(s.avoided, 33);
    assert.deepEqual(s.savedSeconds, { dns: 0.05, connection: 0.75, cache: 3.5, total: 4.3 });
    assert.deepEqual(s.dnsLookups, { hit: 9, miss: 1 });
  });

  test('per route', () => {
    const github = s.routes.find((r) => r.route === 'github');
    assert.equal(github?.requests, 57);
    assert.equal(github?.hitRatio, 0.7);
    assert.equal(github?.savedSeconds.total, 3.8);
    const stripe = s.routes.find((r) => r.route === 'stripe');
    assert.equal(stripe?.hitRatio, 0);
    assert.deepEqual(stripe?.notStored, [
      { reason: 'no-store', count: 18 },
      { reason: 'private', count: 2 },
    ]);
  });

  test('keep-warm: warm start, idle connections, connections opened ahead and used', () => {
    assert.deepEqual(s.warm, {
      startSeconds: 0.25,
      lastReloadSeconds: null,
      warming: false,
      idleConnections: 2,
      openedAhead: 3,
      usedAhead: 1,
    });
    const github = s.origins.find((o) => o.origin === 'https://api.github.com');
    assert.equal(github?.idleConnections, 2);
    assert.equal(github?.openedAhead, 3);
    assert.equal(github?.usedAhead, 1);
    assert.equal(s.origins.find((o) => o.origin === 'https://api.stripe.com')?.idleConnections, null);
  });

  test('origins slowest first with reuse ratio and TLS handshake mean', () => {
    assert.deepEqual(
      s.origins.map((o) => o.origin),
      ['https://api.stripe.com', 'https://api.github.com'],
    );
    const stripe = s.origins[0];
    assert.equal(stripe?.meanUpstreamSeconds, 0.4);
    assert.equal(stripe?.reuseRatio, 0.25);
    assert.equal(stripe?.connectionsOpened, 15);
    assert.equal(stripe?.connectErrors, 1);
    assert.ok(Math.abs((stripe?.meanTlsSeconds ?? 0) - 0.02) < 1e-12);
    assert.equal(s.origins[1]?.meanTlsSeconds, null);
  });

  test('advice names the route, its hit ratio and what its responses say', () => {
    assert.deepEqual(s.advice, [
      'stripe: 0% hits, responses say no-store: if the data may be kept a while, set cache.ignoreNoStore with cache.ttlMs (stored per credential); else cache.enabled: false skips the lookup',
      'https://api.stripe.com: 1 failed connection attempt(s): check reachability and TLS',
      'https://api.stripe.com: only 25% of requests reuse a pooled connection: the origin may close idle connections early (compare upstream.keepAliveTimeoutMs)',
    ]);
  });

  test('the text report carries the same numbers', () => {
    const text = formatReport(s, 'http://127.0.0.1:9090');
    assert.match(text, /requests\s+79/);
    assert.match(text, /hit ratio\s+50\.0% of 70 cache lookups; 33 upstream requests avoided/);
    assert.match(text, /time saved\s+4\.30 s \(cache 3\.50 s, connection 750\.0 ms, dns 50\.0 ms\)/);
    assert.match(text, /github\s+57 req\s+hits\s+70\.0%/);
    assert.ok(text.indexOf('api.stripe.com') < text.indexOf('api.github.com'), 'slowest origin first');
    assert.match(text, /- stripe: 0% hits, responses say no-store/);
    assert.match(
      text,
      /keep-warm\s+warm start took 250\.0 ms; 2 idle connections now; 3 opened ahead of need, 1 used by requests/,
    );
    assert.match(text, /api\.github\.com .* 2 connections, 2 idle/);
  });
});

describe('advice rules', () => {
  const base = summarise(parsePromText(''), undefined);
  const route = (over: Partial<Summary['routes'][number]>): Summary['routes'][number] => ({
    route: 'r',
    requests: 20,
    lookups: 20,
    hits: 0,
    hitRatio: 0,
    avoided: 0,
    savedSeconds: { dns: 0, connection: 0, cache: 0, total: 0 },
    notStored: [],
    ...over,
  });

  test('no traffic', () => assert.deepEqual(base.advice, ['no traffic yet']));

  test('a route without a freshness lifetime is told about a TTL override', () => {
    const advice = advise({
      ...base,
      requests: 20,
      routes: [route({ notStored: [{ reason: 'no-freshness', count: 20 }] })],
    });
    assert.match(advice[0] ?? '', /^r: 0% hits, responses carry no freshness lifetime.*cache\.ttlMs/);
  });

  test('hit-for-miss misses count towards the most frequent real reason', () => {
    const notStored = [
      { reason: 'hit-for-miss', count: 15 },
      { reason: 'no-freshness', count: 5 },
    ];
    const advice = advise({ ...base, requests: 20, routes: [route({ notStored })] });
    assert.match(advice[0] ?? '', /no freshness lifetime/);
  });

  test('private responses suggest storePrivate; unknown reasons are named', () => {
    const a = advise({
      ...base,
      requests: 20,
      routes: [route({ notStored: [{ reason: 'private', count: 15 }] })],
    });
    assert.match(a[0] ?? '', /storePrivate/);
    const b = advise({
      ...base,
      requests: 20,
      routes: [route({ notStored: [{ reason: 'vary-star', count: 15 }] })],
    });
    assert.match(b[0] ?? '', /not stored \(vary-star\)/);
  });

  test('misses that were stored mean requests do not repeat in time', () => {
    const a = advise({ ...base, requests: 20, routes: [route({ hits: 1, hitRatio: 0.05 })] });
    assert.match(a[0] ?? '', /^r: 5% hits: requests rarely repeat/);
  });

  test('below the threshold the advice says there is not enough traffic, not "healthy"', () => {
    // Three requests, three misses: a 0 % hit ratio that says nothing yet.
    const three = route({ lookups: 3, requests: 3, notStored: [{ reason: 'no-freshness', count: 3 }] });
    const origin = {
      origin: 'http://127.0.0.1:1',
      requests: 3,
      reusedRequests: 0,
      reuseRatio: 0,
      connectionsOpened: 3,
      connectErrors: 0,
      meanUpstreamSeconds: 0.01,
      meanTlsSeconds: null,
      idleConnections: null,
      openedAhead: 0,
      usedAhead: 0,
    };
    const advice = advise({ ...base, requests: 3, lookups: 3, routes: [three], origins: [origin] });
    assert.equal(advice.length, 1);
    assert.match(advice[0] ?? '', /^not enough traffic yet to judge: 3 request\(s\), 3 cache lookup\(s\)/);
    assert.doesNotMatch(advice[0] ?? '', /healthy/);
  });

  test('too little traffic or a healthy hit ratio gives no route advice', () => {
    const few = route({ lookups: ADVICE_MIN_REQUESTS - 1, requests: ADVICE_MIN_REQUESTS - 1 });
    const healthy = route({ hits: 10, hitRatio: 0.5 });
    assert.deepEqual(advise({ ...base, requests: 30, routes: [few, healthy] }), [
      'nothing to suggest: hits and connection reuse look healthy',
    ]);
  });
});
