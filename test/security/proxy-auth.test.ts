/**
 * Proxy authentication: Basic credentials checked for forward requests and CONNECT (the default
 * modes), 407 with Proxy-Authenticate otherwise; the credentials never reach the origin.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { send } from '../helpers/client.js';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';
import { sendRaw } from './raw-http.js';

let origin: TestOrigin;
let sc: TestSidecache;
let port: number;
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

before(async () => {
  origin = await startOrigin((req, res) => {
    res.end(JSON.stringify(req.headers));
  });
  sc = await startTestSidecache({
    routes: [{ name: 'api', origin: origin.url }],
    proxy: {
      auth: {
        enabled: true,
        users: [{ name: 'app', passwordSha256: createHash('sha256').update('s3cret').digest('hex') }],
      },
    },
  });
  port = Number(new URL(sc.url).port);
});
after(async () => {
  await sc.close();
  await origin.close();
});

describe('proxy authentication', () => {
  it('a forward request without credentials: 407 with Proxy-Authenticate', async () => {
    const res = await send(sc.url, `${origin.url}/x`);
    assert.equal(res.status, 407);
    assert.equal(res.headers['proxy-authenticate'], 'Basic realm="sidecache"');
    assert.equal(res.json().error, 'SC_ERR_PROXY_AUTH_REQUIRED');
  });

  for (const [name, header] of [
    ['wrong password', basic('app', 'nope')],
    ['unknown user', basic('eve', 's3cret')],
    ['not Basic', 'Bearer s3cret'],
    ['no colon', `Basic ${Buffer.from('app').toString('base64')}`],
  ] as const) {
    it(`${name}: 407`, async () => {
      const res = await send(sc.url, `${origin.url}/x`, { headers: { 'proxy-authorization': header } });
      assert.equal(res.status, 407);
    });
  }

  it('right credentials: admitted, and Proxy-Authorization is not forwarded', async () => {
    const res = await send(sc.url, `${origin.url}/x`, {
      headers: { 'proxy-authorization': basic('app', 's3cret') },
    });
    assert.equal(res.status, 200);
    assert.equal(res.json()['proxy-authorization'], undefined);
  });

  it('CONNECT without credentials: 407 with Proxy-Authenticate, no tunnel', async () => {
    const res = await sendRaw(port, `CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(res.status, 407, res.raw);
    assert.match(res.head, /proxy-authenticate: Basic realm="sidecache"/i);
  });

  it('reverse routes are not asked by default (modes: forward, tunnel)', async () => {
    const res = await send(sc.url, '/api/x');
    assert.equal(res.status, 200);
  });
});

/** A forward request from `localAddress` (any 127.0.0.0/8 address is this machine on Linux). */
function fromAddress(localAddress: string, target: string, authorization?: string) {
  const { hostname, port: p } = new URL(sc.url);
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
    (resolve, reject) => {
      const req = http.request(
        {
          host: hostname,
          port: p,
          path: target,
          localAddress,
          agent: false,
          headers: authorization ? { 'proxy-authorization': authorization } : {},
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end();
    },
  );
}

describe('proxy authentication back-off (defaults: 5 failures, then 1 s doubling)', () => {
  const guess = (address: string, pass: string) =>
    fromAddress(address, `${origin.url}/g`, basic('app', pass));
  const metric = async (name: string) => {
    const text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
    return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  };

  it('after 5 wrong guesses an address gets 429 with Retry-After, even for the right password', async () => {
    const reached = origin.requests.length;
    for (let i = 0; i < 5; i++)
      assert.equal((await guess('127.0.0.3', `wrong${i}`)).status, 407, `guess ${i}`);
    const blocked = await guess('127.0.0.3', 's3cret');
    assert.equal(blocked.status, 429, blocked.body);
    const body = JSON.parse(blocked.body) as Record<string, unknown>;
    assert.equal(body.error, 'SC_ERR_PROXY_AUTH_THROTTLED');
    assert.equal(body.reason, 'proxy_auth_throttled');
    assert.equal(blocked.headers['retry-after'], '1');
    assert.equal(origin.requests.length, reached, 'nothing reached the origin');
    assert.ok((await metric('sidecache_proxy_auth_failures_total')) >= 5);
    assert.ok((await metric('sidecache_proxy_auth_throttled_total')) >= 1);

    // Another address is not held back.
    assert.equal((await guess('127.0.0.4', 's3cret')).status, 200);
    // Asking without credentials (the first step of the challenge) is not a guess: still 407.
    assert.equal((await fromAddress('127.0.0.3', `${origin.url}/g`)).status, 407);

    // The back-off ends; the next failure doubles it.
    await new Promise((r) => setTimeout(r, 1_100));
    assert.equal((await guess('127.0.0.3', 'wrong5')).status, 407);
    const longer = await guess('127.0.0.3', 's3cret');
    assert.equal(longer.status, 429);
    assert.equal(longer.headers['retry-after'], '2');

    // After it, the right password is admitted and the failures are forgotten.
    await new Promise((r) => setTimeout(r, 2_100));
    assert.equal((await guess('127.0.0.3', 's3cret')).status, 200);
    for (let i = 0; i < 4; i++) assert.equal((await guess('127.0.0.3', `again${i}`)).status, 407);
    assert.equal((await guess('127.0.0.3', 's3cret')).status, 200);
  });

  it('a guessing loop gets at most a handful of answers checked per second', async () => {
    const statuses = new Map<number, number>();
    const until = Date.now() + 1_000;
    for (let i = 0; i < 2_000 && Date.now() < until; i++) {
      const { status } = await guess('127.0.0.5', `loop${i}`);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    assert.equal(statuses.get(407), 5, JSON.stringify([...statuses]));
    assert.ok((statuses.get(429) ?? 0) > 0);
  });
});
