/**
 * Limits: each breach gets its status, and sidecache keeps serving everyone else.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { send } from '../helpers/client.js';
import { readBody, startOrigin, type TestOrigin } from '../helpers/origin.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';
import { sendRaw } from './raw-http.js';

let origin: TestOrigin;
let sc: TestSidecache;
let port: number;

before(async () => {
  origin = await startOrigin(async (req, res) => {
    const body = await readBody(req);
    res.end(`got ${body.length}`);
  });
  sc = await startTestSidecache({
    routes: [{ name: 'api', origin: origin.url }],
    limits: {
      maxHeaderBytes: 2048,
      maxHeaderCount: 20,
      maxBodyBytes: 1000,
      maxConnectionsPerClient: 4,
      headersTimeoutMs: 400,
      requestTimeoutMs: 800,
    },
    proxy: { maxUrlBytes: 256 },
  });
  port = Number(new URL(sc.url).port);
});
after(async () => {
  await sc.close();
  await origin.close();
});

async function stillServing(): Promise<void> {
  const res = await send(sc.url, '/api/ok');
  assert.equal(res.status, 200);
}

describe('limits', () => {
  it('headers larger than maxHeaderBytes: 431', async () => {
    const res = await sendRaw(port, `GET /api/x HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(4000)}\r\n\r\n`);
    assert.equal(res.status, 431);
    assert.equal(res.json().error, 'SC_ERR_HEADERS_TOO_LARGE');
    await stillServing();
  });

  it('more header fields than maxHeaderCount: 431', async () => {
    let head = 'GET /api/x HTTP/1.1\r\nHost: a\r\n';
    for (let i = 0; i < 25; i++) head += `X-H${i}: v\r\n`;
    const res = await sendRaw(port, `${head}\r\n`);
    assert.equal(res.status, 431, res.raw);
    assert.equal(res.json().error, 'SC_ERR_HEADERS_TOO_LARGE');
    await stillServing();
  });

  it('a URL longer than maxUrlBytes: 414', async () => {
    const res = await sendRaw(port, `GET /api/${'a'.repeat(300)} HTTP/1.1\r\nHost: a\r\n\r\n`);
    assert.equal(res.status, 414);
  });

  it('a Content-Length over maxBodyBytes: 413 before the body is read', async () => {
    const before = origin.requests.length;
    const res = await sendRaw(port, 'POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\nabc');
    assert.equal(res.status, 413, res.raw);
    assert.equal(res.json().error, 'SC_ERR_BODY_TOO_LARGE');
    assert.equal(origin.requests.length, before);
    await stillServing();
  });

  it('a chunked body that grows past maxBodyBytes while streaming: 413', async () => {
    const chunk = `${(600).toString(16)}\r\n${'x'.repeat(600)}\r\n`;
    const res = await sendRaw(
      port,
      `POST /api/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}${chunk}${chunk}0\r\n\r\n`,
    );
    assert.equal(res.status, 413, res.raw);
    assert.equal(res.json().reason, 'request_body_too_large');
    await stillServing();
  });

  it('a body within the limit goes through', async () => {
    const res = await send(sc.url, '/api/x', { method: 'POST', body: 'y'.repeat(900) });
    assert.equal(res.text(), 'got 900');
  });

  it('a client trickling its headers (slowloris): 408 after headersTimeoutMs', async () => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    socket.write('GET /api/x HTTP/1.1\r\nHost: a\r\n');
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString();
    });
    const ticker = setInterval(() => socket.write('X-A: b\r\n'), 100);
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    clearInterval(ticker);
    assert.match(got, /^HTTP\/1\.1 408/);
    assert.ok(Date.now() - started < 3_000);
    await stillServing();
  });

  it('a client that sends its headers and then stalls the body: 408 after requestTimeoutMs, nothing hangs', async () => {
    const socket = net.connect(port, '127.0.0.1');
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString();
    });
    socket.on('error', () => {});
    // Headers complete, Content-Length promises 100 bytes, 10 arrive, then nothing.
    socket.write('POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const bound = setTimeout(() => socket.destroy(), 10_000);
    await closed;
    clearTimeout(bound);
    assert.match(got, /^HTTP\/1\.1 408 /, got);
    assert.match(got, /request_timeout/);
    await stillServing();
  });

  it('more connections from one client than maxConnectionsPerClient: 503 and close', async () => {
    const idle: net.Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const s = net.connect(port, '127.0.0.1');
      await new Promise((r) => s.once('connect', r));
      idle.push(s);
    }
    try {
      const res = await sendRaw(port, 'GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n');
      assert.equal(res.status, 503, res.raw);
      assert.equal(res.json().error, 'SC_ERR_TOO_MANY_CONNECTIONS');
    } finally {
      for (const s of idle) s.destroy();
    }
    await new Promise((r) => setTimeout(r, 50));
    await stillServing();
  });
});
