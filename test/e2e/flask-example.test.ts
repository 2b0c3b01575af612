/**
 * examples/flask-app/app.py, run as users run it outside Docker (/usr/bin/python3 with Debian's
 * python3-flask and python3-requests), with HTTP_PROXY pointed at sidecache and its API base URLs
 * at three fake APIs on loopback (GitHub-, Stripe- and user-service-like, each answering after a
 * small delay). The page must show data from all three, and every API request must have come
 * through sidecache (its Via).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { freePort } from '../helpers/ports.js';
import { hasFlask } from '../helpers/python.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';

const _run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const APP = fileURLToPath(new URL('../../examples/flask-app/app.py', import.meta.url));
const DELAY_MS = 15;

/** A fake API: JSON answers by path after DELAY_MS, with the given Cache-Control. */
function fakeApi(routes: Record<string, unknown>, cacheControl: string | null): Promise<TestOrigin> {
  return startOrigin(async (req, res) => {
    await sleep(DELAY_MS);
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const body = routes[path];
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (cacheControl) headers['cache-control'] = cacheControl;
    res.writeHead(body === undefined ? 404 : 200, headers);
    res.end(JSON.stringify(body ?? { error: 'not found' }));
  });
}

const vias = (o: TestOrigin) => o.requests.map((r: IncomingMessage) => r.headers.via ?? '');

describe('examples/flask-app through sidecache', () => {
  let available = false;
  let github: TestOrigin;
  let stripe: TestOrigin;
  let users: TestOrigin;
  let sc: TestSidecache;
  let app: ChildProcess | undefined;
  let appUrl = '';
  let appOutput = '';

  before(async () => {
    available = await hasFlask();
    if (!available) return;
    github = await fakeApi(
      {
        '/repos/acme/widgets': {
          full_name: 'acme/widgets',
          description: 'Widgets galore',
          stargazers_count: 4321,
        },
        '/repos/acme/widgets/releases': [{ tag_name: 'v9.9.9' }, { tag_name: 'v9.9.8' }],
      },
      'public, max-age=60',
    );
    stripe = await fakeApi(
      {
        '/v1/balance': { available: [{ amount: 4242, currency: 'eur' }] },
        '/v1/customers': { data: [{ email: 'first@customer.test' }, { email: 'second@customer.test' }] },
      },
      'no-cache, no-store',
    );
    users = await fakeApi(
      {
        '/api/v1/users': { users: [{ id: 1 }, { id: 2 }] },
        '/api/v1/users/1': { name: 'Ada Example', team: 'platform' },
        '/api/v1/users/2': { name: 'Grace Example', team: 'payments' },
      },
      null,
    );
    sc = await startTestSidecache({
      routes: [
        { name: 'github', origin: github.url },
        { name: 'stripe', origin: stripe.url },
        { name: 'users', origin: users.url },
      ],
    });
    const port = await freePort();
    appUrl = `http://127.0.0.1:${port}`;
    // A clean environment: no proxy variables of ours leak in (lower-case ones included).
    app = spawn(PYTHON, [APP], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        PYTHONDONTWRITEBYTECODE: '1',
        PYTHONUNBUFFERED: '1',
        HOST: '127.0.0.1',
        PORT: String(port),
        HTTP_PROXY: sc.url,
        NO_PROXY: '',
        GITHUB_API: github.url,
        GITHUB_REPO: 'acme/widgets',
        STRIPE_API: stripe.url,
        USERS_API: `${users.url}/api`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    app.stdout?.on('data', (d: Buffer) => {
      appOutput += d.toString();
    });
    app.stderr?.on('data', (d: Buffer) => {
      appOutput += d.toString();
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (app.exitCode !== null) throw new Error(`app.py exited with ${app.exitCode}:\n${appOutput}`);
      try {
        if ((await fetch(`${appUrl}/healthz`)).ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`app.py did not answer in 20 s:\n${appOutput}`);
      await sleep(100);
    }
  });

  after(async () => {
    if (app && app.exitCode === null) {
      app.kill('SIGTERM');
      await once(app, 'exit');
    }
    await sc?.close();
    await Promise.all([github?.close(), stripe?.close(), users?.close()]);
  });

  it('renders the overview from all three APIs, every call through sidecache', async (t) => {
    if (!available) {
      if (process.env.CI === 'true')
        assert.fail('python3-flask and python3-requests are required in CI (.ci/run)');
      t.skip(
        'python3-flask or python3-requests not installed (apt-get install python3-flask python3-requests)',
      );
      return;
    }
    const res = await fetch(`${appUrl}/`);
    const page = await res.text();
    assert.equal(res.status, 200, page);
    for (const text of [
      'acme/widgets',
      'Widgets galore',
      'v9.9.9',
      '4242 eur',
      'first@customer.test',
      'Ada Example (platform)',
      'Grace Example (payments)',
    ]) {
      assert.ok(page.includes(text), `page lacks ${JSON.stringify(text)}:\n${page}`);
    }
    assert.doesNotMatch(page, /class="error"/);
    for (const origin of [github, stripe, users]) {
      assert.ok(origin.requests.length > 0);
      for (const via of vias(origin))
        assert.match(via, /sidecache/, 'the API request came through sidecache');
    }
    assert.equal(github.requests.length, 2);
    assert.equal(stripe.requests.length, 2);
    assert.equal(users.requests.length, 3);
  });

  it('a second page load is served GitHub data from the cache (public, max-age=60)', async (t) => {
    if (!available) {
      t.skip('python3-flask not installed');
      return;
    }
    const before = { github: github.requests.length, stripe: stripe.requests.length };
    const res = await fetch(`${appUrl}/overview.json`);
    const overview = (await res.json()) as {
      sections: Record<string, { ok: boolean }>;
      calls: Array<{ url: string; via: string | null; cache_status: string | null }>;
    };
    assert.ok(Object.values(overview.sections).every((s) => s.ok));
    for (const call of overview.calls) assert.match(call.via ?? '', /sidecache/, call.url);
    assert.equal(github.requests.length, before.github, 'GitHub answers came from the cache');
    assert.equal(stripe.requests.length, before.stripe + 2, 'no-store Stripe answers were fetched again');
    const githubCalls = overview.calls.filter((c) => c.url.startsWith(github.url));
    for (const call of githubCalls) assert.match(call.cache_status ?? '', /sidecache; hit/);
  });
});
