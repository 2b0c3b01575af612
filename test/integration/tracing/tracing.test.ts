/**
 * Traces end to end: sidecache exports OTLP/HTTP (JSON) to a receiver on loopback, for requests
 * made by real clients (Node's fetch, curl) to an HTTPS origin whose name only a test nameserver
 * knows, and for an intercepted HTTPS call.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parsePromText, samplesOf } from '../../../src/metrics/prom-text.js';
import { startDnsServer, type TestDnsServer } from '../../helpers/dns-server.js';
import { DnsZone } from '../../helpers/dns-zone.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { createTestCa } from '../../helpers/pki.js';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';
import { type OtlpReceiver, type OtlpSpan, startOtlpReceiver } from './otlp-receiver.js';

const run = promisify(execFile);
const HOST = 'api.trace-test.example';
const SECRET_BEARER = 'Bearer sk-TRACE-BEARER-0123456789';
const SECRET_COOKIE = 'session=COOKIE-SECRET-98765';
const SECRET_QUERY = 'QUERY-SECRET-4242';
const SECRET_BASIC = Buffer.from('alice:BASIC-PASS-777').toString('base64');
const ORIGIN_DELAY_MS = 40;

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const traceparent = (traceId: string, parentId: string): string => `00-${traceId}-${parentId}-01`;

function serverSpanOf(spans: OtlpSpan[], traceId: string): OtlpSpan | undefined {
  return spans.find((s) => s.traceId === traceId && s.kind === 2);
}

function childrenOf(spans: OtlpSpan[], parent: OtlpSpan): OtlpSpan[] {
  return spans.filter((s) => s.traceId === parent.traceId && s.parentSpanId === parent.spanId);
}

describe('tracing: every exchange as an OpenTelemetry span tree', () => {
  let receiver: OtlpReceiver;
  let nameserver: TestDnsServer;
  let origin: TestOrigin;
  let h2Origin: http2.Http2SecureServer;
  let sc: TestSidecache;
  let caDir: string;

  before(async () => {
    const ca = await createTestCa();
    const leaf = await ca.issue({ dns: [HOST, 'localhost'] });
    origin = await startOrigin(
      async (req, res) => {
        await new Promise((r) => setTimeout(r, ORIGIN_DELAY_MS));
        const cacheable = req.url?.startsWith('/cacheable') ?? false;
        res.writeHead(200, {
          'content-type': 'application/json',
          'cache-control': cacheable ? 'public, max-age=60' : 'no-store',
        });
        res.end(
          JSON.stringify({
            traceparent: req.headers.traceparent ?? null,
            tracestate: req.headers.tracestate ?? null,
          }),
        );
      },
      { tls: leaf },
    );
    // An h2-only TLS origin: the upstream span says which HTTP version went to the origin.
    h2Origin = http2.createSecureServer({ cert: leaf.cert, key: leaf.key, allowHTTP1: false });
    h2Origin.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'cache-control': 'no-store' });
      stream.end('h2');
    });
    h2Origin.listen(0, '127.0.0.1');
    await once(h2Origin, 'listening');
    const h2Port = (h2Origin.address() as AddressInfo).port;
    nameserver = await startDnsServer(
      new DnsZone({ [HOST]: { A: ['127.0.0.1'], ttl: 300 }, localhost: { A: ['127.0.0.1'], ttl: 300 } }),
    );
    receiver = await startOtlpReceiver();
    caDir = mkdtempSync(join(tmpdir(), 'sc-tracing-'));
    sc = await startTestSidecache({
      routes: [
        { name: 'api', origin: `https://${HOST}:${origin.port}` },
        { name: 'prop', origin: `https://${HOST}:${origin.port}`, tracing: { propagateUpstream: true } },
        { name: 'h2', origin: `https://${HOST}:${h2Port}`, upstream: { http2: true } },
      ],
      allow: ['127.0.0.1', 'localhost'],
      tunnel: { ports: [origin.port] },
      intercept: ['localhost'],
      tls: { caDir },
      dns: { servers: [nameserver.address], mode: 'udp' },
      // Cold pools: a miss opens its own connection (DNS, connect, TLS), nothing is pre-connected.
      upstream: { caFile: ca.writeCertFile(), warm: { connections: 0, minIdle: 0 } },
      tracing: { endpoint: receiver.url, serviceName: 'sidecache-test', queue: { delayMs: 50 } },
    });
  });
  after(async () => {
    await sc?.close();
    await receiver?.close();
    await nameserver?.stop();
    await origin?.close();
    if (h2Origin) await new Promise((r) => h2Origin.close(r));
    if (caDir) rmSync(caDir, { recursive: true, force: true });
  });

  it("continues the caller's trace: the server span has the caller's trace id and parent", async () => {
    const traceId = hex(16);
    const parentId = hex(8);
    const res = await fetch(`${sc.url}/api/users?q=1`, {
      headers: { traceparent: traceparent(traceId, parentId), tracestate: 'app=1' },
    });
    assert.equal(res.status, 200);
    const seen = (await res.json()) as { traceparent: string | null; tracestate: string | null };
    assert.equal(seen.traceparent, null, 'propagation is off by default: the origin gets no traceparent');
    assert.equal(seen.tracestate, null);
    const spans = await receiver.waitFor((all) => serverSpanOf(all, traceId) !== undefined);
    const server = serverSpanOf(spans, traceId) as OtlpSpan;
    assert.equal(server.parentSpanId, parentId);
    assert.equal(server.name, 'GET');
    assert.equal(server.service, 'sidecache-test');
    assert.equal(server.attributes['http.request.method'], 'GET');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.attributes['server.address'], HOST);
    assert.equal(server.attributes['sidecache.route'], 'api');
    assert.equal(server.attributes['url.full'], `https://${HOST}:${origin.port}/users?q=1`);
    // fetch (undici) speaks HTTP/1.1 to sidecache.
    assert.equal(server.attributes['network.protocol.version'], '1.1');
  });

  it("network.protocol.version: the client's HTTP version on the server span, the origin's on the upstream span", async () => {
    // An HTTP/1.0 client (curl --http1.0) to an HTTP/1.1 origin.
    const trace10 = hex(16);
    await run('curl', [
      '-sS',
      '--http1.0',
      '-H',
      `traceparent: ${traceparent(trace10, hex(8))}`,
      `${sc.url}/api/v10`,
    ]);
    // An HTTP/1.1 client to the h2-only origin (upstream.http2 on that route).
    const trace2 = hex(16);
    const res = await fetch(`${sc.url}/h2/x`, { headers: { traceparent: traceparent(trace2, hex(8)) } });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'h2');
    const spans = await receiver.waitFor(
      (all) => serverSpanOf(all, trace10) !== undefined && serverSpanOf(all, trace2) !== undefined,
    );
    const server10 = serverSpanOf(spans, trace10) as OtlpSpan;
    assert.equal(server10.attributes['network.protocol.version'], '1.0');
    const upstream11 = childrenOf(spans, server10).find((s) => s.kind === 3);
    assert.ok(upstream11, 'an upstream span under the HTTP/1.0 exchange');
    assert.equal(upstream11.attributes['network.protocol.version'], '1.1');
    const server2 = serverSpanOf(spans, trace2) as OtlpSpan;
    assert.equal(server2.attributes['network.protocol.version'], '1.1');
    const upstream2 = childrenOf(spans, server2).find((s) => s.kind === 3);
    assert.ok(upstream2, 'an upstream span under the exchange to the h2 origin');
    assert.equal(upstream2.attributes['network.protocol.version'], '2');
  });

  it('a miss has DNS, connect, TLS and upstream children, in order inside the exchange', async () => {
    const traceId = hex(16);
    const res = await fetch(`${sc.url}/api/cold`, {
      headers: { traceparent: traceparent(traceId, hex(8)), connection: 'close' },
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    // The first test's exchange may have left a pooled connection; this one must open its own.
    let spans = await receiver.waitFor((all) => serverSpanOf(all, traceId) !== undefined);
    let server = serverSpanOf(spans, traceId) as OtlpSpan;
    let upstream = childrenOf(spans, server).find((s) => s.kind === 3);
    assert.ok(upstream, 'an upstream (client) span under the server span');
    if (upstream.attributes['sidecache.connection.reused'] === true) {
      // Reused: then the first exchange above opened the connection; check that one's tree.
      const first = spans.find(
        (s) => s.kind === 2 && s.attributes['url.full']?.toString().endsWith('/users?q=1'),
      );
      assert.ok(first);
      server = first;
      upstream = childrenOf(spans, server).find((s) => s.kind === 3);
      assert.ok(upstream);
    }
    spans = receiver.spans;
    assert.equal(upstream.attributes['sidecache.connection.reused'], false);
    assert.equal(upstream.attributes['http.response.status_code'], 200);
    assert.equal(upstream.attributes['server.address'], HOST);
    assert.equal(server.attributes['sidecache.connection.reused'], false);
    const phases = childrenOf(spans, upstream);
    assert.deepEqual(
      phases.map((s) => s.name),
      ['dns lookup', 'connect', 'tls handshake'],
    );
    const ns = (s: string): bigint => BigInt(s);
    let cursor = ns(upstream.startTimeUnixNano);
    for (const p of phases) {
      assert.ok(ns(p.startTimeUnixNano) >= cursor, `${p.name} starts after the previous phase`);
      assert.ok(ns(p.endTimeUnixNano) >= ns(p.startTimeUnixNano));
      cursor = ns(p.endTimeUnixNano);
    }
    assert.ok(ns(upstream.endTimeUnixNano) >= cursor, 'the upstream span encloses its phases');
    assert.ok(ns(upstream.startTimeUnixNano) >= ns(server.startTimeUnixNano));
    assert.ok(ns(server.endTimeUnixNano) >= ns(upstream.endTimeUnixNano));
    assert.ok(
      ns(upstream.endTimeUnixNano) - ns(upstream.startTimeUnixNano) >=
        BigInt(ORIGIN_DELAY_MS - 5) * 1_000_000n,
      "the upstream span covers the origin's delay",
    );
    const cache = childrenOf(spans, server).find((s) => s.name.startsWith('cache'));
    assert.ok(cache, 'a cache span under the server span');
    assert.equal(cache.attributes['sidecache.cache.status'], 'miss');
  });

  it("a hit's span says hit and carries the saved time; another traceparent does not change the key", async () => {
    const path = `/api/cacheable/${hex(4)}`;
    const missTrace = hex(16);
    const first = await fetch(`${sc.url}${path}`, {
      headers: { traceparent: traceparent(missTrace, hex(8)) },
    });
    assert.equal(first.status, 200);
    await first.arrayBuffer();
    const recalls = async (): Promise<number> =>
      samplesOf(
        parsePromText(await (await fetch(`${sc.adminUrl}/metrics`)).text()),
        'sidecache_cache_hit_memo_recalls_total',
      ).reduce((n, x) => n + x.value, 0);
    const recalledBefore = await recalls();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const traceId = hex(16);
      ids.push(traceId);
      const res = await fetch(`${sc.url}${path}`, { headers: { traceparent: traceparent(traceId, hex(8)) } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('cache-status') ?? '', /hit/, 'a different traceparent still hits');
      await res.arrayBuffer();
    }
    // Hits with three different traceparents are answered from the hit memo too (cache/hit-memo.ts):
    // a traceparent neither keys nor disqualifies it.
    assert.ok((await recalls()) - recalledBefore >= 1, 'hits with other traceparents are recalled');
    const spans = await receiver.waitFor((all) =>
      [missTrace, ...ids].every((id) => serverSpanOf(all, id) !== undefined),
    );
    const miss = serverSpanOf(spans, missTrace) as OtlpSpan;
    assert.equal(miss.attributes['sidecache.cache.status'], 'miss');
    const missMs = Number(BigInt(miss.endTimeUnixNano) - BigInt(miss.startTimeUnixNano)) / 1e6;
    for (const id of ids) {
      const server = serverSpanOf(spans, id) as OtlpSpan;
      assert.equal(server.attributes['sidecache.cache.status'], 'hit');
      // The fetch time recorded with the entry minus the time to serve this hit (saved-time.ts).
      const saved = server.attributes['sidecache.saved_ms'] as number;
      assert.ok(saved > 0 && saved <= missMs, `saved_ms ${saved} is within the miss's ${missMs} ms`);
      assert.equal(server.attributes['sidecache.saved.cache_ms'], saved);
      assert.equal(
        childrenOf(spans, server).filter((s) => s.kind === 3).length,
        0,
        'no upstream span on a hit',
      );
    }
    assert.equal(
      origin.requests.filter((r) => r.url?.startsWith(path.slice('/api'.length))).length,
      1,
      'one origin request',
    );
  });

  it("with propagateUpstream, the origin gets sidecache's upstream span as parent, in the caller's trace", async () => {
    const traceId = hex(16);
    const res = await fetch(`${sc.url}/prop/x`, {
      headers: { traceparent: traceparent(traceId, hex(8)), tracestate: 'app=1' },
    });
    const seen = (await res.json()) as { traceparent: string | null; tracestate: string | null };
    assert.ok(seen.traceparent);
    const [, sentTrace, sentParent, flags] = seen.traceparent.split('-');
    assert.equal(sentTrace, traceId);
    assert.equal(flags, '01');
    assert.equal(seen.tracestate, 'app=1');
    const spans = await receiver.waitFor((all) => all.some((s) => s.spanId === sentParent));
    const upstream = spans.find((s) => s.spanId === sentParent) as OtlpSpan;
    assert.equal(upstream.kind, 3, "the origin's parent is sidecache's client span");
    const server = serverSpanOf(spans, traceId) as OtlpSpan;
    assert.equal(upstream.parentSpanId, server.spanId);
  });

  it('an intercepted HTTPS call (curl -x) is traced, with the caller as parent', async () => {
    const traceId = hex(16);
    const parentId = hex(8);
    const { stdout } = await run('curl', [
      '-sS',
      '-x',
      sc.url,
      '--cacert',
      join(caDir, 'ca.pem'),
      '--http2',
      '-H',
      `traceparent: ${traceparent(traceId, parentId)}`,
      `https://localhost:${origin.port}/intercepted`,
    ]);
    assert.equal((JSON.parse(stdout) as { traceparent: string | null }).traceparent, null);
    const spans = await receiver.waitFor((all) => serverSpanOf(all, traceId) !== undefined);
    const server = serverSpanOf(spans, traceId) as OtlpSpan;
    assert.equal(server.parentSpanId, parentId);
    assert.equal(server.attributes['sidecache.mode'], 'intercept');
    // Inside the tunnel curl and sidecache agree on h2 (ALPN): Node's `2.0` is written `2`.
    assert.equal(server.attributes['network.protocol.version'], '2');
  });

  it('no credential, cookie or sensitive query value appears anywhere in the exported data', async () => {
    const traceId = hex(16);
    for (const auth of [SECRET_BEARER, `Basic ${SECRET_BASIC}`]) {
      const res = await fetch(`${sc.url}/api/private?api_key=${SECRET_QUERY}&token=${SECRET_QUERY}&page=2`, {
        headers: { traceparent: traceparent(traceId, hex(8)), authorization: auth, cookie: SECRET_COOKIE },
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    const { stdout } = await run('curl', [
      '-sS',
      '--fail',
      '-u',
      'alice:BASIC-PASS-777',
      '-H',
      `traceparent: ${traceparent(traceId, hex(8))}`,
      `${sc.url}/api/private?password=${SECRET_QUERY}`,
    ]);
    assert.ok(stdout.length > 0);
    const spans = await receiver.waitFor(
      (all) => all.filter((s) => s.traceId === traceId && s.kind === 2).length >= 3,
    );
    const server = serverSpanOf(spans, traceId) as OtlpSpan;
    assert.match(String(server.attributes['url.full']), /api_key=<redacted>&token=<redacted>&page=2$/);
    const everything = receiver.bodies.join('\n');
    for (const secret of [
      SECRET_BEARER,
      'sk-TRACE-BEARER',
      'COOKIE-SECRET',
      SECRET_QUERY,
      SECRET_BASIC,
      'BASIC-PASS',
    ]) {
      assert.ok(!everything.includes(secret), `${secret} is not in the exported data`);
    }
  });

  it('counts exported spans in a metric', async () => {
    const families = parsePromText(await (await fetch(`${sc.adminUrl}/metrics`)).text());
    const exported = samplesOf(families, 'sidecache_tracing_spans_exported_total');
    assert.ok((exported[0]?.value ?? 0) > 0);
  });
});

describe('tracing: a dead or hanging collector changes nothing for clients', () => {
  for (const kind of ['dead', 'hanging'] as const) {
    it(`${kind} collector: every request answered as usual; spans counted as dropped`, async () => {
      const origin = await startOrigin((_req, res) => {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.end('ok');
      });
      // Dead: a port nothing listens on. Hanging: accepts and never answers.
      const held: import('node:net').Socket[] = [];
      const net = await import('node:net');
      const hang = net.createServer((s) => held.push(s));
      await new Promise<void>((resolve) => hang.listen(0, '127.0.0.1', resolve));
      const port = (hang.address() as import('node:net').AddressInfo).port;
      if (kind === 'dead') await new Promise<void>((resolve) => hang.close(() => resolve()));
      const sc = await startTestSidecache({
        routes: [{ name: 'api', origin: origin.url }],
        tracing: {
          endpoint: `http://127.0.0.1:${port}`,
          queue: { delayMs: 20, maxSpans: 8, batchSpans: 4, exportTimeoutMs: 500 },
        },
      });
      try {
        const started = Date.now();
        for (let i = 0; i < 40; i++) {
          const res = await fetch(`${sc.url}/api/${i}`, {
            headers: { traceparent: traceparent(hex(16), hex(8)) },
          });
          assert.equal(res.status, 200);
          assert.equal(await res.text(), 'ok');
        }
        assert.ok(Date.now() - started < 5_000, '40 requests are not held up by the collector');
        const deadline = Date.now() + 10_000;
        let dropped = 0;
        while (Date.now() < deadline) {
          const families = parsePromText(await (await fetch(`${sc.adminUrl}/metrics`)).text());
          dropped = samplesOf(families, 'sidecache_tracing_spans_dropped_total').reduce(
            (n, s) => n + s.value,
            0,
          );
          if (dropped > 0) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(dropped > 0, 'dropped spans are counted');
      } finally {
        await sc.close();
        for (const s of held) s.destroy();
        if (kind === 'hanging') await new Promise<void>((resolve) => hang.close(() => resolve()));
        await origin.close();
      }
    });
  }
});
