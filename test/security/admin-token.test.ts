/** admin.token: every admin endpoint but /healthz and /readyz needs the bearer token (real HTTP). */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { CLI, startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';

const TOKEN = 'test-admin-token-0123456789abcdef';
const run = promisify(execFile);

async function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await fetch(url, { method, headers });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

describe('admin bearer token', () => {
  let sc: TestSidecache;
  let open: TestSidecache;
  before(async () => {
    sc = await startTestSidecache({ admin: { token: TOKEN } });
    open = await startTestSidecache();
  });
  after(async () => {
    await sc?.close();
    await open?.close();
  });

  test('probes stay open without a token', async () => {
    assert.equal((await get(`${sc.adminUrl}/healthz`)).status, 200);
    assert.equal((await get(`${sc.adminUrl}/readyz`)).status, 200);
    assert.equal((await get(`${sc.adminUrl}/healthz?x=1`)).status, 200);
  });

  for (const path of ['/metrics', '/', '/status.json', '/ca.pem', '/nope', '/healthz/', '//healthz']) {
    test(`${path} without a token: 401 with WWW-Authenticate`, async () => {
      const r = await get(`${sc.adminUrl}${path}`);
      assert.equal(r.status, 401);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="sidecache-admin"');
      assert.doesNotMatch(r.body, new RegExp(TOKEN));
    });
  }

  test('POST /purge without a token: 401', async () => {
    const r = await get(`${sc.adminUrl}/purge`, {}, 'POST');
    assert.equal(r.status, 401);
  });

  test('wrong, truncated, longer or non-Bearer credentials: 401', async () => {
    for (const authorization of [
      'Bearer wrong',
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN}x`,
      `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`,
      TOKEN,
      'Bearer',
      `Bearer ${TOKEN} extra`,
    ]) {
      const r = await get(`${sc.adminUrl}/metrics`, { authorization });
      assert.equal(r.status, 401, authorization);
    }
  });

  test('the right token opens every endpoint', async () => {
    const r = await get(`${sc.adminUrl}/metrics`, { authorization: `Bearer ${TOKEN}` });
    assert.equal(r.status, 200);
    assert.match(r.body, /sidecache_/);
    assert.equal((await get(`${sc.adminUrl}/status.json`, { authorization: `bearer ${TOKEN}` })).status, 200);
  });

  test('without admin.token the admin listener is open as before', async () => {
    assert.equal((await get(`${open.adminUrl}/metrics`)).status, 200);
  });

  test('sidecache report sends --token, or SIDECACHE_ADMIN_TOKEN', async () => {
    const base = [process.execPath, ['--import', 'tsx', CLI, 'report', '--admin', sc.adminUrl]] as const;
    const withFlag = await run(base[0], [...base[1], '--token', TOKEN], { timeout: 30_000 });
    assert.match(withFlag.stdout, /^sidecache at /);
    const withEnv = await run(base[0], [...base[1]], {
      timeout: 30_000,
      env: { ...process.env, SIDECACHE_ADMIN_TOKEN: TOKEN },
    });
    assert.match(withEnv.stdout, /^sidecache at /);
    const { SIDECACHE_ADMIN_TOKEN: _, ...env } = process.env;
    await assert.rejects(
      run(base[0], [...base[1]], { timeout: 30_000, env }),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /401: it needs a token/);
        return true;
      },
    );
  });
});

describe('admin.token configuration', () => {
  test('SIDECACHE_ADMIN_TOKEN sets admin.token', () => {
    const { config } = loadConfig({ env: { SIDECACHE_ADMIN_TOKEN: TOKEN } });
    assert.equal(config.admin.token, TOKEN);
    assert.equal(loadConfig({ env: {} }).config.admin.token, null);
  });

  test('a short token is refused, and the message does not repeat it', () => {
    assert.throws(
      () => loadConfig({ env: { SIDECACHE_ADMIN_TOKEN: 'short-secret' } }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /admin\.token/);
        assert.doesNotMatch(err.message, /short-secret/);
        return true;
      },
    );
  });
});
