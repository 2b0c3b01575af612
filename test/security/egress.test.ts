/**
 * SSRF: the egress policy judges the address connected to, not the name asked for. Names resolve
 * through a real nameserver on loopback; every refusal must happen before any connect (the
 * sentinel origin on 127.0.0.1 counts connections). Nothing is sent anywhere but 127.0.0.0/8.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { send } from '../helpers/client.js';
import { connectThrough } from '../helpers/connect.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { DnsZone } from '../helpers/dns-zone.js';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';

let dns: TestDnsServer;
let zone: DnsZone;
let origin: TestOrigin;

before(async () => {
  zone = new DnsZone({
    'loop.test': { A: ['127.0.0.1'] },
    'rebound.test': { A: ['127.0.0.1'] },
    'redirector.test': { A: ['127.0.0.1'] },
    'meta.test': { A: ['169.254.169.254'] },
    'cgnat.test': { A: ['100.64.0.1'] },
    'private.test': { A: ['10.1.2.3'] },
    'testnet.test': { A: ['192.0.2.10'] },
    'v6loop.test': { AAAA: ['::1'] },
    'v6link.test': { AAAA: ['fe80::1'] },
    'mapped.test': { AAAA: ['::ffff:127.0.0.1'] },
  });
  dns = await startDnsServer(zone);
  origin = await startOrigin((_req, res) => {
    res.end('origin');
  });
});
after(async () => {
  await origin.close();
  await dns.stop();
});

async function withSidecache(input: Partial<ConfigInput>, body: (sc: TestSidecache) => Promise<void>) {
  const sc = await startTestSidecache({
    dns: { mode: 'udp', servers: [dns.address], timeoutMs: 2_000 },
    egress: { ports: [80, 443, origin.port] },
    ...input,
  });
  try {
    await body(sc);
  } finally {
    await sc.close();
  }
}

function assertPrivate(res: Awaited<ReturnType<typeof send>>, address: string): void {
  assert.equal(res.status, 403, res.text());
  const body = res.json();
  assert.equal(body.error, 'SC_ERR_EGRESS_DENIED');
  assert.equal(body.reason, 'guard_private_address');
  assert.equal(body.address, address);
}

describe('egress policy on the resolved address', () => {
  it('a name in "allow" that resolves to loopback is refused (403) and nothing is connected', async () => {
    await withSidecache({ allow: ['loop.test'] }, async (sc) => {
      const before = origin.connections();
      const res = await send(sc.url, `http://loop.test:${origin.port}/x`);
      assertPrivate(res, '127.0.0.1');
      assert.equal(res.json().host, 'loop.test');
      assert.equal(origin.connections(), before);
    });
  });

  it('the same name is reached once its address block is in "allow"', async () => {
    await withSidecache({ allow: ['loop.test', '127.0.0.1/32'] }, async (sc) => {
      const res = await send(sc.url, `http://loop.test:${origin.port}/x`);
      assert.equal(res.status, 200);
      assert.equal(res.text(), 'origin');
    });
  });

  for (const [name, address] of [
    ['meta.test', '169.254.169.254'],
    ['cgnat.test', '100.64.0.1'],
    ['private.test', '10.1.2.3'],
    ['testnet.test', '192.0.2.10'],
    ['v6loop.test', '::1'],
    ['v6link.test', 'fe80::1'],
    ['mapped.test', '::ffff:127.0.0.1'],
  ] as const) {
    it(`--allow '*' admits names, not addresses: ${name} → ${address} is refused`, async () => {
      await withSidecache({ allow: ['*'] }, async (sc) => {
        const res = await send(sc.url, `http://${name}:${origin.port}/latest/meta-data/`);
        assertPrivate(res, address);
      });
    });
  }

  for (const [url, address] of [
    ['http://169.254.169.254/latest/meta-data/', '169.254.169.254'],
    ['http://0.0.0.0/', '0.0.0.0'],
    ['http://[::1]:PORT/', '::1'],
    ['http://[fe80::1]/', 'fe80::1'],
    ['http://[::ffff:127.0.0.1]:PORT/', '::ffff:7f00:1'],
    ['http://2130706433:PORT/', '127.0.0.1'],
    ['http://0x7f.1:PORT/', '127.0.0.1'],
    ['http://100.100.100.200/', '100.100.100.200'],
  ] as const) {
    it(`an IP literal is judged before dispatch (undici skips lookup for it): ${url}`, async () => {
      await withSidecache({ allow: ['*'] }, async (sc) => {
        const before = origin.connections();
        const res = await send(sc.url, url.replace('PORT', String(origin.port)));
        assertPrivate(res, address);
        assert.equal(origin.connections(), before);
      });
    });
  }

  it('an allowed IP literal (by CIDR) is admitted and reached', async () => {
    await withSidecache({ allow: ['127.0.0.0/8'] }, async (sc) => {
      const res = await send(sc.url, `http://127.0.0.1:${origin.port}/x`);
      assert.equal(res.status, 200);
    });
  });

  it('ports: an allowed host on a port outside egress.ports is refused (403 guard_port_not_allowed)', async () => {
    await withSidecache({ allow: ['*', '127.0.0.1/32'], egress: { ports: [80, 443] } }, async (sc) => {
      const res = await send(sc.url, `http://loop.test:${origin.port}/`);
      assert.equal(res.status, 403);
      assert.equal(res.json().reason, 'guard_port_not_allowed');
    });
  });

  it("a route origin's own port is allowed without egress.ports", async () => {
    await withSidecache(
      { routes: [{ name: 'api', origin: origin.url }], egress: { ports: [443] } },
      async (sc) => {
        const res = await send(sc.url, '/api/x');
        assert.equal(res.status, 200);
        const fwd = await send(sc.url, `${origin.url}/x`);
        assert.equal(fwd.status, 200);
      },
    );
  });

  it('a route origin given by name is operator intent: reached at the private address its name resolves to', async () => {
    const route = { name: 'named', origin: `http://loop.test:${origin.port}` };
    await withSidecache({ routes: [route] }, async (sc) => {
      const res = await send(sc.url, '/named/x');
      assert.equal(res.status, 200, res.text());
      assert.equal(res.text(), 'origin');
      // A forward-proxy request (HTTP_PROXY) to that very origin is the route too.
      const fwd = await send(sc.url, `http://loop.test:${origin.port}/x`);
      assert.equal(fwd.status, 200, fwd.text());
    });
  });

  it("the route-origin rule covers the origin's own host and port only, never an allow pattern", async () => {
    const route = { name: 'named', origin: `http://loop.test:${origin.port}` };
    const other = await startOrigin((_req, res) => {
      res.end('other port');
    });
    try {
      await withSidecache(
        { routes: [route], allow: ['*.test'], egress: { ports: [origin.port, other.port] } },
        async (sc) => {
          // Another name the allow pattern admits, resolving to the same loopback address.
          assertPrivate(await send(sc.url, `http://private.test:${origin.port}/x`), '10.1.2.3');
          const before = origin.connections();
          const res = await send(sc.url, `http://rebound.test:${origin.port}/x`);
          assertPrivate(res, '127.0.0.1');
          assert.equal(origin.connections(), before);
          // The route's own name on another port is not the route's origin.
          assertPrivate(await send(sc.url, `http://loop.test:${other.port}/x`), '127.0.0.1');
          assert.equal(other.connections(), 0);
          // Nor is the name spelt with a trailing dot (an absolute name, resolved differently).
          assertPrivate(await send(sc.url, `http://loop.test.:${origin.port}/x`), '127.0.0.1');
        },
      );
    } finally {
      await other.close();
    }
  });

  it("CONNECT to a route origin's own host and port reaches it; another port of that name does not", async () => {
    const route = { name: 'named', origin: `http://loop.test:${origin.port}` };
    await withSidecache(
      { routes: [route], allow: ['loop.test'], tunnel: { ports: [443, origin.port + 1] } },
      async (sc) => {
        const res = await connectThrough(sc.url, `loop.test:${origin.port}`);
        assert.equal(res.status, 200);
        if ('socket' in res) res.socket.destroy();
        const refused = await connectThrough(sc.url, `loop.test:${origin.port + 1}`);
        assert.equal(refused.status, 403);
        assert.equal(JSON.parse(refused.body).reason, 'guard_private_address');
      },
    );
  });

  it('a redirect from a route origin to a private name is not followed, and following it is refused', async () => {
    const redirecting = await startOrigin((_req, res) => {
      res.statusCode = 302;
      res.setHeader('location', `http://loop.test:${origin.port}/internal`);
      res.end();
    });
    try {
      const route = { name: 'pub', origin: `http://redirector.test:${redirecting.port}` };
      await withSidecache({ routes: [route], allow: ['*'], egress: { ports: [origin.port] } }, async (sc) => {
        const before = origin.connections();
        const res = await send(sc.url, '/pub/x');
        assert.equal(res.status, 302);
        const location = res.headers.location as string;
        assertPrivate(await send(sc.url, location), '127.0.0.1');
        assert.equal(origin.connections(), before);
      });
    } finally {
      await redirecting.close();
    }
  });

  it('CONNECT to a name resolving to a private address is refused before the tunnel opens', async () => {
    await withSidecache({ allow: ['loop.test'], tunnel: { ports: [origin.port] } }, async (sc) => {
      const before = origin.connections();
      const res = await connectThrough(sc.url, `loop.test:${origin.port}`);
      assert.ok(res.status !== 200, 'tunnel must not open');
      assert.equal(res.status, 403);
      assert.equal(JSON.parse(res.body).reason, 'guard_private_address');
      assert.equal(origin.connections(), before);
    });
  });

  it('CONNECT to the metadata address literal is refused', async () => {
    await withSidecache({ allow: ['*'] }, async (sc) => {
      const res = await connectThrough(sc.url, '169.254.169.254:443');
      assert.ok(res.status !== 200, 'tunnel must not open');
      assert.equal(res.status, 403);
      assert.equal(JSON.parse(res.body).reason, 'guard_private_address');
    });
  });

  it('DNS rebinding: the address checked is the address connected to', async () => {
    // The name first answers an allowed address (127.0.0.2, allow-listed), then rebinds to
    // 127.0.0.1 (not allowed). The origin closes every connection, so the second request needs a
    // new connect, hence a new lookup: it must be refused, and the sentinel on 127.0.0.1 never hit.
    const sentinel = await startOrigin((_req, res) => {
      res.end('sentinel');
    });
    const allowed = await startOrigin(
      (_req, res) => {
        res.setHeader('connection', 'close');
        res.end('allowed');
      },
      { host: '127.0.0.2' },
    );
    zone.set('rebind.test', { A: ['127.0.0.2'], ttl: 0 });
    try {
      await withSidecache(
        {
          allow: ['rebind.test', '127.0.0.2/32'],
          egress: { ports: [allowed.port, sentinel.port] },
          dns: { mode: 'udp', servers: [dns.address], minTtlMs: 0, maxTtlMs: 1, staleTtlMs: 0 },
        },
        async (sc) => {
          const first = await send(sc.url, `http://rebind.test:${allowed.port}/`);
          assert.equal(first.text(), 'allowed');
          zone.set('rebind.test', { A: ['127.0.0.1'], ttl: 0 });
          await new Promise((r) => setTimeout(r, 20));
          const second = await send(sc.url, `http://rebind.test:${sentinel.port}/`);
          assertPrivate(second, '127.0.0.1');
          assert.equal(sentinel.connections(), 0);
        },
      );
    } finally {
      await sentinel.close();
      await allowed.close();
    }
  });
});
