import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { send } from '../helpers/client.js';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { createTestCa } from '../helpers/pki.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';

/** A port on which nothing listens (bound then released). */
async function deadPort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A raw TCP origin whose behaviour per connection the test writes. */
async function rawOrigin(
  onSocket: (socket: net.Socket, index: number) => void,
): Promise<{ url: string; close(): Promise<void> }> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onSocket(socket, n++);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('errors become precise replies and never crash the process', () => {
  let sc: TestSidecache;
  let slow: TestOrigin;
  let untrusted: TestOrigin;
  let reset: Awaited<ReturnType<typeof rawOrigin>>;
  let midBody: Awaited<ReturnType<typeof rawOrigin>>;
  let refusedPort: number;
  const upstreamClosed: string[] = [];

  before(async () => {
    refusedPort = await deadPort();
    slow = await startOrigin(async (req, res) => {
      req.on('close', () => {
        if (!res.writableFinished) upstreamClosed.push(req.url ?? '');
      });
      if (req.url === '/stall') return; // never answers
      if (req.url === '/drip') {
        // A body that keeps coming (so no body timeout fires) until the request is closed.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        for (let i = 0; i < 200 && !res.destroyed; i++) {
          res.write(Buffer.alloc(512, 100));
          await sleep(50);
        }
        res.end();
        return;
      }
      if (req.url === '/slow-body') {
        res.writeHead(200, { 'content-length': '10' });
        res.write('12345');
        return; // never finishes
      }
      await sleep(Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0));
      res.end('late');
    });
    const otherCa = await createTestCa('some other CA');
    untrusted = await startOrigin(
      (_req, res) => {
        res.end('should not be reached');
      },
      {
        tls: await otherCa.issue({ ips: ['127.0.0.1'] }),
      },
    );
    reset = await rawOrigin((socket) => {
      socket.once('data', () => socket.resetAndDestroy());
    });
    midBody = await rawOrigin((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n');
        socket.write(Buffer.alloc(1000, 97));
        setTimeout(() => socket.destroy(), 20);
      });
    });
    sc = await startTestSidecache({
      routes: [
        { name: 'refused', origin: `http://127.0.0.1:${refusedPort}` },
        { name: 'slow', origin: slow.url, upstream: { headersTimeoutMs: 300, bodyTimeoutMs: 300 } },
        { name: 'untrusted', origin: untrusted.url },
        { name: 'reset', origin: reset.url },
        { name: 'midbody', origin: midBody.url },
      ],
    });
  });
  after(async () => {
    await sc?.close();
    await Promise.all([slow?.close(), untrusted?.close(), reset?.close(), midBody?.close()]);
  });

  const expectError = async (
    target: string,
    status: number,
    code: string,
    init: Parameters<typeof send>[2] = {},
  ) => {
    const res = await send(sc.url, target, init);
    assert.equal(res.status, status, res.text());
    const body = res.json();
    assert.equal(body.error, code);
    assert.equal(typeof body.exchange, 'string');
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    return body;
  };

  it('connection refused gives 502 naming the upstream and the cause', async () => {
    const body = await expectError('/refused/x', 502, 'SC_ERR_UPSTREAM_CONNECT');
    assert.equal(body.upstream, `http://127.0.0.1:${refusedPort}`);
    assert.equal(body.cause, 'ECONNREFUSED');
    assert.equal(body.reason, 'upstream_connect_failed');
  });

  it('connection reset before a response gives 502', async () => {
    const body = await expectError('/reset/x', 502, 'SC_ERR_UPSTREAM_RESET');
    assert.equal(body.reason, 'upstream_reset');
  });

  it('an origin that sends no headers in time gives 504', async () => {
    const body = await expectError('/slow/stall', 504, 'SC_ERR_UPSTREAM_HEADERS_TIMEOUT');
    assert.equal(body.reason, 'upstream_headers_timeout');
  });

  it('an untrusted origin certificate gives 502 naming the TLS error', async () => {
    const body = await expectError('/untrusted/x', 502, 'SC_ERR_UPSTREAM_TLS');
    assert.match(String(body.cause), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
  });

  it('an unknown route gives 403, and so does a host outside the allow list', async () => {
    await expectError('/nowhere/x', 403, 'SC_ERR_NO_ROUTE');
    const body = await expectError('http://127.0.0.2:9/x', 403, 'SC_ERR_EGRESS_DENIED');
    assert.equal(body.reason, 'guard_host_not_allowed');
  });

  it('a malformed request target gives 400', async () => {
    await expectError('/slow/../../etc/passwd', 400, 'SC_ERR_BAD_REQUEST');
    await expectError('*', 400, 'SC_ERR_BAD_REQUEST', { method: 'OPTIONS' });
    await expectError(`/slow/${'a'.repeat(9000)}`, 414, 'SC_ERR_URI_TOO_LONG');
  });

  it('a request that is not HTTP at all gets 400 and the listener keeps serving', async () => {
    const { port } = new URL(sc.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    socket.write('THIS IS NOT HTTP\r\n\r\n');
    let answer = '';
    socket.on('data', (d) => {
      answer += d.toString();
    });
    await once(socket, 'close');
    assert.match(answer, /^HTTP\/1\.1 400 Bad Request/);
    const ok = await send(sc.url, '/slow/fine?ms=0');
    assert.equal(ok.status, 200);
  });

  it('a loop through this same instance is refused with 508', async () => {
    const res = await send(sc.url, '/slow/fine', { headers: { via: `1.1 sidecache (${'x'})` } });
    assert.equal(res.status, 200, 'a foreign sidecache in Via is not a loop');
    const seen = await send(sc.url, '/slow/fine?ms=0');
    const ownVia = String(seen.headers.via);
    const loop = await send(sc.url, '/slow/fine', { headers: { via: ownVia } });
    assert.equal(loop.status, 508);
    assert.equal(loop.json().error, 'SC_ERR_LOOP_DETECTED');
  });

  it('an origin that dies mid-body truncates the client response instead of ending it cleanly', async () => {
    await assert.rejects(send(sc.url, '/midbody/x'), (err: NodeJS.ErrnoException) => {
      assert.match(String(err.code ?? err.message), /ECONNRESET|aborted/);
      return true;
    });
  });

  it('a body that stalls past the body timeout is cut off, not completed', async () => {
    await assert.rejects(send(sc.url, '/slow/slow-body'));
  });

  it('a client that disconnects aborts the upstream request', async () => {
    const controller = new AbortController();
    const pending = send(sc.url, '/slow/wait?ms=3000', { signal: controller.signal });
    await sleep(150);
    controller.abort();
    await assert.rejects(pending);
    const deadline = Date.now() + 2000;
    while (!upstreamClosed.some((u) => u.startsWith('/wait')) && Date.now() < deadline) await sleep(20);
    assert.ok(
      upstreamClosed.some((u) => u.startsWith('/wait')),
      'origin saw its request closed early',
    );
  });

  it('a client that leaves during a streamed body aborts the upstream request', async () => {
    const { hostname, port } = new URL(sc.url);
    const req = http.get({ host: hostname, port, path: '/slow/drip', agent: false });
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    assert.equal(res.statusCode, 200);
    await once(res, 'data'); // the body is streaming through
    assert.ok(!upstreamClosed.includes('/drip'), 'origin still sending');
    req.destroy();
    const deadline = Date.now() + 3000;
    while (!upstreamClosed.includes('/drip') && Date.now() < deadline) await sleep(20);
    assert.ok(upstreamClosed.includes('/drip'), 'origin saw its request closed before the body was done');
  });

  it('counts every failure by reason in /metrics', async () => {
    const text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
    for (const reason of [
      'upstream_connect_failed',
      'upstream_reset',
      'upstream_headers_timeout',
      'upstream_tls_error',
      'no_route',
    ]) {
      assert.match(text, new RegExp(`sidecache_requests_total\\{[^}]*reason="${reason}"\\} [1-9]`), reason);
    }
  });
});

