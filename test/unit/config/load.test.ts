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
    assert.match(issue ?? '', /^--route: "just-a-name" is not NAME=ORIGIN/);
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

describe('errors name their source: the flag, the variable or the file (issue 19)', () => {
  it('a bad --listen names the flag, once (no port-range line after the format line)', () => {
    const issues = configErrors(() => loadConfig({ env: {}, argv: { listen: '127.0.0.1:32081x' } }));
    assert.deepEqual(issues, [
      '--listen: listen: "127.0.0.1:32081x": expected HOST:PORT, e.g. 127.0.0.1:8080',
    ]);
  });

  it('a bad SIDECACHE_LISTEN names the variable', () => {
    const issues = configErrors(() => loadConfig({ env: { SIDECACHE_LISTEN: 'localhost' } }));
    assert.deepEqual(issues, [
      'SIDECACHE_LISTEN: listen: "localhost": expected HOST:PORT, e.g. 127.0.0.1:8080',
    ]);
  });

  it('a port out of range is still one line, naming the source', () => {
    const issues = configErrors(() => loadConfig({ env: { SIDECACHE_ADMIN_LISTEN: '127.0.0.1:70000' } }));
    assert.deepEqual(issues, [
      'SIDECACHE_ADMIN_LISTEN: admin.listen: "127.0.0.1:70000": port must be between 0 and 65535',
    ]);
  });

  it('a bad --route added to a file names the flag and its value, not the file', () => {
    const file = yamlFile(
      'routes:\n  - { name: a, origin: "http://127.0.0.1:1" }\n  - { name: b, origin: "http://127.0.0.1:2" }\n',
    );
    const issues = configErrors(() => loadConfig({ file, env: {}, argv: { route: ['bad=ftp://x'] } }));
    assert.equal(issues.length, 1, issues.join('\n'));
    assert.match(issues[0] ?? '', /^--route "bad=ftp:\/\/x": routes\[2\]\.origin: "ftp:\/\/x"/);
    assert.ok(!(issues[0] ?? '').includes(file));
  });

  it('SIDECACHE_ROUTES, SIDECACHE_DNS_MODE and --dns name themselves; file errors name the file', () => {
    const first = (sources: Parameters<typeof loadConfig>[0]): string =>
      configErrors(() => loadConfig(sources))[0] ?? '';
    assert.match(
      first({ env: { SIDECACHE_ROUTES: 'x=ftp://q' } }),
      /^SIDECACHE_ROUTES "x=ftp:\/\/q": routes\[0\]\.origin:/,
    );
    assert.match(first({ env: { SIDECACHE_DNS_MODE: 'bogus' } }), /^SIDECACHE_DNS_MODE: dns\.mode: "bogus"/);
    assert.match(
      first({ env: {}, argv: { dns: ['127.0.0.1:99999'] } }),
      /^--dns: dns\.servers\[0\]: "127\.0\.0\.1:99999"/,
    );
    const file = yamlFile('log: { level: loud }\n');
    assert.ok(
      first({ file, env: { SIDECACHE_LISTEN: '127.0.0.1:1' } }).startsWith(`${file}: log.level: "loud"`),
    );
  });

  it('a file with several errors puts its name on every line (unknown keys included)', () => {
    const file = yamlFile('lisen: 1\ncache:\n  foo: 1\n  bar: 2\nroutes: 3\n');
    const issues = configErrors(() => loadConfig({ file, env: {} }));
    assert.equal(issues.length, 4, issues.join('\n'));
    for (const issue of issues) {
      assert.ok(issue.startsWith(`${file}: `), issue);
      assert.ok(!issue.includes('\n'), `one problem per line: ${issue}`);
    }
    assert.ok(issues.some((i) => i.startsWith(`${file}: cache.bar: unknown key`)));
  });

  it('a route made by a flag that clashes with the file is named by the flag', () => {
    const file = yamlFile('routes:\n  - { name: a, origin: "http://127.0.0.1:1", prefix: /p/ }\n');
    const issues = configErrors(() =>
      loadConfig({ file, env: {}, argv: { route: ['p=http://127.0.0.1:2'] } }),
    );
    assert.match(
      issues[0] ?? '',
      /^--route "p=http:\/\/127\.0\.0\.1:2": routes\[1\]\.prefix: "\/p\/" is already used by routes\[0\]/,
    );
  });
});

describe('intercept needs an allowed host (issue 19)', () => {
  it('intercepting a host that is neither a route origin nor allowed is a config error naming intercept and the host', () => {
    const issues = configErrors(() => loadConfig({ env: {}, argv: { intercept: ['api.stripe.com'] } }));
    assert.equal(issues.length, 1, issues.join('\n'));
    assert.match(
      issues[0] ?? '',
      /^--intercept "api\.stripe\.com": intercept\[0\]: "api\.stripe\.com" is not a route origin nor in "allow"/,
    );
    const file = yamlFile('intercept: [api.stripe.com]\nallow: [api.github.com]\n');
    const [fromFile] = configErrors(() => loadConfig({ file, env: {} }));
    assert.match(fromFile ?? '', /intercept\[0\]: "api\.stripe\.com" is not a route origin nor in "allow"/);
    assert.ok((fromFile ?? '').startsWith(`${file}: `));
  });

  it('a wildcard intercept needs an allow pattern covering every name it matches', () => {
    const issues = configErrors(() =>
      loadConfig({ env: {}, argv: { intercept: ['*.example.com'], allow: ['a.example.com'] } }),
    );
    assert.match(issues[0] ?? '', /intercept\[0\]: "\*\.example\.com" is not a route origin nor in "allow"/);
    const wide = loadConfig({
      env: {},
      argv: { intercept: ['*.api.example.com'], allow: ['*.example.com'] },
    });
    assert.deepEqual(wide.config.intercept, ['*.api.example.com']);
  });

  it('allowed hosts, route origins and IP literals in an allowed block may be intercepted', () => {
    const { config } = loadConfig({
      env: { SIDECACHE_INTERCEPT: 'api.stripe.com,api.github.com,10.1.2.3' },
      argv: { allow: ['api.stripe.com', '10.0.0.0/8'], route: ['gh=https://api.github.com'] },
    });
    assert.deepEqual(config.intercept, ['api.stripe.com', 'api.github.com', '10.1.2.3']);
    const any = loadConfig({ env: {}, argv: { intercept: ['*'], allow: ['*'] } });
    assert.deepEqual(any.config.intercept, ['*']);
  });
});
