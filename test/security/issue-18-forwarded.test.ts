/**
 * Issue 18, finding 2: cache poisoning through forwarding headers. A client's `Forwarded`,
 * `X-Forwarded-*` and `X-Real-IP` must not reach the origin unless `proxy.trustForwarded` names
 * the client; an origin that builds links from them (as frameworks do) answers with the client's
 * values, and that answer, stored, would be served to the next plain client. Real origins on
 * loopback that reflect those headers; curl with forged headers, then a plain curl, in each mode
 * (reverse route, forward proxy, intercepted HTTPS), plus an Upgrade request.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { FORGED_HEADERS, REFLECTED_HEADERS } from '../helpers/attacks.js';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { createTestCa } from '../helpers/pki.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';
import { startWsEchoOrigin, type WsEchoOrigin } from '../helpers/ws-echo.js';

const run = promisify(execFile);

/** The forged headers of the issue's repro, and the other client-address headers (shared with the soak). */
const FORGED = FORGED_HEADERS;
const FORGED_VALUES = /evil|8443|203\.0\.113\.9/;
const REFLECTED = REFLECTED_HEADERS;

/** What a framework does with forwarding headers: builds its own base URL from them. */
function reflect(req: IncomingMessage, res: ServerResponse): void {
  const h = req.headers;
  const first = (v: IncomingHttpHeaders[string]): string | undefined =>
    v === undefined ? undefined : String(v);
  const proto = first(h['x-forwarded-proto']) ?? 'http';
  const host = first(h['x-forwarded-host']) ?? h.host;
  const port = first(h['x-forwarded-port']);
  const prefix = first(h['x-forwarded-prefix']) ?? '';
  const seen: Record<string, string | null> = {};
  for (const name of REFLECTED) seen[name] = first(h[name]) ?? null;
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60' });
  res.end(JSON.stringify({ base: `${proto}://${host}${port ? `:${port}` : ''}${prefix}`, seen }));
}

interface Answer {
  readonly head: string;
  readonly body: { base: string; seen: Record<string, string | null> };
}

async function curl(args: string[], forged: boolean): Promise<Answer> {
  const headers = forged ? FORGED.flatMap((h) => ['-H', h]) : [];
  const { stdout } = await run('curl', ['-sS', '--fail', '-D', '-', ...headers, ...args]);
  const split = stdout.lastIndexOf('\r\n\r\n');
  return { head: stdout.slice(0, split), body: JSON.parse(stdout.slice(split + 4)) as Answer['body'] };
}

