import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseInterceptEntry } from '../../../src/config/intercept-entry.js';
import { loadConfig } from '../../../src/config/load.js';
import { compileInterceptMatcher, compileRuntime } from '../../../src/config/runtime.js';
import { ConfigError } from '../../../src/errors.js';

function yamlFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-config-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, text);
  return file;
}

describe('config: intercept, tunnel and tls', () => {
  it('has defaults: nothing intercepted, port 443, a 5 min idle timeout, CA in .sidecache/ca, 7-day leaves', () => {
    const { config } = loadConfig({ env: {} });
    assert.deepEqual(config.intercept, []);
    assert.deepEqual(config.tunnel, { idleTimeoutMs: 300_000, ports: [443] });
    assert.equal(config.tls.caDir, '.sidecache/ca');
    assert.equal(config.tls.leafValidityMs, 7 * 24 * 3600_000);
    assert.equal(config.tls.handshakeTimeoutMs, 10_000);
  });

  it('intercept hosts add up from file < SIDECACHE_INTERCEPT < --intercept; the CA dir from SIDECACHE_CA_DIR < --ca-dir', () => {
    // Intercepted hosts must be allowed (or route origins): intercept alone admits nothing.
    const file = yamlFile(
      'intercept: [api.github.com]\nallow: [api.github.com, api.stripe.com, localhost]\ntls: { caDir: /from/file }\n',
    );
    const envOnly = loadConfig({
      file,
      env: { SIDECACHE_INTERCEPT: 'api.stripe.com', SIDECACHE_CA_DIR: '/from/env' },
    }).config;
    assert.deepEqual(envOnly.intercept, ['api.github.com', 'api.stripe.com']);
    assert.equal(envOnly.tls.caDir, '/from/env');
    const all = loadConfig({
      file,
      env: { SIDECACHE_INTERCEPT: 'api.stripe.com', SIDECACHE_CA_DIR: '/from/env' },
      argv: { intercept: ['localhost'], caDir: '/from/flag' },
    }).config;
    assert.deepEqual(all.intercept, ['api.github.com', 'api.stripe.com', 'localhost']);
    assert.equal(all.tls.caDir, '/from/flag');
  });

  it('names the bad key and value', () => {
    const file = yamlFile('tunnel: { ports: [0] }\nintercept: ["not a host"]\n');
    try {
      loadConfig({ file, env: {} });
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.ok(err.issues.some((i) => i.includes('tunnel.ports[0]')));
      assert.ok(err.issues.some((i) => i.includes('intercept[0]')));
    }
  });

  it('check-config explains where CONNECT goes', () => {
    const { config } = loadConfig({ env: {}, argv: { allow: ['localhost'], intercept: ['localhost'] } });
    assert.match(
      compileRuntime(config).explain(),
      /CONNECT reaches those hosts on port 443.*decrypted for localhost/,
    );
  });
});

/** The issues of the ConfigError `fn` throws. */
function configErrors(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return [...err.issues];
  }
  assert.fail('expected a ConfigError');
}

