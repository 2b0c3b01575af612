import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../../../src/config/load.js';
import { compileRuntime } from '../../../src/config/runtime.js';
import { ConfigError } from '../../../src/errors.js';

function yamlFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-config-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, text);
  return file;
}

function configErrors(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'SC_ERR_CONFIG');
    return [...err.issues];
  }
  assert.fail('expected a ConfigError');
}

describe('config loading', () => {
  it('the embedded default config is valid and binds to loopback', () => {
    const { config, file } = loadConfig({ env: {} });
    assert.equal(file, DEFAULT_CONFIG_FILE);
    assert.equal(config.listen, '127.0.0.1:8080');
    assert.equal(config.admin.listen, '127.0.0.1:9090');
    assert.deepEqual(config.routes, []);
    assert.deepEqual(config.allow, []);
  });

  it('merges defaults < file < environment < flags', () => {
    const file = yamlFile(
      'listen: 127.0.0.1:1000\nlog: { level: debug }\nroutes:\n  - name: gh\n    origin: https://api.github.com\n',
    );
    const env = {
      SIDECACHE_LISTEN: '127.0.0.1:2000',
      SIDECACHE_ALLOW: 'a.example.com, b.example.com',
      SIDECACHE_LOG_LEVEL: 'warn',
    };
    const fromEnv = loadConfig({ file, env }).config;
    assert.equal(fromEnv.listen, '127.0.0.1:2000');
    assert.equal(fromEnv.log.level, 'warn');
    assert.deepEqual(fromEnv.allow, ['a.example.com', 'b.example.com']);
    const fromFlags = loadConfig({
      file,
      env,
      argv: {
        listen: '127.0.0.1:3000',
        route: ['gh=https://gh.example.com', 'stripe=https://api.stripe.com'],
        allow: ['c.example.com'],
      },
    }).config;
    assert.equal(fromFlags.listen, '127.0.0.1:3000');
    assert.equal(fromFlags.log.level, 'warn');
    assert.deepEqual(
      fromFlags.routes.map((r) => [r.name, r.origin]),
      [
        ['gh', 'https://gh.example.com'],
        ['stripe', 'https://api.stripe.com'],
      ],
    );
    assert.deepEqual(fromFlags.allow, ['a.example.com', 'b.example.com', 'c.example.com']);
    assert.equal(fromFlags.upstream.connectionsPerOrigin, 32, 'defaults fill what no source says');
  });

  it('SIDECACHE_CONFIG names the file when no --config is given', () => {
    const file = yamlFile('listen: 127.0.0.1:4321\n');
    assert.equal(loadConfig({ env: { SIDECACHE_CONFIG: file } }).config.listen, '127.0.0.1:4321');
  });

  it('an unknown key (a typo) is refused with a suggestion and the allowed keys', () => {
    const file = yamlFile('routes:\n  - name: gh\n    origin: https://api.github.com\n    prefx: /gh/\n');
    const [issue] = configErrors(() => loadConfig({ file, env: {} }));
    assert.match(
      issue ?? '',
      /routes\[0\]\.prefx: unknown key \(did you mean "prefix"\?\); expected one of: name, origin, prefix, hosts, upstream/,
    );
  });

  it('a rule across keys that points at a key left to its default shows no "undefined" value', () => {
    const file = yamlFile('cache:\n  maxSizeBytes: 1048576\n');
    const [issue] = configErrors(() => loadConfig({ file, env: {} }));
    assert.equal(issue, `${file}: cache.maxEntryBytes: maxEntryBytes must not exceed maxSizeBytes`);
  });

  it('a wrong type names the key, the value and what was expected', () => {
    const file = yamlFile('upstream:\n  connectionsPerOrigin: "lots"\n');
    const [issue] = configErrors(() => loadConfig({ file, env: {} }));
    assert.match(issue ?? '', /upstream\.connectionsPerOrigin: "lots" is string, expected number/);
  });

  it('an invalid value names the key and value', () => {
    const issues = configErrors(() =>
      loadConfig({ env: {}, argv: { route: ['gh=htp://x'], logLevel: 'loud' } }),
    );
    assert.ok(
      issues.some((i) => /routes\[0\]\.origin: "htp:\/\/x": expected an http\(s\) URL/.test(i)),
      issues.join('\n'),
    );
    assert.ok(
      issues.some((i) => /log\.level: "loud" is not one of "fatal"/.test(i)),
      issues.join('\n'),
    );
  });

  it('broken YAML is refused with file, line and column', () => {
    const file = yamlFile('listen: 127.0.0.1:8080\nroutes: [\n  { name: x\n');
    const [issue] = configErrors(() => loadConfig({ file, env: {} }));
    assert.match(issue ?? '', /config\.yaml:\d+:\d+: invalid YAML/);
  });

  it('a missing file is refused with its errno', () => {
    const [issue] = configErrors(() => loadConfig({ file: '/nonexistent/sidecache.yaml', env: {} }));
    assert.match(issue ?? '', /cannot read config file \(ENOENT\)/);
  });

  it('a --route that is not NAME=ORIGIN is refused', () => {
    const [issue] = configErrors(() => loadConfig({ env: {}, argv: { route: ['just-a-name'] } }));
    assert.match(issue ?? '', /route "just-a-name" is not NAME=ORIGIN/);
  });

  it('duplicate route names, prefixes and hosts are refused', () => {
    const file = yamlFile(
      'routes:\n  - { name: a, origin: "http://x.test", hosts: [h.test] }\n  - { name: a, origin: "http://y.test", prefix: /a/, hosts: [H.test] }\n',
    );
    const issues = configErrors(() => loadConfig({ file, env: {} }));
    assert.equal(issues.length, 3, issues.join('\n'));
  });

  it('a bad listen address is refused', () => {
    const [issue] = configErrors(() => loadConfig({ env: {}, argv: { listen: 'localhost' } }));
    assert.match(issue ?? '', /listen: "localhost": expected HOST:PORT/);
  });

  it('compiles routes: default prefix, merged upstream settings, explanations', () => {
    const file = yamlFile(
      'upstream: { connectionsPerOrigin: 9 }\nroutes:\n  - { name: gh, origin: "https://api.github.com/v3/", upstream: { http2: true } }\n  - { name: u, origin: "http://users.test:8000", prefix: false, hosts: [Users.Test] }\n',
    );
    const runtime = compileRuntime(loadConfig({ file, env: {} }).config);
    const [gh, users] = runtime.routes;
    assert.equal(gh?.prefix, '/gh/');
    assert.equal(gh?.basePath, '/v3');
    assert.equal(gh?.origin, 'https://api.github.com');
    assert.equal(gh?.upstream.connectionsPerOrigin, 9);
    assert.equal(gh?.upstream.http2, true);
    assert.equal(users?.prefix, null);
    assert.equal(runtime.routeByHost.get('users.test'), users);
    assert.match(
      runtime.explain(),
      /route "gh": path prefix \/gh\/ \(stripped\).*→ https:\/\/api\.github\.com\/v3/,
    );
  });
});