describe('issue 18: forwarding headers from clients are not trusted by default', () => {
  let origin: TestOrigin;
  let forward: TestOrigin;
  let secure: TestOrigin;
  let ws: WsEchoOrigin;
  let sc: TestSidecache;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sidecache-issue18-fwd-'));
    const ca = await createTestCa('origin CA');
    origin = await startOrigin(reflect);
    forward = await startOrigin(reflect);
    secure = await startOrigin(reflect, { tls: await ca.issue({ dns: ['localhost'] }) });
    ws = await startWsEchoOrigin();
    sc = await startTestSidecache({
      routes: [
        { name: 'o', origin: origin.url },
        { name: 'tls', origin: `https://localhost:${secure.port}` },
        { name: 'ws', origin: `http://127.0.0.1:${ws.port}` },
      ],
      allow: ['127.0.0.1'],
      egress: { ports: [forward.port] },
      intercept: ['localhost'],
      tunnel: { ports: [secure.port] },
      tls: { caDir: join(dir, 'ca') },
      upstream: { caFile: ca.writeCertFile(), warm: { connections: 0, minIdle: 0 } },
    });
  });
  after(async () => {
    await sc?.close();
    await origin?.close();
    await forward?.close();
    await secure?.close();
    await ws?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const modes: [string, () => string[]][] = [
    ['reverse route', () => [`${sc.url}/o/x`]],
    ['forward proxy', () => ['-x', sc.url, `${forward.url}/fwd/x`]],
    [
      'intercepted HTTPS',
      () => ['-x', sc.url, '--cacert', join(dir, 'ca', 'ca.pem'), `https://localhost:${secure.port}/int/x`],
    ],
  ];
  for (const [mode, target] of modes) {
    it(`${mode}: a forged request leaves no trace for the next plain client`, async () => {
      const forged = await curl(target(), true);
      const plain = await curl(target(), false);
      assert.doesNotMatch(plain.body.base, FORGED_VALUES, `plain client got ${plain.body.base}`);
      assert.doesNotMatch(JSON.stringify(plain.body), FORGED_VALUES);
      // The origin saw sidecache's own values, never the client's.
      assert.doesNotMatch(
        JSON.stringify(forged.body),
        FORGED_VALUES,
        `origin saw: ${JSON.stringify(forged.body)}`,
      );
      assert.equal(forged.body.seen['x-forwarded-for'], '127.0.0.1');
      assert.equal(forged.body.seen['x-forwarded-proto'], mode === 'intercepted HTTPS' ? 'https' : 'http');
      for (const name of [
        'forwarded',
        'x-forwarded-port',
        'x-forwarded-prefix',
        'x-forwarded-host',
        'x-real-ip',
      ]) {
        assert.equal(forged.body.seen[name], null, `${name} reached the origin`);
      }
    });
  }

  it('an Upgrade request reaches the origin with sidecache values only', async () => {
    const socket = connect(Number(new URL(sc.url).port), '127.0.0.1');
    await once(socket, 'connect');
    let head = '';
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
    });
    socket.write(
      'GET /ws/chat HTTP/1.1\r\nHost: sidecache\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
        `${FORGED.join('\r\n')}\r\n\r\n`,
    );
    for (let i = 0; i < 100 && !head.includes('\r\n\r\n'); i++) await new Promise((r) => setTimeout(r, 20));
    socket.destroy();
    assert.match(head, /^HTTP\/1\.1 101/, head);
    const headers = ws.upgrades.at(-1)?.headers;
    assert.ok(headers, 'the upgrade reached the origin');
    assert.doesNotMatch(JSON.stringify(headers), FORGED_VALUES, JSON.stringify(headers));
    assert.equal(headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'http');
  });
});

describe('issue 18: proxy.trustForwarded keeps them, and keys the cache by them', () => {
  let origin: TestOrigin;
  let trusting: TestSidecache;
  let other: TestSidecache;

  before(async () => {
    origin = await startOrigin(reflect);
    trusting = await startTestSidecache({
      routes: [{ name: 'o', origin: origin.url }],
      proxy: { trustForwarded: ['127.0.0.0/8'] },
    });
    other = await startTestSidecache({
      routes: [{ name: 'o', origin: origin.url }],
      proxy: { trustForwarded: ['10.0.0.0/8', '::1/128'] },
    });
  });
  after(async () => {
    await trusting?.close();
    await other?.close();
    await origin?.close();
  });

  it('a trusted client: its values reach the origin, under a key of their own', async () => {
    const forged = await curl([`${trusting.url}/o/t`], true);
    assert.equal(forged.body.base, 'https://evil.example:8443/evil');
    assert.equal(forged.body.seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
    assert.equal(forged.body.seen['x-real-ip'], '203.0.113.9');
    assert.equal(
      forged.body.seen.forwarded,
      'host=evil.example;proto=https;for=203.0.113.9, for=127.0.0.1;proto=http',
    );
    const plain = await curl([`${trusting.url}/o/t`], false);
    assert.doesNotMatch(JSON.stringify(plain.body), FORGED_VALUES, 'the plain client got the trusted answer');
    assert.match(plain.head, /cache-status: sidecache; fwd=uri-miss/i);
    const again = await curl([`${trusting.url}/o/t`], true);
    assert.match(again.head, /cache-status: sidecache; hit/i);
    assert.equal(again.body.base, 'https://evil.example:8443/evil');
  });

  it('a client outside the trusted blocks is not trusted', async () => {
    const forged = await curl([`${other.url}/o/u`], true);
    assert.doesNotMatch(JSON.stringify(forged.body), FORGED_VALUES);
    const plain = await curl([`${other.url}/o/u`], false);
    assert.doesNotMatch(JSON.stringify(plain.body), FORGED_VALUES);
  });
});
