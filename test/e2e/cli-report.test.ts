/**
 * `sidecache report` finds the admin listener the way `serve` does (issue 19): the config file,
 * SIDECACHE_ADMIN_LISTEN and --admin-listen, with the config's admin token; and each command's
 * --help lists only the options it uses. The real CLI, spawned, against a real instance.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../helpers/ports.js';
import { CLI, type SidecacheProcess, spawnSidecache } from '../helpers/sidecache.js';

const run = promisify(execFile);

function sidecache(args: string[], env: Record<string, string> = {}) {
  // A clean environment: no SIDECACHE_* of the caller's leaks into the command.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIDECACHE_')));
  return run(process.execPath, ['--import', 'tsx', CLI, ...args], {
    env: { ...base, ...env },
    timeout: 20_000,
  }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({
      code: err.code,
      stdout: err.stdout,
      stderr: err.stderr,
    }),
  );
}

const TOKEN = 'issue-19-report-token';

describe('sidecache report finds the admin listener like serve', () => {
  let dir: string;
  let file: string;
  let adminPort: number;
  let sc: SidecacheProcess;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sidecache-report-'));
    adminPort = await freePort();
    file = join(dir, 'sc.yaml');
    writeFileSync(
      file,
      `listen: 127.0.0.1:0\nadmin:\n  listen: 127.0.0.1:${adminPort}\n  token: ${TOKEN}\nlog:\n  level: info\n`,
    );
    sc = await spawnSidecache(['-c', file], {}, { configListeners: true });
    assert.equal(sc.adminUrl, `http://127.0.0.1:${adminPort}`);
  });
  after(async () => {
    await sc?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--config: the file’s admin.listen and admin.token', async () => {
    const out = await sidecache(['report', '--config', file, '--json']);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(typeof JSON.parse(out.stdout).requests, 'number');
    const text = await sidecache(['report', '-c', file]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^sidecache at http://127\\.0\\.0\\.1:${adminPort}`));
  });

  it('SIDECACHE_ADMIN_LISTEN (and SIDECACHE_ADMIN_TOKEN)', async () => {
    const out = await sidecache(['report'], {
      SIDECACHE_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
      SIDECACHE_ADMIN_TOKEN: TOKEN,
    });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, new RegExp(`^sidecache at http://127\\.0\\.0\\.1:${adminPort}`));
  });

  it('--admin-listen (a wildcard bind is reached on loopback)', async () => {
    const out = await sidecache(['report', '--admin-listen', `127.0.0.1:${adminPort}`, '--token', TOKEN]);
    assert.equal(out.code, 0, out.stderr);
    const wildcard = await sidecache(['report', '--admin-listen', `0.0.0.0:${adminPort}`, '--token', TOKEN]);
    assert.equal(wildcard.code, 0, wildcard.stderr);
    assert.match(wildcard.stdout, new RegExp(`^sidecache at http://127\\.0\\.0\\.1:${adminPort}`));
  });

  it('reads the listener it was told: a port with nothing on it is named in the error', async () => {
    const nothing = await freePort();
    const out = await sidecache(['report', '--admin-listen', `127.0.0.1:${nothing}`]);
    assert.equal(out.code, 1);
    assert.match(out.stderr, new RegExp(`cannot read http://127\\.0\\.0\\.1:${nothing}/metrics`));
  });

  it('--admin URL still works, and cannot be mixed with the config sources', async () => {
    const out = await sidecache(['report', '--admin', `http://127.0.0.1:${adminPort}`, '--token', TOKEN]);
    assert.equal(out.code, 0, out.stderr);
    const both = await sidecache(['report', '--admin', `http://127.0.0.1:${adminPort}`, '-c', file]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /mutually exclusive/);
  });

  it('a config whose admin listener is off says so', async () => {
    const off = join(dir, 'off.yaml');
    writeFileSync(off, 'admin:\n  enabled: false\n');
    const out = await sidecache(['report', '-c', off]);
    assert.equal(out.code, 1);
    assert.match(out.stderr, /admin listener is off .*admin\.enabled: false/);
  });
});

describe('each command lists only the options it uses', () => {
  const optionsOf = (help: string): string[] =>
    [...help.matchAll(/^\s+(?:-\w, )?--([\w-]+)/gm)].map((m) => m[1] as string).sort();

  it('report: admin, config, admin-listen, json, token, and the advisor and check options', async () => {
    const out = await sidecache(['report', '--help']);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(optionsOf(out.stdout), [
      'admin',
      'admin-listen',
      'check',
      'check-route',
      'config',
      'help',
      'json',
      'max-p99',
      'min-hit-ratio',
      'suggest-config',
      'token',
      'version',
    ]);
  });

  it('ca: config and ca-dir', async () => {
    const out = await sidecache(['ca', '--help']);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(optionsOf(out.stdout), ['ca-dir', 'config', 'help', 'version']);
  });

  it('serve and check-config: the config flags, not report’s', async () => {
    for (const command of ['serve', 'check-config']) {
      const out = await sidecache([command, '--help']);
      assert.equal(out.code, 0, out.stderr);
      const options = optionsOf(out.stdout);
      for (const o of ['config', 'listen', 'admin-listen', 'route', 'allow', 'intercept', 'ca-file']) {
        assert.ok(options.includes(o), `${command} lists --${o}`);
      }
      for (const o of ['admin', 'json', 'token']) assert.ok(!options.includes(o), `${command} omits --${o}`);
    }
  });

  it('an option of another command is refused', async () => {
    const out = await sidecache(['report', '--route', 'x=http://127.0.0.1:1']);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /Unknown argument: route/);
  });
});
