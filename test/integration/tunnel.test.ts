/**
 * CONNECT tunnels to allowed hosts that are not intercepted: byte for byte (the client sees the
 * origin's own certificate), refused hosts and ports, connect failures before the tunnel opens,
 * half-close, idle timeout.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo, type LookupFunction } from 'node:net';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { ProxyAgent, request } from 'undici';
import { connectThrough } from '../helpers/connect.js';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { createTestCa, type Pem } from '../helpers/pki.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';

/** `*.invalid` does not resolve; `*.test` resolves to 127.0.0.1; nothing leaves the machine. */
const lookup: LookupFunction = (hostname, options, callback) => {
  const cb = callback as (
    err: NodeJS.ErrnoException | null,
    address: string | object[],
    family?: number,
  ) => void;
  if (hostname.endsWith('.invalid')) {
    const err: NodeJS.ErrnoException = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
      code: 'ENOTFOUND',
      syscall: 'getaddrinfo',
    });
    process.nextTick(() => cb(err, ''));
    return;
  }
  const all = (options as { all?: boolean }).all === true;
  process.nextTick(() => (all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4)));
};

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('CONNECT tunnels (not intercepted)', () => {
  let leaf: Pem;
  let caPem: string;
  let origin: TestOrigin;
  let halfClose: net.Server;
  let halfPort: number;
  let deadPort: number;
  let sc: TestSidecache;

  before(async () => {
    const ca = await createTestCa();
    caPem = ca.cert;
    leaf = await ca.issue({ dns: ['localhost', 'origin.test'], ips: ['127.0.0.1'] });
    origin = await startOrigin(
      (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ path: req.url, via: req.headers.via ?? null }));
      },
      { tls: leaf },
    );
    // Reads until the client half-closes, then answers and closes its side.
    halfClose = net.createServer({ allowHalfOpen: true }, (socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => socket.end(`got:${Buffer.concat(chunks).toString()}`));
    });
    halfClose.listen(0, '127.0.0.1');
    await once(halfClose, 'listening');
    halfPort = (halfClose.address() as AddressInfo).port;
    deadPort = await freePort();
    sc = await startTestSidecache(
      {
        allow: ['127.0.0.1', 'origin.test', 'nxdomain.invalid', 'dead.test'],
        tunnel: { ports: [443, origin.port, halfPort, deadPort] },
      },
      { lookup },
    );
  });
  after(async () => {
    await sc?.close();
    await origin?.close();
    await new Promise<void>((resolve) => (halfClose ? halfClose.close(() => resolve()) : resolve()));
  });

  it('tunnels byte for byte: the client sees the origin certificate and gets its answer', async () => {
    const tunnel = await connectThrough(sc.url, `127.0.0.1:${origin.port}`);
    assert.equal(tunnel.status, 200);
    assert.ok('socket' in tunnel);
    const secure = tls.connect({ socket: tunnel.socket, servername: 'localhost', ca: caPem });
    await once(secure, 'secureConnect');
    const seen = secure.getPeerX509Certificate();
    assert.equal(seen?.fingerprint256, new X509Certificate(leaf.cert).fingerprint256);
    secure.end('GET /raw HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
    const chunks: Buffer[] = [];
    for await (const c of secure) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    assert.match(text, /^HTTP\/1\.1 200/);
    // Not decrypted: sidecache added no Via.
    assert.match(text, /"via":null/);
  });

  it('resolves the CONNECT name through the injected lookup; a real client (undici ProxyAgent) works', async () => {
    const agent = new ProxyAgent({ uri: sc.url, requestTls: { ca: caPem } });
    try {
      const res = await request(`https://origin.test:${origin.port}/through?q=1`, { dispatcher: agent });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(await res.body.json(), { path: '/through?q=1', via: null });
    } finally {
      await agent.close();
    }
  });

  it('passes a half-close on: the client ends its side and still reads the answer', async () => {
    const tunnel = await connectThrough(sc.url, `127.0.0.1:${halfPort}`);
    assert.ok('socket' in tunnel);
    tunnel.socket.end('ping');
    const chunks: Buffer[] = [];
    for await (const c of tunnel.socket) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'got:ping');
  });

  it('refuses a host that is neither a route origin nor allowed: 403 with a JSON reason', async () => {
    const res = await connectThrough(sc.url, 'denied.test:443');
    assert.equal(res.status, 403);
    assert.ok('body' in res);
    const body = JSON.parse(res.body) as Record<string, string>;
    assert.equal(body.error, 'SC_ERR_EGRESS_DENIED');
    assert.equal(body.reason, 'guard_host_not_allowed');
    assert.ok(body.exchange);
  });

  it('refuses a port that is not allowed for the host', async () => {
    const res = await connectThrough(sc.url, '127.0.0.1:22');
    assert.equal(res.status, 403);
    assert.ok('body' in res);
    const body = JSON.parse(res.body) as Record<string, string>;
    assert.equal(body.error, 'SC_ERR_EGRESS_DENIED');
    assert.match(body.message as string, /port 22 is not allowed/);
  });

  it('answers 400 to a CONNECT target that is not HOST:PORT', async () => {
    const res = await connectThrough(sc.url, '127.0.0.1');
    assert.equal(res.status, 400);
    assert.ok('body' in res);
    assert.equal((JSON.parse(res.body) as Record<string, string>).error, 'SC_ERR_BAD_REQUEST');
  });

  it('a refused connect gives 502 before the tunnel opens', async () => {
    const res = await connectThrough(sc.url, `dead.test:${deadPort}`);
    assert.equal(res.status, 502);
    assert.ok('body' in res);
    const body = JSON.parse(res.body) as Record<string, string>;
    assert.equal(body.error, 'SC_ERR_UPSTREAM_CONNECT');
    assert.equal(body.cause, 'ECONNREFUSED');
  });

  it('a name that does not resolve gives 502 naming the DNS code', async () => {
    const res = await connectThrough(sc.url, 'nxdomain.invalid:443');
    assert.equal(res.status, 502);
    assert.ok('body' in res);
    const body = JSON.parse(res.body) as Record<string, string>;
    assert.equal(body.error, 'SC_ERR_DNS');
    assert.equal(body.dnsCode, 'ENOTFOUND');
  });

  it('counts tunnels and their bytes in /metrics', async () => {
    const text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
    assert.match(text, /sidecache_tunnels_total\{kind="tunnel",ending="closed"\} [1-9]/);
    assert.match(text, /sidecache_tunnel_bytes_total\{kind="tunnel",direction="down"\} [1-9]/);
    assert.match(text, /sidecache_tunnel_bytes_total\{kind="tunnel",direction="up"\} [1-9]/);
  });
});

describe('CONNECT tunnel idle timeout', () => {
  let sc: TestSidecache;
  let silent: net.Server;
  let port: number;

  before(async () => {
    silent = net.createServer((socket) => socket.on('error', () => {}).resume());
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    port = (silent.address() as AddressInfo).port;
    sc = await startTestSidecache({ allow: ['127.0.0.1'], tunnel: { ports: [port], idleTimeoutMs: 200 } });
  });
  after(async () => {
    await sc?.close();
    await new Promise<void>((resolve) => (silent ? silent.close(() => resolve()) : resolve()));
  });

  it('closes a tunnel with no bytes either way for tunnel.idleTimeoutMs, and says so in /metrics', async () => {
    const tunnel = await connectThrough(sc.url, `127.0.0.1:${port}`);
    assert.ok('socket' in tunnel);
    const started = Date.now();
    tunnel.socket.resume();
    tunnel.socket.write('x');
    await once(tunnel.socket, 'close');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 150 && elapsed < 5_000, `closed after ${elapsed} ms`);
    let text = '';
    for (let i = 0; i < 20 && !text.includes('ending="idle_timeout"'); i++) {
      text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.match(text, /sidecache_tunnels_total\{kind="tunnel",ending="idle_timeout"\} 1/);
  });
});
