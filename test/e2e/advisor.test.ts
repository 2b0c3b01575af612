/**
 * The policy advisor end to end (issue 22): seed-like origins on loopback, traffic through
 * flags-only routes, `sidecache report --suggest-config FILE`, `check-config` on it, and `serve
 * --config FILE`: the stable endpoints become hits with the origin's own answers, per credential;
 * the changing one is never cached. The real CLI, spawned.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import type { Advice } from '../../src/advisor/suggest.js';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { runCli, type SidecacheProcess, spawnSidecache } from '../helpers/sidecache.js';

const TOKENS = ['sk_test_alice_0001', 'sk_test_bob_0002'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Every request is bounded: a proxy that stops answering fails the test instead of hanging it. */
const REQUEST_MS = 10_000;
/** The whole test (it takes about 20 s): past this it fails and the after hook stops everything. */
const TEST_MS = 120_000;
const json = async <T>(url: string): Promise<T> => {
  const res = await fetch(url, { signal: AbortSignal.timeout(REQUEST_MS) });
  const text = await res.text();
  assert.equal(res.status, 200, `${url}: ${text}`);
  return JSON.parse(text) as T;
};

/** What the origin answers, by path and credential (bodies differ per credential). */
let counter = 0;
function originAnswer(
  path: string,
  auth: string | undefined,
): { status: number; headers: Record<string, string>; body: string } {
  const who = auth?.replace(/^Bearer /, '') ?? null;
  if (path === '/v1/plans') {
    if (who === null)
      return { status: 401, headers: { 'content-type': 'application/json' }, body: '{"error":"no key"}' };
    return {
      status: 200,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-cache, no-store' },
      body: JSON.stringify({
        object: 'list',
        account: `acct_${who}`,
        data: [{ id: 'plan_basic', amount: 500 }],
      }),
    };
  }
  const user = /^\/users\/(\d+)$/.exec(path);
  if (user)
    return {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: Number(user[1]), name: `user ${user[1]}` }),
    };
  if (path === '/time')
    return { status: 200, headers: { 'content-type': 'text/plain' }, body: `tick ${++counter}` };
  if (path === '/repos/octo/hello') {
    if (who === null)
      return {
        status: 401,
        headers: { 'content-type': 'application/json' },
        body: '{"message":"Requires authentication"}',
      };
    const body = JSON.stringify({ full_name: 'octo/hello', viewer: who, open_issues: 3 });
    return {
      status: 200,
      headers: {
        'content-type': 'application/json',
        'cache-control': 'private',
        etag: `"v1-${who}"`,
        vary: 'Accept, Authorization',
      },
      body,
    };
  }
  return { status: 404, headers: {}, body: 'not found' };
}

