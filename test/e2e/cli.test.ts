import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CLI } from '../helpers/sidecache.js';

const run = promisify(execFile);

function sidecache(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...process.env, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({
      code: err.code,
      stdout: err.stdout,
      stderr: err.stderr,
    }),
  );
}

describe('sidecache CLI', () => {
  it('check-config explains a valid config built from flags and environment', async () => {
    const out = await sidecache(
      ['check-config', '--route', 'github=https://api.github.com', '--allow', '*.example.com'],
      {
        SIDECACHE_LISTEN: '127.0.0.1:18080',
      },
    );
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^config OK/);
    assert.match(out.stdout, /proxy listens on 127\.0\.0\.1:18080/);
    assert.match(out.stdout, /route "github": path prefix \/github\/ \(stripped\)/);
    assert.match(out.stdout, /forward proxy may also reach: \*\.example\.com/);
  });

  it('check-config exits 2 naming the bad key, value and expectation', async () => {
    const out = await sidecache(['check-config', '--listen', 'nowhere']);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /SC_ERR_CONFIG/);
    assert.match(out.stderr, /listen: "nowhere": expected HOST:PORT/);
  });

  it('an unknown flag is refused with usage help', async () => {
    const out = await sidecache(['serve', '--lisen', '127.0.0.1:1']);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /Unknown argument: lisen/);
  });

  it('an error names its source: the flag, the variable, the file (issue 19)', async () => {
    const flag = await sidecache(['serve', '--listen', '127.0.0.1:32081x']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /^ {2}--listen: listen: "127\.0\.0\.1:32081x": expected HOST:PORT/m);
    assert.doesNotMatch(flag.stderr, /default\.yaml|port must be between/);
    const env = await sidecache(['serve'], { SIDECACHE_LISTEN: 'localhost' });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /^ {2}SIDECACHE_LISTEN: listen: "localhost": expected HOST:PORT/m);
    assert.doesNotMatch(env.stderr, /default\.yaml|port must be between/);
  });

  it('intercepting a host that is not allowed is refused by check-config, naming intercept and the host', async () => {
    const out = await sidecache(['check-config', '--intercept', 'api.stripe.com']);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /intercept\[0\]: "api\.stripe\.com" is not a route origin nor in "allow"/);
    const ok = await sidecache([
      'check-config',
      '--intercept',
      'api.stripe.com',
      '--allow',
      'api.stripe.com',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
  });
});
