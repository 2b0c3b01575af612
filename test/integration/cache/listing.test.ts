/**
 * What is cached: admin `GET /cache` and `sidecache cache ls`, against real origins. The listing
 * counts credential-keyed responses but never shows a credential, its hash, a key header's value
 * or a credential-like query value.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { CacheListing, CacheListRow } from '../../../src/admin/cache-list.js';
import { send } from '../../helpers/client.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { CLI, startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';

const ADMIN_TOKEN = 'admin-token-for-the-listing-test';
const SECRETS = ['sk_live_TOPSECRET1', 'sk_live_TOPSECRET2', 'QUERYSECRET99', 'acct_KEYHEADERVALUE'];

async function cacheLs(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'cache', 'ls', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SIDECACHE_ADMIN_TOKEN: '' },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  return { code, out, err };
}

describe('the cache listing', () => {
  let origin: TestOrigin;
  let longOrigin: TestOrigin;
  let sc: TestSidecache;

  before(async () => {
    origin = await startOrigin((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/private') {
        res.writeHead(200, { 'cache-control': 'private, max-age=60', 'content-type': 'text/plain' });
        res.end(`for ${String(req.headers.authorization).length}`);
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }).end('public body');
    });
    longOrigin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' }).end('long');
    });
    sc = await startTestSidecache({
      admin: { token: ADMIN_TOKEN },
      routes: [
        {
          name: 'api',
          origin: origin.url,
          cache: { storePrivate: true, keyHeaders: ['x-account'] },
        },
        { name: 'long', origin: longOrigin.url, cache: { ttlMs: 300_000 } },
      ],
    });
    const get = async (path: string, headers: Record<string, string> = {}): Promise<void> => {
      const res = await send(sc.url, path, { headers });
      assert.equal(res.status, 200, `${path}: ${res.text()}`);
    };
    await get('/api/public');
    await get('/api/public');
    await get('/api/public');
    await get('/api/private', { authorization: `Bearer ${SECRETS[0]}` });
    await get('/api/private', { authorization: `Bearer ${SECRETS[0]}` });
    await get('/api/private', { authorization: `Bearer ${SECRETS[1]}` });
    await get(`/api/search?q=cats&api_key=${SECRETS[2]}`);
    await get('/api/account', { 'x-account': SECRETS[3] as string });
    await get('/long/thing');
  });

  after(async () => {
    await sc.close();
    await origin.close();
    await longOrigin.close();
  });

  const list = async (
    query = '',
    token: string | null = ADMIN_TOKEN,
  ): Promise<{ status: number; text: string }> => {
    const res = await fetch(`${sc.adminUrl}/cache${query}`, {
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
    });
    return { status: res.status, text: await res.text() };
  };
  const row = (l: CacheListing, url: string): CacheListRow => {
    const found = l.entries.find((e) => e.url === url);
    assert.ok(found, `${url} listed in ${JSON.stringify(l.entries.map((e) => e.url))}`);
    return found;
  };

  test('one row per URL: variants, credential-keyed count, size, age, freshness left, hits', async () => {
    const { status, text } = await list();
    assert.equal(status, 200);
    const l = JSON.parse(text) as CacheListing;
    assert.equal(l.scope, 'memory');
    assert.equal(l.total, 5);
    assert.equal(l.truncated, false);
    assert.equal(l.storedResponses, 6);
    const pub = row(l, `${origin.url}/public`);
    assert.deepEqual(
      {
        route: pub.route,
        variants: pub.variants,
        perCredential: pub.perCredential,
        bytes: pub.bytes,
        hits: pub.hits,
      },
      { route: 'api', variants: 1, perCredential: 0, bytes: 'public body'.length, hits: 2 },
    );
    assert.ok(pub.ageS >= 0 && pub.ageS <= 5, `age ${pub.ageS}`);
    assert.ok(pub.ttlS > 50 && pub.ttlS <= 60, `ttl ${pub.ttlS}`);
    const priv = row(l, `${origin.url}/private`);
    assert.deepEqual(
      { variants: priv.variants, perCredential: priv.perCredential, hits: priv.hits },
      { variants: 2, perCredential: 2, hits: 1 },
    );
    // The route's ttlMs replaces the origin's max-age=60, and the listing says so.
    const long = row(l, `${longOrigin.url}/thing`);
    assert.equal(long.route, 'long');
    assert.ok(long.ttlS > 290 && long.ttlS <= 300, `ttl ${long.ttlS}`);
    row(l, `${origin.url}/search?q=cats&api_key=<redacted>`);
    row(l, `${origin.url}/account`);
  });

  test('no credential material: no token, no credential hash, no key header value, no secret query value', async () => {
    const { text } = await list('?limit=1000');
    for (const secret of SECRETS) assert.equal(text.includes(secret), false, `${secret} in ${text}`);
    assert.doesNotMatch(text, /[0-9a-f]{64}/, 'no sha256 hex');
    assert.doesNotMatch(text, /x-account/i);
  });

  test('route, prefix and limit filter; bad parameters are a 400 saying why', async () => {
    const byRoute = JSON.parse((await list('?route=long')).text) as CacheListing;
    assert.deepEqual(
      byRoute.entries.map((e) => e.url),
      [`${longOrigin.url}/thing`],
    );
    const byPrefix = JSON.parse(
      (await list(`?prefix=${encodeURIComponent(`${origin.url}/p`)}`)).text,
    ) as CacheListing;
    assert.deepEqual(
      byPrefix.entries.map((e) => e.url),
      [`${origin.url}/private`, `${origin.url}/public`],
    );
    // The prefix matches the URL as shown: a redacted value cannot be probed with it.
    const probe = JSON.parse(
      (await list(`?prefix=${encodeURIComponent(`${origin.url}/search?q=cats&api_key=Q`)}`)).text,
    ) as CacheListing;
    assert.equal(probe.total, 0);
    const limited = JSON.parse((await list('?limit=2')).text) as CacheListing;
    assert.equal(limited.entries.length, 2);
    assert.equal(limited.total, 5);
    assert.equal(limited.truncated, true);
    for (const [query, message] of [
      ['?limit=0', /limit: "0" is not a whole number from 1 to 1000/],
      ['?limit=5000', /limit/],
      ['?route=nope', /route: "nope" is not a configured route \(routes: api, long\)/],
      ['?url=x', /unknown parameter "url"/],
    ] as const) {
      const res = await list(query);
      assert.equal(res.status, 400, query);
      assert.match((JSON.parse(res.text) as { error: string }).error, message);
    }
  });

  test('the admin token is required', async () => {
    assert.equal((await list('', null)).status, 401);
    assert.equal((await list('', 'wrong')).status, 401);
  });

  test('sidecache cache ls prints the listing, and nothing secret', async () => {
    const table = await cacheLs(['--admin', sc.adminUrl, '--token', ADMIN_TOKEN, '--route', 'api']);
    assert.equal(table.code, 0, table.err);
    const lines = table.out.trim().split('\n');
    assert.match(lines[0] as string, /^URL +ROUTE +VARIANTS +CREDENTIAL +SIZE +AGE +TTL +HITS$/);
    assert.match(
      table.out,
      new RegExp(`^${origin.url}/private +api +2 +per-credential +\\d+ B +\\d+s +\\d+s +1$`, 'm'),
    );
    assert.match(table.out, new RegExp(`^${origin.url}/public +api +1 +- +11 B +\\d+s +\\d+s +2$`, 'm'));
    assert.match(lines.at(-1) as string, /^4 of 4 URLs shown; 6 stored responses in this process's memory/);
    for (const secret of SECRETS) assert.equal(table.out.includes(secret), false);
    const json = await cacheLs(['--admin', sc.adminUrl, '--token', ADMIN_TOKEN, '--json', '--limit', '1']);
    assert.equal(json.code, 0, json.err);
    assert.equal((JSON.parse(json.out) as CacheListing).entries.length, 1);
    // Without --admin: the admin listener and token serve would use, from the config file.
    const dir = mkdtempSync(join(tmpdir(), 'sidecache-cache-ls-'));
    try {
      const config = join(dir, 'sidecache.yaml');
      writeFileSync(
        config,
        `admin:\n  listen: 127.0.0.1:${new URL(sc.adminUrl).port}\n  token: ${ADMIN_TOKEN}\n`,
      );
      const fromConfig = await cacheLs(['--config', config, '--prefix', `${longOrigin.url}/`]);
      assert.equal(fromConfig.code, 0, fromConfig.err);
      assert.match(fromConfig.out, new RegExp(`^${longOrigin.url}/thing +long +1 `, 'm'));
      const fromFlag = await cacheLs([
        '--admin-listen',
        `127.0.0.1:${new URL(sc.adminUrl).port}`,
        '--token',
        ADMIN_TOKEN,
      ]);
      assert.equal(fromFlag.code, 0, fromFlag.err);
      assert.match(fromFlag.out, /^5 of 5 URLs shown/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const refused = await cacheLs(['--admin', sc.adminUrl]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /answered 401: it needs a token/);
  });
});
