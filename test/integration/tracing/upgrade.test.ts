/**
 * Tracing on, for exchanges that leave HTTP: a WebSocket upgrade reaches its origin without the
 * caller's trace context, and an upgraded connection and a plain (not intercepted) CONNECT tunnel
 * each arrive at the collector as one server span once the connection closes, in the caller's
 * trace. Clients are real (undici's WebSocket, Node's http CONNECT); the waits are short: the
 * export delay is 20 ms, so a span that is not there within a few seconds is never coming.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'undici';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';
import { startWsEchoOrigin, type WsEchoOrigin } from '../../helpers/ws-echo.js';
import { type OtlpReceiver, type OtlpSpan, startOtlpReceiver } from './otlp-receiver.js';

/** Sends a raw WebSocket upgrade request for `path` with the caller's trace context. */
function rawUpgrade(socket: Socket, path: string, traceId: string, parentId: string): void {
  socket.write(
    `GET ${path} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n` +
      `sec-websocket-version: 13\r\nsec-websocket-key: ${randomBytes(16).toString('base64')}\r\n` +
      `traceparent: 00-${traceId}-${parentId}-01\r\n\r\n`,
  );
}

/** Long enough for a 20 ms export delay many times over, short enough to fail fast. */
const SPAN_WAIT_MS = 3_000;
const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

function serverSpan(spans: OtlpSpan[], traceId: string): OtlpSpan | undefined {
  return spans.find((s) => s.traceId === traceId && s.kind === 2);
}

/** Opens a CONNECT tunnel with extra request headers; resolves with the open socket. */
function connectWith(proxyUrl: string, authority: string, headers: Record<string, string>): Promise<Socket> {
  const { hostname, port } = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: hostname,
      port,
      method: 'CONNECT',
      path: authority,
      headers,
      agent: false,
    });
    req.once('connect', (res, socket: Socket) => {
      if (res.statusCode === 200) resolve(socket);
      else {
        socket.destroy();
        reject(new Error(`CONNECT answered ${res.statusCode}`));
      }
    });
    req.once('response', (res) => reject(new Error(`CONNECT answered ${res.statusCode}`)));
    req.once('error', reject);
    req.end();
  });
}

