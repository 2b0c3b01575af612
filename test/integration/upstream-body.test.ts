/**
 * How upstream/ hands an origin body to the rest of the pipeline (fetch-origin.ts): a body that
 * arrived whole with its head is handed over as bytes, anything else streams. Both must reach the
 * client intact, a body cut short in the very read that carried the head must still look cut
 * short (and never be stored), and a body the origin has not finished must stream, not wait.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { send } from '../helpers/client.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';

const FULL = 'abcdefghij'.repeat(50);

describe('upstream body hand-over (whole or streamed)', () => {
  let sc: TestSidecache;
  let server: net.Server;
  const sockets = new Set<net.Socket>();
  const counts = new Map<string, number>();
  /** Releases the rest of the `/slow-tail` body (the test calls it once the client has the head). */
  let releaseTail: (() => void) | null = null;

  before(async () => {
    // A raw origin: each answer is written exactly as the test needs it on the wire.
    server = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      let buffered = '';
      socket.on('data', (d: Buffer) => {
        buffered += d.toString('latin1');
        while (buffered.includes('\r\n\r\n')) {
          const end = buffered.indexOf('\r\n\r\n');
          const head = buffered.slice(0, end);
          buffered = buffered.slice(end + 4);
          const path = head.split(' ')[1] ?? '/';
          counts.set(path, (counts.get(path) ?? 0) + 1);
          answer(socket, path);
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    sc = await startTestSidecache({ routes: [{ name: 'o', origin }] });
  });
  after(async () => {
    await sc?.close();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  function answer(socket: net.Socket, path: string): void {
    const cacheable = 'cache-control: max-age=60\r\n';
    switch (path) {
      case '/whole-length':
        socket.write(`HTTP/1.1 200 OK\r\n${cacheable}content-length: ${FULL.length}\r\n\r\n${FULL}`);
        return;
      case '/whole-chunked': {
        const half = FULL.length / 2;
        const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;
        socket.write(
          `HTTP/1.1 200 OK\r\n${cacheable}transfer-encoding: chunked\r\n\r\n` +
            `${chunk(FULL.slice(0, half))}${chunk(FULL.slice(half))}0\r\n\r\n`,
        );
        return;
      }
      case '/no-store':
        socket.write(
          `HTTP/1.1 200 OK\r\ncache-control: no-store\r\ncontent-length: ${FULL.length}\r\n\r\n${FULL}`,
        );
        return;
      case '/cut-in-one-write':
        // Head, part of the body and the end of the connection, all in one go.
        socket.end(
          `HTTP/1.1 200 OK\r\n${cacheable}content-length: ${FULL.length}\r\n\r\n${FULL.slice(0, 100)}`,
        );
        return;
      case '/cut-later':
        // Head and part of the body, then the connection dies: the client has the head by then.
        socket.write(
          `HTTP/1.1 200 OK\r\n${cacheable}content-length: ${FULL.length}\r\n\r\n${FULL.slice(0, 100)}`,
        );
        setTimeout(() => socket.destroy(), 50);
        return;
      case '/slow-tail':
        socket.write(
          `HTTP/1.1 200 OK\r\n${cacheable}content-length: ${FULL.length}\r\n\r\n${FULL.slice(0, 100)}`,
        );
        releaseTail = () => socket.write(FULL.slice(100));
        return;
      default:
        socket.write('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
    }
  }

  for (const path of ['/whole-length', '/whole-chunked']) {
    it(`a body that arrives whole with its head reaches the client intact and is stored (${path})`, async () => {
      const first = await send(sc.url, `/o${path}`);
      assert.equal(first.status, 200);
      assert.equal(first.text(), FULL);
      const second = await send(sc.url, `/o${path}`);
      assert.equal(second.text(), FULL);
      assert.match(String(second.headers['cache-status']), /^sidecache; hit/);
      assert.equal(counts.get(path), 1);
    });
  }

  it('an uncacheable whole body passes through, every time from the origin', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await send(sc.url, '/o/no-store');
      assert.equal(res.status, 200);
      assert.equal(res.text(), FULL);
      assert.equal(res.headers['content-length'], String(FULL.length));
      assert.match(String(res.headers.via), /sidecache/);
    }
    assert.equal(counts.get('/no-store'), 3);
  });

  it('a body cut short in the read that carried its head still looks cut short, and is never stored', async () => {
    for (let i = 0; i < 2; i++) {
      const outcome = await send(sc.url, '/o/cut-in-one-write').then(
        (r) => `${r.status} ${r.body.length}`,
        () => 'error',
      );
      assert.notEqual(outcome, `200 ${FULL.length}`, 'the client must not get a complete-looking body');
    }
    assert.equal(
      counts.get('/cut-in-one-write'),
      2,
      'nothing was stored: the second request reached the origin',
    );
  });

  it('Cache-Status does not claim "stored" for a body that is then cut short (and not stored)', async () => {
    const { hostname, port } = new URL(sc.url);
    for (let i = 0; i < 2; i++) {
      const got = await new Promise<{ cacheStatus: string; bytes: number }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no response within 5 s')), 5_000);
        const req = http.get({ host: hostname, port, path: '/o/cut-later', agent: false }, (res) => {
          let bytes = 0;
          res.on('data', (c: Buffer) => {
            bytes += c.length;
          });
          const done = () => {
            clearTimeout(timer);
            resolve({ cacheStatus: String(res.headers['cache-status']), bytes });
          };
          res.on('error', done);
          res.on('close', done);
        });
        req.on('error', reject);
      });
      assert.ok(got.bytes < FULL.length, 'the client saw the body cut short');
      assert.match(got.cacheStatus, /^sidecache; fwd=uri-miss; fwd-status=200/);
      assert.doesNotMatch(got.cacheStatus, /stored/, got.cacheStatus);
    }
    assert.equal(counts.get('/cut-later'), 2, 'nothing was stored: the second request reached the origin');
    const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text();
    assert.match(
      metrics,
      /sidecache_cache_responses_not_stored_total\{route="o",reason="incomplete"\} [1-9]/,
    );
  });

  it('a body the origin has not finished streams: the client gets the head before the tail is sent', async () => {
    const { hostname, port } = new URL(sc.url);
    const body = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('no response head while the origin held the tail')),
        5_000,
      );
      const req = http.get({ host: hostname, port, path: '/o/slow-tail', agent: false }, (res) => {
        clearTimeout(timer);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks).toString()));
        res.on('error', reject);
        // Only now may the origin finish: a proxy that waited for the whole body never gets here.
        assert.ok(releaseTail, 'the origin got the request');
        releaseTail();
      });
      req.on('error', reject);
    });
    assert.equal(body, FULL);
  });
});
