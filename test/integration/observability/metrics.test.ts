/**
 * Known traffic through real origins (a TLS origin that takes 50 ms, a refused port, a 500), then
 * the counters, histograms and saved seconds on /metrics, and Server-Timing on the responses.
 */
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { type MetricFamily, parsePromText, sumOf } from '../../../src/metrics/prom-text.js';
import { send } from '../../helpers/client.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { createTestCa } from '../../helpers/pki.js';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';

const DELAY_MS = 50;
const N = 6;

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Parses `name;dur=1.2;desc="x", ...` into name → { dur, desc }. */
function parseServerTiming(
  header: string | string[] | undefined,
): Map<string, { dur?: number; desc?: string }> {
  const out = new Map<string, { dur?: number; desc?: string }>();
  for (const part of String(header ?? '').split(',')) {
    const [name, ...params] = part.trim().split(';');
    if (!name) continue;
    const entry: { dur?: number; desc?: string } = {};
    for (const p of params) {
      const [k, v = ''] = p.split('=');
      if (k === 'dur') entry.dur = Number(v);
      if (k === 'desc') entry.desc = v.replace(/^"|"$/g, '');
    }
    out.set(name, entry);
  }
  return out;
}

describe('metrics and Server-Timing from real traffic', () => {
  let slow: TestOrigin;
  let failing: TestOrigin;
  let sc: TestSidecache;
  let families: Map<string, MetricFamily>;
  const timings: { header: string | string[] | undefined; clientMs: number }[] = [];
  let deadTiming: string | string[] | undefined;
  let quietTiming: string | string[] | undefined;
  let slowOrigin: string;

  before(async () => {
    const ca = await createTestCa();
    const leaf = await ca.issue({ ips: ['127.0.0.1'] });
    slow = await startOrigin(
      async (_req, res) => {
        await new Promise((r) => setTimeout(r, DELAY_MS));
        res.writeHead(200, { 'content-type': 'text/plain' }).end('slow but sure');
      },
      { tls: leaf },
    );
    failing = await startOrigin((_req, res) => {
      res.writeHead(500).end('boom');
    });
    slowOrigin = slow.url;
    sc = await startTestSidecache({
      routes: [
        { name: 'slow', origin: slow.url },
        { name: 'dead', origin: `http://127.0.0.1:${await closedPort()}` },
        { name: 'failing', origin: failing.url },
        { name: 'quiet', origin: failing.url, prefix: '/quiet/', observability: { serverTiming: false } },
      ],
      // Cold pools (no keep-warm): the first request opens the connection the tests count.
      upstream: { caFile: ca.writeCertFile(), connectionsPerOrigin: 1, warm: { connections: 0, minIdle: 0 } },
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < N; i++) {
        const t0 = performance.now();
        const res = await send(sc.url, `/slow/item/${i}`, { agent });
        assert.equal(res.status, 200);
        timings.push({ header: res.headers['server-timing'], clientMs: performance.now() - t0 });
      }
      const dead = await send(sc.url, '/dead/x', { agent });
      assert.equal(dead.status, 502);
      deadTiming = dead.headers['server-timing'];
      assert.equal((await send(sc.url, '/failing/x', { agent })).status, 500);
      const quiet = await send(sc.url, '/quiet/x', { agent });
      quietTiming = quiet.headers['server-timing'];
    } finally {
      agent.destroy();
    }
    families = parsePromText(await (await fetch(`${sc.adminUrl}/metrics`)).text());
  });

  after(async () => {
    await sc?.close();
    await slow?.close();
    await failing?.close();
  });

  test('requests by route, status class and reason', () => {
    assert.equal(sumOf(families, 'sidecache_requests_total', { route: 'slow', status_class: '2xx' }), N);
    assert.equal(sumOf(families, 'sidecache_requests_total', { route: 'dead', status_class: '5xx' }), 1);
    assert.equal(
      sumOf(families, 'sidecache_requests_total', { route: 'dead', reason: 'upstream_connect_failed' }),
      1,
    );
    assert.equal(sumOf(families, 'sidecache_requests_total', { route: 'failing', status_class: '5xx' }), 1);
    assert.equal(sumOf(families, 'sidecache_request_duration_seconds_count', { route: 'slow' }), N);
  });

  test('upstream duration histogram: every request took at least the origin delay', () => {
    const count = sumOf(families, 'sidecache_upstream_duration_seconds_count', { origin: slowOrigin });
    const sum = sumOf(families, 'sidecache_upstream_duration_seconds_sum', { origin: slowOrigin });
    assert.equal(count, N);
    assert.ok(sum >= (N * DELAY_MS) / 1000, `sum ${sum} ≥ ${(N * DELAY_MS) / 1000}`);
    assert.ok(sum < N * 2, `sum ${sum} is sane`);
    const under = sumOf(families, 'sidecache_upstream_duration_seconds_bucket', {
      origin: slowOrigin,
      le: '0.05',
    });
    assert.equal(under, 0, 'no request under the 50 ms origin delay');
  });

  test('one connection opened, the rest reused; one TLS handshake measured', () => {
    assert.equal(sumOf(families, 'sidecache_upstream_connections_opened_total', { origin: slowOrigin }), 1);
    assert.equal(
      sumOf(families, 'sidecache_upstream_requests_total', { origin: slowOrigin, connection: 'new' }),
      1,
    );
    assert.equal(
      sumOf(families, 'sidecache_upstream_requests_total', { origin: slowOrigin, connection: 'reused' }),
      N - 1,
    );
    const tls = { origin: slowOrigin, phase: 'tls' };
    assert.equal(sumOf(families, 'sidecache_upstream_connect_duration_seconds_count', tls), 1);
    assert.ok(sumOf(families, 'sidecache_upstream_connect_duration_seconds_sum', tls) > 0);
  });

  test('connection saved seconds: > 0 after reuse, and = reuses × the measured connect + TLS time', () => {
    const saved = sumOf(families, 'sidecache_saved_seconds_total', { kind: 'connection', route: 'slow' });
    const measured =
      sumOf(families, 'sidecache_upstream_connect_duration_seconds_sum', {
        origin: slowOrigin,
        phase: 'tcp',
      }) +
      sumOf(families, 'sidecache_upstream_connect_duration_seconds_sum', {
        origin: slowOrigin,
        phase: 'tls',
      });
    assert.ok(saved > 0, 'reused connections saved time');
    // One connection measured, so its moving average is exactly its connect + TLS time.
    assert.ok(Math.abs(saved - (N - 1) * measured) < 1e-6, `saved ${saved} = ${N - 1} × ${measured}`);
    assert.equal(sumOf(families, 'sidecache_saved_seconds_total', { kind: 'cache' }), 0);
    assert.equal(sumOf(families, 'sidecache_saved_seconds_total', { kind: 'dns' }), 0);
    assert.equal(sumOf(families, 'sidecache_upstream_requests_avoided_total'), 0);
  });

  test('a refused connection is counted as a connect error', () => {
    const errors = [...(families.get('sidecache_upstream_connect_errors_total')?.samples ?? [])];
    assert.ok(
      errors.some((s) => s.labels['code'] === 'ECONNREFUSED' && s.value >= 1),
      JSON.stringify(errors),
    );
  });

  test('Server-Timing on a new TLS connection: connect, tls, upstream ≥ origin delay; slices ≤ total', () => {
    const first = timings[0];
    assert.ok(first);
    const st = parseServerTiming(first.header);
    assert.equal(st.get('connect')?.desc, 'new');
    assert.ok((st.get('connect')?.dur ?? -1) >= 0);
    assert.ok((st.get('tls')?.dur ?? 0) > 0, 'TLS handshake timed');
    assert.ok((st.get('upstream')?.dur ?? 0) >= DELAY_MS, `upstream ${st.get('upstream')?.dur}`);
    const total = st.get('total')?.dur ?? 0;
    const slices = ['dns', 'connect', 'tls', 'upstream', 'cache'].reduce(
      (a, n) => a + (st.get(n)?.dur ?? 0),
      0,
    );
    assert.ok(slices <= total + 0.01, `slices ${slices} ≤ total ${total}`);
    assert.ok(total <= first.clientMs + 1, `total ${total} ≤ client-measured ${first.clientMs}`);
  });

  test('Server-Timing on a reused connection: connect;dur=0;desc="reused", no tls', () => {
    for (const { header, clientMs } of timings.slice(1)) {
      const st = parseServerTiming(header);
      assert.deepEqual(st.get('connect'), { dur: 0, desc: 'reused' });
      assert.equal(st.has('tls'), false);
      assert.ok((st.get('upstream')?.dur ?? 0) >= DELAY_MS);
      assert.ok((st.get('total')?.dur ?? Infinity) <= clientMs + 1);
    }
  });

  test('Server-Timing is on error replies too, and off where the route says so', () => {
    assert.ok(parseServerTiming(deadTiming).has('total'), String(deadTiming));
    assert.equal(quietTiming, undefined);
  });
});
