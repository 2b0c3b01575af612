import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { send } from '../helpers/client.js';
import { readBody, startOrigin, type TestOrigin } from '../helpers/origin.js';
import { createTestCa } from '../helpers/pki.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';

describe('reverse routes and forward proxy over plain and TLS origins', () => {
  let plain: TestOrigin;
  let secure: TestOrigin;
  let sc: TestSidecache;

  before(async () => {
    const ca = await createTestCa();
    const leaf = await ca.issue({ dns: ['localhost'], ips: ['127.0.0.1'] });
    const echo = async (
      req: import('node:http').IncomingMessage,
      res: import('node:http').ServerResponse,
    ) => {
      const body = await readBody(req);
      if (req.url?.startsWith('/status/')) {
        res.writeHead(Number(req.url.slice(8))).end();
        return;
      }
      if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('a'.repeat(1000));
        setTimeout(() => res.end('b'.repeat(1000)), 10);
        return;
      }
      if (req.url === '/hop') {
        res.writeHead(200, {
          connection: 'x-private, keep-alive',
          'x-private': 'secret',
          'keep-alive': 'timeout=5',
          'x-kept': 'yes',
        });
        res.end('hop');
        return;
      }
      const payload = JSON.stringify({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: body.toString(),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'x-origin': 'yes' }).end(payload);
    };
    plain = await startOrigin(echo);
    secure = await startOrigin(echo, { tls: leaf });
    sc = await startTestSidecache({
      routes: [
        { name: 'plain', origin: plain.url },
        { name: 'secure', origin: `${secure.url}/api/v1` },
        { name: 'byhost', origin: plain.url, prefix: false, hosts: ['users.internal'] },
      ],
      upstream: { caFile: ca.writeCertFile(), connectionsPerOrigin: 4 },
    });
  });
  after(async () => {
    await sc?.close();
    await plain?.close();
    await secure?.close();
  });

  it('strips the route prefix, rewrites Host and keeps the query', async () => {
    const res = await send(sc.url, '/plain/repos/x?page=2&per_page=100');
    assert.equal(res.status, 200);
    const seen = res.json() as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/repos/x?page=2&per_page=100');
    assert.equal(seen.headers.host, `127.0.0.1:${plain.port}`);
    assert.equal(res.headers['x-origin'], 'yes');
  });

  it('prepends the origin path of a TLS route, verifying the origin with the configured CA', async () => {
    const res = await send(sc.url, '/secure/charges?limit=3');
    assert.equal(res.status, 200);
    assert.equal((res.json() as { url: string }).url, '/api/v1/charges?limit=3');
  });

  it('routes by Host header without touching the path', async () => {
    const res = await send(sc.url, '/v2/users/7', { headers: { host: 'users.internal:8080' } });
    assert.equal(res.status, 200);
    assert.equal((res.json() as { url: string }).url, '/v2/users/7');
  });

  it('serves forward-proxy absolute-form requests to a route origin', async () => {
    const res = await send(sc.url, `${plain.url}/direct/path?q=1`);
    assert.equal(res.status, 200);
    assert.equal((res.json() as { url: string }).url, '/direct/path?q=1');
  });

  it("adds Via and its own X-Forwarded-* upstream (the client's are not trusted), and Via downstream", async () => {
    const res = await send(sc.url, '/plain/h', { headers: { 'x-forwarded-for': '10.1.2.3' } });
    const seen = res.json() as { headers: Record<string, string> };
    assert.match(seen.headers.via ?? '', /^1\.1 sidecache \(sc-[0-9a-f]{8}\)$/);
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.match(String(res.headers.via), /1\.1 sidecache/);
  });

  it('drops hop-by-hop headers both ways, including those named by Connection', async () => {
    const res = await send(sc.url, '/plain/h', {
      headers: {
        connection: 'x-secret-hop',
        'x-secret-hop': 'no',
        te: 'trailers',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        'x-end-to-end': 'yes',
      },
    });
    const seen = (res.json() as { headers: Record<string, string> }).headers;
    assert.equal(seen['x-secret-hop'], undefined);
    assert.equal(seen['proxy-authorization'], undefined);
    assert.equal(seen.te, undefined);
    assert.equal(seen['x-end-to-end'], 'yes');
    const hop = await send(sc.url, '/plain/hop');
    assert.equal(hop.headers['x-private'], undefined);
    assert.equal(hop.headers['x-kept'], 'yes');
    assert.equal(hop.text(), 'hop');
  });

  it('streams request bodies (content-length and chunked) to the origin', async () => {
    const fixed = await send(sc.url, '/plain/save', {
      method: 'POST',
      body: 'x'.repeat(5000),
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal((fixed.json() as { body: string }).body.length, 5000);
    const chunked = await send(sc.url, '/plain/save', {
      method: 'PUT',
      body: 'y'.repeat(300),
      headers: { 'transfer-encoding': 'chunked' },
    });
    const seen = chunked.json() as { method: string; body: string };
    assert.equal(seen.method, 'PUT');
    assert.equal(seen.body, 'y'.repeat(300));
  });

  it('passes chunked responses, HEAD, 204 and 304 without inventing bodies', async () => {
    const chunked = await send(sc.url, '/plain/chunked');
    assert.equal(chunked.body.length, 2000);
    const head = await send(sc.url, '/plain/anything', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-type'], 'application/json');
    for (const status of [204, 304]) {
      const res = await send(sc.url, `/plain/status/${status}`);
      assert.equal(res.status, status);
      assert.equal(res.body.length, 0);
    }
    const notFound = await send(sc.url, '/plain/status/404');
    assert.equal(notFound.status, 404);
  });

  it('reuses warm upstream connections: many requests, few origin connections', async () => {
    const before = plain.connections();
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    for (let i = 0; i < 30; i++) {
      const res = await send(sc.url, `/plain/reuse/${i}`, { agent });
      assert.equal(res.status, 200);
    }
    agent.destroy();
    // Sequential requests from a client need one warm connection (at most the pool size).
    assert.ok(
      plain.connections() - before <= 1,
      `origin saw ${plain.connections() - before} new connections`,
    );
    const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text();
    const reused = metrics.match(
      new RegExp(`sidecache_upstream_requests_total\\{origin="${plain.url}",connection="reused"\\} (\\d+)`),
    );
    assert.ok(reused && Number(reused[1]) >= 29, `reused counter: ${reused?.[1]}`);
  });

  it('forwards each route with its own measured TLS connect phases', async () => {
    const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text();
    assert.match(
      metrics,
      new RegExp(
        `sidecache_upstream_connect_duration_seconds_count\\{origin="${secure.url}",phase="tls"\\} [1-9]`,
      ),
    );
    assert.match(metrics, /sidecache_requests_total\{route="plain",method="GET",status_class="2xx"/);
  });
});