describe('tracing: upgrades and tunnels', () => {
  let origin: WsEchoOrigin;
  let echo: net.Server;
  let echoPort: number;
  let receiver: OtlpReceiver;
  let sc: TestSidecache;

  before(async () => {
    origin = await startWsEchoOrigin();
    // A TCP echo server that closes its side when the client closes its own.
    echo = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('data', (c: Buffer) => socket.write(c));
      socket.on('end', () => socket.end());
      socket.on('error', () => socket.destroy());
    });
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    echoPort = (echo.address() as AddressInfo).port;
    receiver = await startOtlpReceiver();
    sc = await startTestSidecache({
      // Even where propagation is on: an upgrade has no client span to name as the origin's parent.
      routes: [
        { name: 'ws', origin: `http://127.0.0.1:${origin.port}`, tracing: { propagateUpstream: true } },
      ],
      allow: ['127.0.0.1'],
      tunnel: { ports: [echoPort] },
      tracing: { endpoint: receiver.url, queue: { delayMs: 20 } },
    });
  });
  after(async () => {
    await sc?.close();
    await receiver?.close();
    await origin?.close();
    if (echo) await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  it("removes the caller's traceparent and tracestate from the upgrade request", async () => {
    const socket = net.connect(Number(new URL(sc.url).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      `GET /ws/echo HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n` +
        `sec-websocket-version: 13\r\nsec-websocket-key: ${randomBytes(16).toString('base64')}\r\n` +
        `traceparent: 00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01\r\ntracestate: app=1\r\n\r\n`,
    );
    let buf = Buffer.alloc(0);
    while (!buf.includes('\r\n\r\n')) buf = Buffer.concat([buf, (await once(socket, 'data'))[0] as Buffer]);
    assert.match(buf.toString(), /^HTTP\/1\.1 101/);
    socket.destroy();
    const seen = origin.upgrades.at(-1);
    assert.ok(seen);
    assert.equal(seen.headers.traceparent, undefined);
    assert.equal(seen.headers.tracestate, undefined);
    assert.match(String(seen.headers.via), /sidecache/, 'the request did go through the upgrade relay');
  });

  it('a WebSocket session is one server span in the caller trace, ended when the client closes', async () => {
    const traceId = hex(16);
    const parentId = hex(8);
    const ws = new WebSocket(`${sc.url.replace('http:', 'ws:')}/ws/echo`, {
      headers: { traceparent: `00-${traceId}-${parentId}-01` },
    });
    const echoed = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no echo through sidecache')), 5_000);
      ws.onopen = () => ws.send('hello');
      ws.onmessage = (e) => {
        clearTimeout(timer);
        resolve(String(e.data));
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error('websocket error'));
      };
    });
    assert.equal(echoed, 'hello');
    assert.equal(serverSpan(receiver.spans, traceId), undefined, 'no span while the session is open');
    const closed = new Promise<void>((resolve) => {
      ws.onclose = () => resolve();
    });
    ws.close();
    await closed;
    const spans = await receiver.waitFor((all) => serverSpan(all, traceId) !== undefined, SPAN_WAIT_MS);
    const span = serverSpan(spans, traceId) as OtlpSpan;
    assert.equal(span.name, 'GET');
    assert.equal(span.parentSpanId, parentId);
    assert.equal(span.attributes['http.response.status_code'], 101);
    assert.equal(span.attributes['sidecache.route'], 'ws');
    assert.equal(span.attributes['sidecache.reason'], 'tunnel_closed');
    assert.equal(span.attributes['url.full'], `http://127.0.0.1:${origin.port}/echo`);
    assert.ok((span.attributes['sidecache.response.bytes'] as number) > 0, 'the echoed frames are counted');
    assert.ok(BigInt(span.endTimeUnixNano) > BigInt(span.startTimeUnixNano));
  });

  it('a plain CONNECT tunnel is one server span in the caller trace, ended when the tunnel closes', async () => {
    const traceId = hex(16);
    const parentId = hex(8);
    const socket = await connectWith(sc.url, `127.0.0.1:${echoPort}`, {
      traceparent: `00-${traceId}-${parentId}-01`,
    });
    socket.write('ping');
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    assert.equal(chunk.toString(), 'ping');
    assert.equal(serverSpan(receiver.spans, traceId), undefined, 'no span while the tunnel is open');
    // The client closes its side; the echo server closes its own in turn.
    socket.end();
    socket.resume();
    await once(socket, 'close');
    const spans = await receiver.waitFor((all) => serverSpan(all, traceId) !== undefined, SPAN_WAIT_MS);
    const span = serverSpan(spans, traceId) as OtlpSpan;
    assert.equal(span.name, 'CONNECT');
    assert.equal(span.parentSpanId, parentId);
    assert.equal(span.attributes['http.request.method'], 'CONNECT');
    assert.equal(span.attributes['http.response.status_code'], 200);
    assert.equal(span.attributes['sidecache.mode'], 'tunnel');
    assert.equal(span.attributes['sidecache.reason'], 'tunnel_closed');
    assert.equal(span.attributes['server.address'], '127.0.0.1');
    assert.equal(span.attributes['server.port'], echoPort);
    assert.equal(span.attributes['sidecache.response.bytes'], 4);
  });

  it('a refused upgrade is answered, closed and traced even when the client keeps its side open', async () => {
    const traceId = hex(16);
    // A client that does not close when sidecache does (half-open): the answer is complete with
    // `connection: close`, so sidecache closes the connection itself, as Node does for a response.
    const socket = net.connect({
      port: Number(new URL(sc.url).port),
      host: '127.0.0.1',
      allowHalfOpen: true,
    });
    await once(socket, 'connect');
    rawUpgrade(socket, '/ws/refuse', traceId, hex(8));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await once(socket, 'end');
    assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 403 [\s\S]*\r\n\r\nrefused$/);
    try {
      const spans = await receiver.waitFor((all) => serverSpan(all, traceId) !== undefined, SPAN_WAIT_MS);
      const span = serverSpan(spans, traceId) as OtlpSpan;
      assert.equal(span.attributes['http.response.status_code'], 403);
      assert.equal(span.attributes['sidecache.reason'], 'origin_response');
      assert.equal(span.attributes['sidecache.response.bytes'], 7);
    } finally {
      socket.destroy();
    }
  });

  it('a tunnel still open at shutdown is traced before the exporter stops', async () => {
    // Its own sidecache, closed here: the shutdown tears the tunnel down, then flushes the spans.
    const own = await startTestSidecache({
      allow: ['127.0.0.1'],
      tunnel: { ports: [echoPort] },
      // A long export delay: only the flush at shutdown sends the span in time.
      tracing: { endpoint: receiver.url, queue: { delayMs: 60_000 } },
    });
    const traceId = hex(16);
    const socket = await connectWith(own.url, `127.0.0.1:${echoPort}`, {
      traceparent: `00-${traceId}-${hex(8)}-01`,
    });
    socket.on('error', () => {});
    socket.write('ping');
    await once(socket, 'data');
    await own.close();
    socket.destroy();
    const spans = await receiver.waitFor((all) => serverSpan(all, traceId) !== undefined, SPAN_WAIT_MS);
    const span = serverSpan(spans, traceId) as OtlpSpan;
    assert.equal(span.name, 'CONNECT');
    assert.equal(span.attributes['sidecache.reason'], 'shutting_down');
  });
});

describe('tracing: a half-closed upgrade ends with the idle timeout', () => {
  let origin: WsEchoOrigin;
  let receiver: OtlpReceiver;
  let sc: TestSidecache;
  const IDLE_MS = 400;

  before(async () => {
    // This origin keeps its side of an upgraded connection open after the client's FIN.
    origin = await startWsEchoOrigin();
    receiver = await startOtlpReceiver();
    sc = await startTestSidecache({
      routes: [{ name: 'ws', origin: `http://127.0.0.1:${origin.port}` }],
      tunnel: { idleTimeoutMs: IDLE_MS },
      tracing: { endpoint: receiver.url, queue: { delayMs: 20 } },
    });
  });
  after(async () => {
    await sc?.close();
    await receiver?.close();
    await origin?.close();
  });

  it('the span of an upgrade the client left (FIN) while the origin stays open arrives after the idle timeout', async () => {
    const traceId = hex(16);
    const socket = net.connect(Number(new URL(sc.url).port), '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    rawUpgrade(socket, '/ws/echo', traceId, hex(8));
    await once(socket, 'data');
    const left = performance.now();
    // The client goes away (a FIN); the half-close is passed on, and the origin keeps its side open.
    socket.destroy();
    const spans = await receiver.waitFor(
      (all) => serverSpan(all, traceId) !== undefined,
      IDLE_MS + SPAN_WAIT_MS,
    );
    const span = serverSpan(spans, traceId) as OtlpSpan;
    assert.equal(span.attributes['http.response.status_code'], 101);
    assert.equal(span.attributes['sidecache.reason'], 'tunnel_idle_timeout');
    assert.ok(performance.now() - left >= IDLE_MS - 50, 'not before the idle timeout');
  });
});
