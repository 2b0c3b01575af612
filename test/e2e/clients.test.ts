/**
 * Real clients, pointed at sidecache the way users do it: curl -x, Python requests with
 * HTTP_PROXY, Node fetch through undici's ProxyAgent-free reverse route.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { hasPythonRequests, PYTHON } from '../helpers/python.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';

const run = promisify(execFile);

describe('real clients through sidecache', () => {
  let origin: TestOrigin;
  let sc: TestSidecache;

  before(async () => {
    origin = await startOrigin((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url, via: req.headers.via ?? null }));
    });
    sc = await startTestSidecache({ routes: [{ name: 'api', origin: origin.url }] });
  });
  after(async () => {
    await sc?.close();
    await origin?.close();
  });

  it('curl -x (forward proxy) and curl to a reverse route', async () => {
    const forward = await run('curl', ['-sS', '--fail', '-x', sc.url, `${origin.url}/users/1?x=y`]);
    const f = JSON.parse(forward.stdout) as { path: string; via: string };
    assert.equal(f.path, '/users/1?x=y');
    assert.match(f.via, /sidecache/);
    const reverse = await run('curl', ['-sS', '--fail', `${sc.url}/api/users/2`]);
    assert.equal((JSON.parse(reverse.stdout) as { path: string }).path, '/users/2');
    const denied = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-x',
      sc.url,
      'http://127.0.0.9:1/',
    ]);
    assert.equal(denied.stdout, '403');
  });

  it('curl with Expect: 100-continue gets its 100 and the upload reaches the origin', async () => {
    const out = await run('curl', [
      '-sS',
      '--fail',
      '-H',
      'Expect: 100-continue',
      '--data-binary',
      'x'.repeat(4096),
      '-w',
      '\\n%{http_code}',
      `${sc.url}/api/upload`,
    ]);
    const [body, code] = out.stdout.split('\n');
    assert.equal(code, '200');
    assert.equal((JSON.parse(body as string) as { path: string }).path, '/upload');
  });

  it('Python requests with HTTP_PROXY', async (t) => {
    if (!(await hasPythonRequests())) {
      if (process.env.CI) assert.fail('python3-requests is required in CI (.ci/run installs it)');
      t.skip('python3-requests not installed');
      return;
    }
    const script = [
      'import os, requests, json',
      'r = requests.get(os.environ["TARGET"], timeout=10)',
      'print(json.dumps({"status": r.status_code, "body": r.json(), "via": r.headers.get("via")}))',
    ].join('\n');
    const { stdout } = await run(PYTHON, ['-c', script], {
      env: {
        PATH: process.env.PATH ?? '',
        HTTP_PROXY: sc.url,
        NO_PROXY: '',
        TARGET: `${origin.url}/from/python`,
      },
    });
    const out = JSON.parse(stdout) as { status: number; body: { path: string }; via: string };
    assert.equal(out.status, 200);
    assert.equal(out.body.path, '/from/python');
    assert.match(out.via, /sidecache/);
  });

  it("Node: undici's ProxyAgent in forward (absolute-form) mode", async () => {
    const { ProxyAgent, request } = await import('undici');
    const dispatcher = new ProxyAgent({ uri: sc.url, proxyTunnel: false });
    try {
      const res = await request(`${origin.url}/via/undici`, { dispatcher });
      assert.equal(res.statusCode, 200);
      const body = (await res.body.json()) as { path: string; via: string };
      assert.equal(body.path, '/via/undici');
      assert.match(body.via, /sidecache/);
    } finally {
      await dispatcher.close();
    }
  });

  it('Node fetch to a reverse route (an SDK base URL pointed at sidecache)', async () => {
    const res = await fetch(`${sc.url}/api/repos?page=3`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { path: string }).path, '/repos?page=3');
  });
});
