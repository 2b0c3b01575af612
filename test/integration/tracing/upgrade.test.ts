/** Tracing on: a WebSocket upgrade reaches its origin without the caller's trace context. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';
import { startWsEchoOrigin, type WsEchoOrigin } from '../../helpers/ws-echo.js';
import { type OtlpReceiver, startOtlpReceiver } from './otlp-receiver.js';

describe('tracing: upgrades', () => {
  let origin: WsEchoOrigin;
  let receiver: OtlpReceiver;
  let sc: TestSidecache;

  before(async () => {
    origin = await startWsEchoOrigin();
    receiver = await startOtlpReceiver();
    sc = await startTestSidecache({
      // Even where propagation is on: an upgrade has no client span to name as the origin's parent.
      routes: [
        { name: 'ws', origin: `http://127.0.0.1:${origin.port}`, tracing: { propagateUpstream: true } },
      ],
      tracing: { endpoint: receiver.url, queue: { delayMs: 20 } },
    });
  });
  after(async () => {
    await sc?.close();
    await receiver?.close();
    await origin?.close();
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
});
