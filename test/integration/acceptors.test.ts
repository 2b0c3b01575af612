/**
 * proxy.acceptors (src/front/acceptors.ts): extra listening handles on the proxy's socket. How
 * much faster a saturated loop accepts is measured by `npm run bench:accept` and the soak, not
 * here (timing); these cases check that the extra handles accept onto the one http.Server, keep
 * the total connection limit, release the socket on close, and that the CLI in that mode serves,
 * reloads on SIGHUP and shuts down gracefully on SIGTERM.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { addAcceptors } from '../../src/front/acceptors.js';
import { send } from '../helpers/client.js';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { spawnSidecache } from '../helpers/sidecache.js';

async function listening(server: Server): Promise<number> {
  server.listen({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Opens a connection, sends one keep-alive request, resolves with the socket and the first bytes (or null: closed). */
function request(port: number): Promise<{ socket: Socket; answer: string | null }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => reject(new Error('no answer in 5 s')), 5_000);
    socket.once('connect', () => socket.write('GET / HTTP/1.1\r\nHost: t\r\n\r\n'));
    socket.once('data', (d: Buffer) => {
      clearTimeout(timer);
      resolve({ socket, answer: d.toString() });
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ socket, answer: null });
    });
    socket.once('error', () => {});
  });
}

describe('acceptors: extra listening handles', () => {
  it('accept onto the same http.Server, and closing them releases the socket', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    const port = await listening(server);
    const acceptors = await addAcceptors(server, { count: 4, backlog: 511 });
    assert.equal(acceptors.count, 4);
    let connections = 0;
    server.on('connection', () => connections++);
    // Close the server's own handle: from now on only the extra handles can accept.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => send(`http://127.0.0.1:${port}`, '/')),
    );
    assert.deepEqual(
      answers.map((r) => r.status),
      Array(20).fill(200),
    );
    assert.equal(connections, 20);
    assert.equal(acceptors.accepted(), 20);
    await acceptors.close();
    await assert.rejects(send(`http://127.0.0.1:${port}`, '/'), { code: 'ECONNREFUSED' });
  });

  it('keep limits.maxConnections over all handles together', async () => {
    const server = createServer({ keepAlive: true }, (_req, res) => res.end('ok'));
    server.maxConnections = 3;
    const port = await listening(server);
    const acceptors = await addAcceptors(server, { count: 3, backlog: 511 });
    const drops: unknown[] = [];
    server.on('drop', (d) => drops.push(d));
    await new Promise<void>((resolve) => server.close(() => resolve())); // extra handles only
    const open = await Promise.all([request(port), request(port), request(port)]);
    for (const o of open) assert.match(o.answer ?? '', /^HTTP\/1.1 200/);
    const fourth = await request(port);
    assert.equal(fourth.answer, null, 'a 4th connection is closed unanswered');
    assert.equal(drops.length, 1);
    // One closes: there is room again.
    open[0]?.socket.destroy();
    await sleep(50);
    const fifth = await request(port);
    assert.match(fifth.answer ?? '', /^HTTP\/1.1 200/);
    for (const o of [...open, fourth, fifth]) o.socket.destroy();
    server.closeAllConnections();
    await acceptors.close();
  });
});

describe('sidecache serve --acceptors', () => {
  let origin: TestOrigin;
  before(async () => {
    origin = await startOrigin(async (req, res) => {
      const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
      await sleep(ms);
      res.end(`done after ${ms}`);
    });
  });
  after(() => origin?.close());

  it('serves, reloads on SIGHUP, and on SIGTERM finishes the in-flight request and exits 0', async () => {
    const sc = await spawnSidecache([
      '--acceptors',
      '4',
      '--route',
      `o=${origin.url}`,
      '--log-level',
      'info',
    ]);
    let stopped = false;
    try {
      const started = sc
        .output()
        .split('\n')
        .find((l) => l.includes('"sidecache started"'));
      assert.equal((JSON.parse(started as string) as { acceptors: number }).acceptors, 4);
      const answers = await Promise.all(Array.from({ length: 20 }, () => send(sc.url, '/o/x?ms=0')));
      assert.deepEqual(
        answers.map((r) => r.status),
        Array(20).fill(200),
      );

      sc.child.kill('SIGHUP');
      const deadline = Date.now() + 10_000;
      while (!sc.output().includes('"config reloaded"') && Date.now() < deadline) await sleep(20);
      assert.ok(sc.output().includes('"config reloaded"'), sc.output());
      assert.equal((await send(sc.url, '/o/after-reload?ms=0')).status, 200);

      const inFlight = send(sc.url, '/o/slow?ms=700');
      await sleep(200);
      const code = sc.stop('SIGTERM');
      stopped = true;
      const res = await inFlight;
      assert.equal(res.status, 200);
      assert.equal(res.text(), 'done after 700');
      assert.equal(await code, 0);
    } finally {
      if (!stopped) await sc.stop();
    }
  });
});
