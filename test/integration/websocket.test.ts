/**
 * WebSocket (Upgrade) pass-through in reverse, forward and intercepted modes, admitted by the
 * same guard; a refused upgrade is relayed as the origin's answer. Client: undici's WebSocket.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Dispatcher, ProxyAgent, WebSocket } from 'undici';
import { createTestCa } from '../helpers/pki.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';
import {
  acceptKey,
  decodeFrames,
  encodeFrame,
  startWsEchoOrigin,
  type WsEchoOrigin,
} from '../helpers/ws-echo.js';

function echoOnce(url: string, message: string, dispatcher?: Dispatcher): Promise<string> {
  const ws = new WebSocket(url, dispatcher ? { dispatcher } : undefined);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no echo from ${url}`)), 5_000);
    ws.onopen = () => ws.send(message);
    ws.onmessage = (e) => {
      clearTimeout(timer);
      resolve(String(e.data));
      ws.close();
    };
    ws.onerror = (e) => {
      clearTimeout(timer);
      reject((e as unknown as { error?: Error }).error ?? new Error(`websocket error for ${url}`));
    };
  });
}

describe('WebSocket through sidecache', () => {
  let baseDir: string;
  let plain: WsEchoOrigin;
  let secure: WsEchoOrigin;
  let sc: TestSidecache;
  let scCaPem: string;

  before(async () => {
    baseDir = mkdtempSync(join(tmpdir(), 'sidecache-ws-'));
    const ca = await createTestCa();
    plain = await startWsEchoOrigin();
    secure = await startWsEchoOrigin({ tls: await ca.issue({ dns: ['localhost'] }) });
    sc = await startTestSidecache({
      routes: [
        { name: 'ws', origin: `http://127.0.0.1:${plain.port}` },
        { name: 'wss', origin: `https://localhost:${secure.port}` },
      ],
      intercept: ['localhost'],
      // `localhost` is a name for a loopback address: the egress policy wants it allowed explicitly.
      allow: ['127.0.0.1/32', '::1/128'],
      tls: { caDir: join(baseDir, 'ca') },
      upstream: { caFile: ca.writeCertFile() },
    });
    scCaPem = readFileSync(join(baseDir, 'ca', 'ca.pem'), 'utf8');
  });
  after(async () => {
    await sc?.close();
    await plain?.close();
    await secure?.close();
    if (baseDir) rmSync(baseDir, { recursive: true, force: true });
  });

  it('reverse route: ws://sidecache/ws/echo reaches the origin with Via', async () => {
    const wsUrl = `${sc.url.replace('http:', 'ws:')}/ws/echo`;
    assert.equal(await echoOnce(wsUrl, 'reverse hello'), 'reverse hello');
    const seen = plain.upgrades.at(-1);
    assert.equal(seen?.url, '/echo');
    assert.match(String(seen?.headers.via), /sidecache/);
  });

  it('forward proxy: absolute-form upgrade request (undici ProxyAgent without a tunnel)', async () => {
    const agent = new ProxyAgent({ uri: sc.url, proxyTunnel: false });
    try {
      assert.equal(
        await echoOnce(`ws://127.0.0.1:${plain.port}/forward`, 'forward hello', agent),
        'forward hello',
      );
    } finally {
      await agent.close();
    }
    assert.equal(plain.upgrades.at(-1)?.url, '/forward');
  });

  it('intercepted: wss:// through CONNECT, trusting the sidecache CA', async () => {
    const agent = new ProxyAgent({ uri: sc.url, requestTls: { ca: scCaPem } });
    try {
      assert.equal(
        await echoOnce(`wss://localhost:${secure.port}/intercepted`, 'intercepted hello', agent),
        'intercepted hello',
      );
    } finally {
      await agent.close();
    }
    const seen = secure.upgrades.at(-1);
    assert.equal(seen?.url, '/intercepted');
    assert.match(String(seen?.headers.via), /sidecache/);
  });

  it('a raw client: frames both ways on one upgraded connection, bytes intact', async () => {
    const socket = net.connect(Number(new URL(sc.url).port), '127.0.0.1');
    await once(socket, 'connect');
    const key = randomBytes(16).toString('base64');
    socket.write(
      `GET http://127.0.0.1:${plain.port}/raw HTTP/1.1\r\nhost: 127.0.0.1:${plain.port}\r\n` +
        `connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: ${key}\r\n\r\n`,
    );
    let buf: Buffer = Buffer.alloc(0);
    while (!buf.includes('\r\n\r\n')) buf = Buffer.concat([buf, (await once(socket, 'data'))[0] as Buffer]);
    const end = buf.indexOf('\r\n\r\n');
    const head = buf.subarray(0, end).toString();
    assert.match(head, /^HTTP\/1\.1 101/);
    assert.match(head, new RegExp(`sec-websocket-accept: ${acceptKey(key).replace(/[+/]/g, '\\$&')}`, 'i'));
    buf = buf.subarray(end + 4);
    const payloads = [Buffer.from('one'), randomBytes(300), Buffer.from('three')];
    for (const p of payloads) socket.write(encodeFrame(p, 0x2, true));
    const got: Buffer[] = [];
    while (got.length < payloads.length) {
      const { frames, rest } = decodeFrames(buf);
      got.push(...frames.map((f) => f.payload));
      buf = rest;
      if (got.length < payloads.length) buf = Buffer.concat([buf, (await once(socket, 'data'))[0] as Buffer]);
    }
    assert.deepEqual(got, payloads);
    socket.destroy();
  });

  it('an upgrade the origin refuses is relayed as its answer', async () => {
    const socket = net.connect(Number(new URL(sc.url).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.end(
      'GET /ws/refuse HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n' +
        `sec-websocket-version: 13\r\nsec-websocket-key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
    );
    const chunks: Buffer[] = [];
    for await (const c of socket) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    assert.match(text, /^HTTP\/1\.1 403/);
    assert.match(text, /refused$/);
  });

  it('an upgrade to a host that is not allowed is refused by the guard (403)', async () => {
    const socket = net.connect(Number(new URL(sc.url).port), '127.0.0.1');
    await once(socket, 'connect');
    socket.end(
      'GET http://not-allowed.test/x HTTP/1.1\r\nhost: not-allowed.test\r\nconnection: Upgrade\r\n' +
        `upgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
    );
    const chunks: Buffer[] = [];
    for await (const c of socket) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    assert.match(text, /^HTTP\/1\.1 403/);
    assert.match(text, /SC_ERR_EGRESS_DENIED/);
  });
});
