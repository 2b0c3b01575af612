/**
 * An Upgrade request that the origin answers with a non-101 response whose body is cut short
 * (issue 18, finding 5): the client gets the status line and what arrived, then a close; or a 502
 * when nothing was sent yet. The exchange ends and is counted once, and nothing is stored.
 * The origin is a raw socket, so it can read the whole request and then truncate its answer.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parsePromText, sumOf } from '../../src/metrics/prom-text.js';
import { type RawOrigin, startRawOrigin } from '../helpers/raw-origin.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';
import { sendRaw } from './raw-http.js';

/** Sends `bytes` and collects the answer; `closed` tells whether sidecache closed the connection. */
function exchange(
  port: number,
  bytes: string,
  waitMs: number,
): Promise<{ raw: string; closed: boolean; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    let closed = false;
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      closed = true;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') closed = true;
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ raw: Buffer.concat(chunks).toString('latin1'), closed, ms: Date.now() - started });
    });
  });
}

const upgradeRequest = (port: number, path: string): string =>
  `POST http://127.0.0.1:${port}${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
  'Connection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello';

describe('an Upgrade answered by a truncated non-101 response', () => {
  let sc: TestSidecache;
  let proxyPort: number;
  let origin: RawOrigin;

  before(async () => {
    origin = await startRawOrigin((socket, path) => {
      if (path.startsWith('/stall')) {
        // A head and part of a body, then silence with the connection open.
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
        return;
      }
      if (path.startsWith('/silent')) {
        // Nothing at all, then a close.
        setTimeout(() => socket.destroy(), 50);
        return;
      }
      socket.write(
        'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
      );
      setTimeout(() => socket.destroy(), 50);
    });
    sc = await startTestSidecache({
      allow: ['127.0.0.1/32'],
      egress: { ports: [origin.port] },
      upstream: { bodyTimeoutMs: 300 },
    });
    proxyPort = Number(new URL(sc.url).port);
  });
  after(async () => {
    await sc?.close();
    await origin?.close();
  });

  const countFor = async (): Promise<number> => {
    const text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
    return sumOf(parsePromText(text), 'sidecache_requests_total', { method: 'POST' });
  };

  it('relays the status line and what arrived, then closes; counted once; not stored', async () => {
    const before = await countFor();
    const got = await exchange(proxyPort, upgradeRequest(origin.port, '/up1?'), 4_000);
    assert.ok(got.ms < 3_000, `answered and closed in ${got.ms} ms (raw: ${JSON.stringify(got.raw)})`);
    assert.ok(got.closed, 'sidecache closed the connection');
    assert.match(got.raw, /^HTTP\/1\.1 200 /);
    assert.match(
      got.raw,
      /^HTTP\/1\.1 200 [\s\S]*\r\n\r\n5\r\nhello\r\n$/,
      'the chunk that arrived, and no last chunk',
    );
    assert.deepEqual(origin.seen, ['/up1'], 'the origin read the whole request, body included');
    // The exchange is over: counted once, and it stays once.
    await waitFor(async () => (await countFor()) === before + 1, 2_000);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await countFor(), before + 1);
    // Nothing was stored: a plain GET of the same URL reaches the origin.
    const plain = await sendRaw(
      proxyPort,
      `GET http://127.0.0.1:${origin.port}/up1? HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`,
      1_500,
    );
    assert.doesNotMatch(plain.head, /age: \d/i);
    assert.deepEqual(origin.seen, ['/up1', '/up1']);
  });

  it('answers 502 when the origin closes before sending anything', async () => {
    const before = await countFor();
    const got = await exchange(proxyPort, upgradeRequest(origin.port, '/silent'), 4_000);
    assert.ok(got.ms < 3_000, `answered in ${got.ms} ms`);
    assert.match(got.raw, /^HTTP\/1\.1 502 /);
    await waitFor(async () => (await countFor()) === before + 1, 2_000);
  });

  it('ends an answer whose body stalls (upstream.bodyTimeoutMs), counted once', async () => {
    const before = await countFor();
    const got = await exchange(proxyPort, upgradeRequest(origin.port, '/stall'), 4_000);
    assert.ok(got.ms < 3_000, `closed in ${got.ms} ms`);
    assert.ok(got.closed);
    assert.match(got.raw, /^HTTP\/1\.1 200 [\s\S]*content-length: 100\r\n[\s\S]*\r\n\r\npartial$/);
    await waitFor(async () => (await countFor()) === before + 1, 2_000);
  });

  it('a body that arrives after the head is read from the socket and sent first', async () => {
    const socket = net.connect(proxyPort, '127.0.0.1');
    await once(socket, 'connect');
    const request = upgradeRequest(origin.port, '/later');
    socket.write(request.slice(0, -5));
    await new Promise((r) => setTimeout(r, 150));
    socket.write('hello');
    const chunks: Buffer[] = [];
    socket.on('error', () => {});
    const timer = setTimeout(() => socket.destroy(), 4_000);
    for await (const c of socket) chunks.push(c as Buffer);
    clearTimeout(timer);
    assert.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1\.1 200 /);
    assert.equal(origin.seen.at(-1), '/later');
  });

  it('an Upgrade request with a chunked body is refused with 400', async () => {
    const got = await exchange(
      proxyPort,
      `POST http://127.0.0.1:${origin.port}/chunked HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n` +
        'Connection: upgrade\r\nUpgrade: websocket\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      4_000,
    );
    assert.match(got.raw, /^HTTP\/1\.1 400 /);
    assert.ok(!origin.seen.includes('/chunked'));
  });
});

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`condition not met within ${ms} ms`);
}
