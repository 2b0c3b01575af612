/**
 * Proxy authentication: Basic credentials checked for forward requests and CONNECT (the default
 * modes), 407 with Proxy-Authenticate otherwise; the credentials never reach the origin.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
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