describe('intercept entries are HOST[:PORT] (issue 23)', () => {
  it('parses a host, a host with a port, IPv6 with and without brackets, wildcards', () => {
    const parse = (s: string) => parseInterceptEntry(s);
    assert.deepEqual(parse('api.github.com'), {
      pattern: 'api.github.com',
      host: 'api.github.com',
      port: null,
    });
    assert.deepEqual(parse('API.Example.Test.:8443'), {
      pattern: 'API.Example.Test.:8443',
      host: 'api.example.test',
      port: 8443,
    });
    assert.deepEqual(parse('[::1]:443'), { pattern: '[::1]:443', host: '::1', port: 443 });
    assert.deepEqual(parse('[::1]'), { pattern: '[::1]', host: '::1', port: null });
    assert.deepEqual(parse('::1'), { pattern: '::1', host: '::1', port: null });
    assert.deepEqual(parse('127.0.0.2:65535'), {
      pattern: '127.0.0.2:65535',
      host: '127.0.0.2',
      port: 65535,
    });
    assert.deepEqual(parse('*.example.com:443'), {
      pattern: '*.example.com:443',
      host: '*.example.com',
      port: 443,
    });
    assert.deepEqual(parse('*'), { pattern: '*', host: '*', port: null });
  });

  it('refuses hostile entries with a precise reason', () => {
    const cases: [string, RegExp][] = [
      ['host:0', /port 0 is out of range \(1-65535\)/],
      ['host:99999', /port 99999 is out of range \(1-65535\)/],
      ['host:', /the port after ":" is empty/],
      ['host:https', /port "https" is not a number 1-65535/],
      ['host:-1', /port "-1" is not a number/],
      ['host:443:1', /not an IPv6 address/],
      [':443', /the host is empty/],
      ['[::1', /no closing "\]"/],
      ['[::1]443', /unexpected "443" after "\]"/],
      ['[example.com]:443', /brackets hold an IPv6 address only/],
      ['https://api.github.com', /a host, not a URL or path/],
      ['api.github.com/x', /a host, not a URL or path/],
      ['exa mple.com', /expected HOST or HOST:PORT/],
      ['', /the host is empty/],
    ];
    for (const [input, reason] of cases) {
      const result = parseInterceptEntry(input);
      assert.equal(typeof result, 'string', `${input} was accepted`);
      assert.match(String(result), reason, input);
    }
  });

  it('a bad entry is a config error naming --intercept, the index and the reason; the others are not blamed', () => {
    const issues = configErrors(() =>
      loadConfig({ env: {}, argv: { allow: ['host', 'ok.test'], intercept: ['ok.test:8443', 'host:0'] } }),
    );
    assert.equal(issues.length, 1, issues.join('\n'));
    assert.match(issues[0] ?? '', /intercept\[1\].*"host:0": port 0 is out of range \(1-65535\)/);
    const empty = configErrors(() =>
      loadConfig({ env: {}, argv: { allow: ['host'], intercept: ['host:'] } }),
    );
    assert.match(empty[0] ?? '', /intercept\[0\].*the port after ":" is empty/);
  });

  it('an entry with a port needs its host allowed, and the message names the host to allow', () => {
    const issues = configErrors(() =>
      loadConfig({ env: {}, argv: { intercept: ['api.example.test:8443', '[::1]:443'] } }),
    );
    assert.equal(issues.length, 2, issues.join('\n'));
    assert.match(
      issues[0] ?? '',
      /"api\.example\.test:8443" is not a route origin nor in "allow".*add "api\.example\.test" to "allow"/,
    );
    assert.match(
      issues[1] ?? '',
      /"\[::1\]:443" is not a route origin nor in "allow".*add "\[::1\]" to "allow"/,
    );
    const ok = loadConfig({
      env: {},
      argv: { allow: ['api.example.test', '::1'], intercept: ['api.example.test:8443', '[::1]:443'] },
    });
    assert.deepEqual(ok.config.intercept, ['api.example.test:8443', '[::1]:443']);
  });

  it('matches a portless entry on every port and an entry with a port on that port only', () => {
    const match = compileInterceptMatcher(['api.github.com', 'api.example.test:8443', '*.wild.test:9443']);
    assert.equal(match('api.github.com', 443), true);
    assert.equal(match('api.github.com', 8443), true);
    assert.equal(match('api.example.test', 8443), true);
    assert.equal(match('API.EXAMPLE.TEST', 8443), true);
    assert.equal(match('api.example.test', 443), false);
    assert.equal(match('a.wild.test', 9443), true);
    assert.equal(match('a.wild.test', 443), false);
    assert.equal(match('other.test', 443), false);
    assert.equal(match.explicitPort('api.example.test', 8443), true);
    assert.equal(match.explicitPort('api.github.com', 8443), false);
    assert.equal(match.host('api.example.test'), true);
    assert.equal(match.host('other.test'), false);
  });

  it('warms the named hosts no route covers on their port (443 by default), never a wildcard, and says so', () => {
    const { config } = loadConfig({
      env: {},
      argv: {
        allow: ['api.github.com', 'api.example.test', '*.example.com', '::1'],
        intercept: [
          'api.github.com',
          'api.example.test:8443',
          '*.example.com:443',
          '[::1]:9443',
          'covered.test',
        ],
        route: ['c=https://covered.test'],
      },
    });
    const runtime = compileRuntime(config);
    assert.deepEqual(
      runtime.warmOrigins.map((w) => [w.name, w.origin]),
      [
        ['c', 'https://covered.test'],
        ['intercept api.github.com', 'https://api.github.com'],
        ['intercept api.example.test:8443', 'https://api.example.test:8443'],
        ['intercept [::1]:9443', 'https://[::1]:9443'],
      ],
    );
    // Intercepted hosts use the global upstream settings, as their decrypted requests do.
    assert.equal(runtime.warmOrigins[1]?.upstream, config.upstream);
    const text = runtime.explain();
    assert.match(
      text,
      /intercepted hosts no route covers, warmed like a route origin: https:\/\/api\.github\.com, https:\/\/api\.example\.test:8443, https:\/\/\[::1\]:9443\n {2}keep-warm: 2 connection\(s\) opened at start/,
    );
    assert.match(text, /intercepted hosts warmed as route origins: covered\.test/);
    assert.match(text, /not warmed: \*\.example\.com:443 \(a wildcard names no host/);
    assert.match(text, /warm start: route origins and intercepted hosts resolved and connected/);
    assert.match(
      text,
      /CONNECT reaches those hosts on port 443 \(and a route origin's own port, and an intercept entry's own port\)/,
    );
  });

  it('with no routes, the intercepted hosts alone are warmed', () => {
    const { config } = loadConfig({
      env: {},
      argv: { allow: ['api.github.com'], intercept: ['api.github.com'] },
    });
    const text = compileRuntime(config).explain();
    assert.match(text, /no routes configured/);
    assert.match(text, /warm start: intercepted hosts resolved and connected in parallel/);
  });
});
