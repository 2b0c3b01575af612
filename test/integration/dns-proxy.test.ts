/**
 * Upstream names resolve only through the configured nameserver, cached: through the real proxy,
 * started the way users start it (`sidecache serve --dns HOST:PORT`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { send } from '../helpers/client.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { DnsZone } from '../helpers/dns-zone.js';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { freePort } from '../helpers/ports.js';
import { type SidecacheProcess, spawnSidecache, startTestSidecache } from '../helpers/sidecache.js';

describe('sidecache resolves upstream names through --dns', () => {
  let origin: TestOrigin;
  let nameserver: TestDnsServer;
  let sc: SidecacheProcess;
  const zone = new DnsZone({
    'api.sidecache-test.example': { A: ['127.0.0.1'], ttl: 300 },
    'gone.sidecache-test.example': { behaviour: 'nxdomain' },
    // The first address refuses connections (nothing listens on 127.0.0.2), the second works.
    'two.sidecache-test.example': { A: ['127.0.0.2', '127.0.0.1'], ttl: 300 },
  });

  before(async () => {
    origin = await startOrigin((req, res) => {
      res.end(JSON.stringify({ host: req.headers.host, url: req.url }));
    });
    nameserver = await startDnsServer(zone);
    sc = await spawnSidecache([
      '--dns',
      nameserver.address,
      '--route',
      `api=http://api.sidecache-test.example:${origin.port}`,
      '--route',
      `gone=http://gone.sidecache-test.example:${origin.port}`,
      '--route',
      `two=http://two.sidecache-test.example:${origin.port}`,
      // The names resolve to loopback: a private address needs an explicit allow (egress policy).
      '--allow',
      '127.0.0.0/8',
    ]);
  });
  after(async () => {
    await sc?.stop();
    await nameserver?.stop();
    await origin?.close();
  });

  it('reaches a name only the configured nameserver knows, and asks it once', async () => {
    for (let i = 0; i < 5; i++) {
      // A fresh client connection and `connection: close` upstream-side are irrelevant: the
      // lookup result is cached, whatever the pool does.
      const res = await send(sc.url, `/api/n/${i}`);
      assert.equal(res.status, 200, res.text());
      assert.equal(res.json().host, `api.sidecache-test.example:${origin.port}`);
    }
    assert.equal(zone.count('api.sidecache-test.example', 'A'), 1);
  });

  it('falls back to the next address when connecting to the first one fails', async () => {
    const res = await send(sc.url, '/two/fallback');
    assert.equal(res.status, 200, res.text());
    assert.equal(res.json().url, '/fallback');
  });

  it('a name that does not exist gives 502 naming the DNS error code', async () => {
    const res = await send(sc.url, '/gone/x');
    assert.equal(res.status, 502);
    const body = res.json();
    assert.equal(body.error, 'SC_ERR_DNS');
    assert.equal(body.dnsCode, 'ENOTFOUND');
    assert.equal(body.host, 'gone.sidecache-test.example');
    assert.equal(origin.requests.filter((r) => r.url === '/x').length, 0);
  });
});

describe('a nameserver that is down', () => {
  it('gives 502 SC_ERR_DNS naming the lookup failure, not SC_ERR_UPSTREAM_CONNECT', async () => {
    // Nothing listens on this loopback port: each query gets ICMP port unreachable (ECONNREFUSED).
    const closed = await freePort();
    const sc = await startTestSidecache({
      dns: { mode: 'udp', servers: [`127.0.0.1:${closed}`], timeoutMs: 2_000, tries: 1 },
      routes: [{ name: 'api', origin: 'http://api.sidecache-test.example:8000' }],
      allow: ['127.0.0.0/8'],
    });
    try {
      const res = await send(sc.url, '/api/x');
      assert.equal(res.status, 502, res.text());
      const body = res.json();
      assert.equal(body.error, 'SC_ERR_DNS', res.text());
      assert.equal(body.reason, 'dns_error');
      assert.equal(body.host, 'api.sidecache-test.example');
      assert.equal(body.dnsCode, 'ECONNREFUSED');
      assert.match(String(body.message), /DNS lookup of api\.sidecache-test\.example failed/);
    } finally {
      await sc.close();
    }
  });
});