describe('policy advisor: flags-only traffic → suggested config → hits', () => {
  let dir: string;
  let origin: TestOrigin;
  let first: SidecacheProcess | null = null;
  let second: SidecacheProcess | null = null;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sc-advisor-'));
    origin = await startOrigin(async (req, res) => {
      await sleep(15); // a slow third-party API
      const a = originAnswer(req.url ?? '/', req.headers.authorization);
      if (a.headers.etag && req.headers['if-none-match'] === a.headers.etag) {
        res.writeHead(304, { etag: a.headers.etag, 'cache-control': 'private' }).end();
        return;
      }
      res.writeHead(a.status, a.headers).end(a.body);
    });
  });
  // Each step runs even when one before it failed; a child that ignores SIGTERM is killed.
  after(async () => {
    const steps = [() => first?.stop(), () => second?.stop(), () => origin?.close()];
    for (const step of steps) await Promise.resolve(step()).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  const routes = () => [
    '--route',
    `stripe=${origin.url}`,
    '--route',
    `users=${origin.url}`,
    '--route',
    `gh=${origin.url}`,
  ];
  const ENDPOINTS: { path: string; creds: (string | undefined)[] }[] = [
    { path: '/stripe/v1/plans', creds: TOKENS },
    { path: '/users/users/42', creds: [undefined] },
    { path: '/users/users/43', creds: [undefined] },
    { path: '/users/time', creds: [undefined] },
    { path: '/gh/repos/octo/hello', creds: TOKENS },
  ];
  /** A GET whose body is always read (an unread body would hold the connection open). */
  type Answer = { status: number; body: string; cache: string };
  const get = async (base: string, path: string, token: string | undefined): Promise<Answer> => {
    const res = await fetch(`${base}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(REQUEST_MS),
    });
    return { status: res.status, body: await res.text(), cache: res.headers.get('cache-status') ?? '' };
  };

  it('suggests caching the stable endpoints per credential, never the changing one, in a config that loads and serves hits', {
    timeout: TEST_MS,
  }, async () => {
    first = await spawnSidecache([...routes()]);
    // Three rounds a little over a second apart: bodies seen unchanged for over 2 s.
    for (let round = 0; round < 3; round++) {
      if (round > 0) await sleep(1_100);
      for (const e of ENDPOINTS)
        for (const c of e.creds) {
          const res = await get(first.url, e.path, c);
          assert.equal(res.status, 200, `${e.path}: ${res.body}`);
        }
    }
    const advice = await json<Advice>(`${first.adminUrl}/advice.json`);
    const by = (route: string, template: string) =>
      advice.suggestions.find((s) => s.route === route && s.template === template);
    const plans = by('stripe', '/v1/plans');
    assert.ok(plans, JSON.stringify(advice, null, 2));
    assert.ok(plans.ignoreNoStore && plans.storePrivate && plans.perCredential && plans.ttlMs >= 1000);
    assert.match(plans.evidence, /6 calls/);
    assert.ok(plans.savedSeconds > 0);
    const users = by('users', '/users/{}');
    assert.ok(users && !users.storePrivate && !users.ignoreNoStore && users.ttlMs >= 1000);
    const repo = by('gh', '/repos/octo/hello');
    assert.ok(repo?.storePrivate && repo.perCredential);
    assert.equal(
      advice.suggestions.some((s) => s.template === '/time'),
      false,
    );
    assert.match(advice.notSuggested.find((n) => n.template === '/time')?.why ?? '', /changed/);

    const report = await runCli(['report', '--admin', first.adminUrl]);
    assert.equal(report.code, 0, report.stderr);
    assert.match(report.stdout, /suggested cache policy/);
    assert.match(report.stdout, /stripe \/v1\/plans: ttlMs \d+, ignoreNoStore, storePrivate/);
    const status = await json<{ suggestions: string[] }>(`${first.adminUrl}/status.json`);
    assert.ok(status.suggestions.some((l) => l.startsWith('users /users/{}')));

    const file = join(dir, 'suggested.yaml');
    const wrote = await runCli(['report', '--admin', first.adminUrl, '--suggest-config', file]);
    assert.equal(wrote.code, 0, wrote.stderr);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /# advisor: \/v1\/plans: lifetime .* calls/);
    for (const t of TOKENS) assert.equal(text.includes(t), false, 'no credential in the config');
    const cfg = parse(text) as {
      routes: {
        name: string;
        cache?: {
          storePrivate?: boolean;
          paths?: { prefix: string; ttlMs: number; ignoreNoStore?: boolean }[];
        };
      }[];
    };
    const route = (n: string) => cfg.routes.find((r) => r.name === n);
    assert.equal(route('stripe')?.cache?.storePrivate, true);
    assert.deepEqual(
      route('stripe')?.cache?.paths?.map((p) => [p.prefix, p.ignoreNoStore]),
      [['/v1/plans', true]],
    );
    assert.deepEqual(
      route('users')?.cache?.paths?.map((p) => p.prefix),
      ['/users/'],
    );
    assert.equal(route('gh')?.cache?.storePrivate, true);
    const check = await runCli(['check-config', '--config', file]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    await first.stop();
    first = null;

    second = await spawnSidecache(['--config', file]);
    for (const e of ENDPOINTS) {
      for (const c of e.creds) {
        const answers: Answer[] = [await get(second.url, e.path, c), await get(second.url, e.path, c)];
        const routePath = e.path.replace(/^\/[a-z]+/, '');
        if (routePath === '/time') {
          assert.ok(
            answers.every((a) => !/;\s*hit/.test(a.cache)),
            JSON.stringify(answers),
          );
          assert.notEqual(answers[0]?.body, answers[1]?.body);
          continue;
        }
        const expected = originAnswer(routePath, c ? `Bearer ${c}` : undefined);
        for (const a of answers) {
          assert.equal(a.status, 200);
          assert.equal(a.body, expected.body, `${e.path} for ${c}: the origin's own answer for this caller`);
        }
        assert.match(answers[1]?.cache ?? '', /;\s*hit/, `${e.path} for ${c}: ${answers[1]?.cache}`);
      }
    }
    // No credential of one caller reaches another, nor a caller without one.
    for (const path of ['/stripe/v1/plans', '/gh/repos/octo/hello']) {
      const anon = await get(second.url, path, undefined);
      assert.equal(anon.status, 401);
      assert.doesNotMatch(anon.body, /alice|bob/);
    }
  });
});