describe('an idempotent request on a pooled socket that died is retried once', () => {
  it('retries GET on a fresh connection, but never a POST', async () => {
    let connectionsSeen = 0;
    // Each connection answers its first request and silently dies on the second.
    const origin = await rawOrigin((socket) => {
      connectionsSeen++;
      let requests = 0;
      socket.on('data', () => {
        requests++;
        if (requests === 1)
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=60\r\n\r\nok');
        else socket.destroy();
      });
    });
    const sc = await startTestSidecache({
      routes: [{ name: 'flaky', origin: origin.url, upstream: { connectionsPerOrigin: 1 } }],
    });
    try {
      assert.equal((await send(sc.url, '/flaky/a')).status, 200);
      const second = await send(sc.url, '/flaky/b');
      assert.equal(second.status, 200, second.text());
      assert.equal(connectionsSeen, 2);
      const post = await send(sc.url, '/flaky/c', { method: 'POST', body: 'data' });
      assert.equal(post.status, 502);
      assert.equal(post.json().error, 'SC_ERR_UPSTREAM_RESET');
    } finally {
      await sc.close();
      await origin.close();
    }
  });

  it('a retry that fails too is a typed 502 upstream_reset, not an internal error', async () => {
    // The first connection answers once, then every request (on any connection) is cut off unanswered.
    let answered = 0;
    const origin = await rawOrigin((socket) => {
      socket.on('data', () => {
        if (answered++ === 0)
          socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=60\r\n\r\nok');
        else socket.destroy();
      });
    });
    const sc = await startTestSidecache({
      routes: [{ name: 'down', origin: origin.url, upstream: { connectionsPerOrigin: 1 } }],
    });
    try {
      assert.equal((await send(sc.url, '/down/a')).status, 200);
      const second = await send(sc.url, '/down/b');
      assert.equal(second.status, 502, second.text());
      assert.equal(second.json().error, 'SC_ERR_UPSTREAM_RESET');
      assert.equal(answered, 3, 'one answer, the request on the pooled socket, and one retry');
    } finally {
      await sc.close();
      await origin.close();
    }
  });
});
