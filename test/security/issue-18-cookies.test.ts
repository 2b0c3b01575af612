/**
 * Issue 18, finding 3: a `public, max-age` answer to `Cookie: session=AAA` was served to
 * `Cookie: session=BBB` (cookies counted only when a route listed them in `credentialCookies`).
 * Now a response fetched with cookies is stored under those cookies only; an entry fetched without
 * cookies still answers a request that carries some (the cache-tests `other-cookie` case); a route
 * may say `cookies: ignore`. Real origin on loopback, curl through a real sidecache.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';

const run = promisify(execFile);

interface Answer {
  readonly body: string;
  readonly cacheStatus: string;
}

async function curl(url: string, cookie?: string): Promise<Answer> {
  const args = [
    '-sS',
    '--fail',
    '-D',
    '-',
    ...(cookie === undefined ? [] : ['-H', `Cookie: ${cookie}`]),
    url,
  ];
  const { stdout } = await run('curl', args);
  const split = stdout.indexOf('\r\n\r\n');
  const head = stdout.slice(0, split);
  return {
    body: stdout.slice(split + 4),
    cacheStatus: /^cache-status: (.*)$/im.exec(head)?.[1]?.trim() ?? '',
  };
}

describe('issue 18: cookie-authenticated answers are not shared', () => {
  let origin: TestOrigin;
  let sc: TestSidecache;

  before(async () => {
    origin = await startOrigin((req, res) => {
      const session = /session=([^;]+)/.exec(String(req.headers.cookie ?? ''))?.[1] ?? 'anon';
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' });
      res.end(`for:${session}`);
    });
    sc = await startTestSidecache({
      routes: [
        { name: 'o', origin: origin.url },
        { name: 'ignore', origin: origin.url, cache: { cookies: 'ignore' } },
        { name: 'named', origin: origin.url, cache: { credentialCookies: ['session'] } },
      ],
    });
  });
  after(async () => {
    await sc?.close();
    await origin?.close();
  });

  it("the repro: session=BBB never gets session=AAA's answer, nor does a client without cookies", async () => {
    const a = await curl(`${sc.url}/o/me`, 'session=AAA');
    assert.equal(a.body, 'for:AAA');
    const b = await curl(`${sc.url}/o/me`, 'session=BBB');
    assert.equal(b.body, 'for:BBB', `session=BBB got ${b.body}`);
    // Cache-Status says why it missed: the request was keyed by its cookies.
    assert.match(b.cacheStatus, /^sidecache; fwd=uri-miss; fwd-status=200; ttl=\d+; detail=cookie$/);
    // Each caller's own entry is still a hit for that caller.
    const again = await curl(`${sc.url}/o/me`, 'session=AAA');
    assert.equal(again.body, 'for:AAA');
    assert.match(again.cacheStatus, /^sidecache; hit/);
    const other = await curl(`${sc.url}/o/me`, 'session=AAA; theme=dark');
    assert.equal(other.body, 'for:AAA');
    assert.match(other.cacheStatus, /fwd=uri-miss.*detail=cookie/, 'another Cookie header is another caller');
    const plain = await curl(`${sc.url}/o/me`);
    assert.equal(plain.body, 'for:anon', `a client without cookies got ${plain.body}`);
    assert.match(plain.cacheStatus, /fwd=uri-miss/);
    assert.equal(origin.requests.filter((r) => r.url === '/me').length, 4);
  });

  it('an entry fetched without cookies still answers a request that carries one', async () => {
    const plain = await curl(`${sc.url}/o/shared`);
    assert.equal(plain.body, 'for:anon');
    const withCookie = await curl(`${sc.url}/o/shared`, 'session=CCC');
    assert.equal(withCookie.body, 'for:anon');
    assert.match(withCookie.cacheStatus, /^sidecache; hit/);
    assert.equal(origin.requests.filter((r) => r.url === '/shared').length, 1);
  });

  it('a route with cookies: ignore shares answers whatever the cookies', async () => {
    assert.equal((await curl(`${sc.url}/ignore/ign`, 'session=AAA')).body, 'for:AAA');
    const b = await curl(`${sc.url}/ignore/ign`, 'session=BBB');
    assert.equal(b.body, 'for:AAA');
    assert.match(b.cacheStatus, /^sidecache; hit/);
  });

  it('a route naming credentialCookies keys by those cookies only', async () => {
    assert.equal((await curl(`${sc.url}/named/nam`, 'session=AAA; theme=dark')).body, 'for:AAA');
    const light = await curl(`${sc.url}/named/nam`, 'theme=light; session=AAA');
    assert.equal(light.body, 'for:AAA');
    assert.match(light.cacheStatus, /^sidecache; hit/);
    assert.equal((await curl(`${sc.url}/named/nam`, 'session=BBB; theme=dark')).body, 'for:BBB');
  });
});
