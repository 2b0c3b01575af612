import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { DEFAULT_ROUTE_POLICY } from '../../../src/cache/options.js';
import { DEFAULT_CONFIG_FILE, loadConfig, parseConfig } from '../../../src/config/load.js';
import { compileRuntime } from '../../../src/config/runtime.js';
import { ConfigError } from '../../../src/errors.js';

function issues(input: unknown): string[] {
  try {
    parseConfig(input);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return [...err.issues];
  }
  assert.fail('expected a ConfigError');
}

describe('cache configuration', () => {
  it('defaults: cache on, every route with the default policy', () => {
    const config = parseConfig({ routes: [{ name: 'a', origin: 'https://a.example.com' }] });
    assert.equal(config.cache.enabled, true);
    assert.equal(config.cache.maxSizeBytes, 64 * 1024 * 1024);
    assert.deepEqual(config.routes[0]?.cache, DEFAULT_ROUTE_POLICY);
    const runtime = compileRuntime(config);
    assert.deepEqual(runtime.routes[0]?.cache, DEFAULT_ROUTE_POLICY);
    assert.match(runtime.explain(), /cache: in memory/);
  });

  it('errors for cache keys name the path, like the rest of the config', () => {
    const found = issues({
      cache: { maxSizeBytes: 10, maxEntryBytes: 20, coalesceTimeout: 1 },
      routes: [
        { name: 'a', origin: 'https://a.example.com' },
        {
          name: 'b',
          origin: 'https://b.example.com',
          cache: { ttlMs: -1, keyHeaders: ['bad header'], paths: [{ prefix: 'v1' }] },
        },
        { name: 'c', origin: 'https://c.example.com', cache: { ignoreNoStore: true } },
      ],
    });
    const text = found.join('\n');
    assert.match(
      text,
      /config: cache: unknown key|config: cache\.coalesceTimeout: unknown key \(did you mean "coalesceTimeoutMs"\?\)/,
    );
    assert.match(text, /config: routes\[1\]\.cache\.ttlMs: -1: /);
    assert.match(
      text,
      /config: routes\[1\]\.cache\.keyHeaders\[0\]: "bad header": expected an HTTP field name/,
    );
    assert.match(text, /config: routes\[1\]\.cache\.paths\[0\]\.prefix: "v1": expected an origin path/);
    assert.match(text, /config: routes\[2\]\.cache\.ignoreNoStore: true: ignoreNoStore needs a ttlMs/);
  });

  it('--no-cache and SIDECACHE_CACHE=off turn the cache off; flags win over the environment', () => {
    assert.equal(loadConfig({ env: { SIDECACHE_CACHE: 'off' } }).config.cache.enabled, false);
    assert.equal(loadConfig({ env: { SIDECACHE_CACHE: 'ON' } }).config.cache.enabled, true);
    assert.equal(loadConfig({ env: {}, argv: { cache: false } }).config.cache.enabled, false);
    assert.equal(
      loadConfig({ env: { SIDECACHE_CACHE: 'off' }, argv: { cache: true } }).config.cache.enabled,
      true,
    );
    assert.throws(
      () => loadConfig({ env: { SIDECACHE_CACHE: 'maybe' } }),
      (err: ConfigError) => err.code === 'SC_ERR_CONFIG' && /SIDECACHE_CACHE: "maybe"/.test(err.message),
    );
  });

  it('the commented example routes in config/default.yaml are valid', () => {
    const text = readFileSync(DEFAULT_CONFIG_FILE, 'utf8');
    const block = /# --- example routes[^\n]*\n([\s\S]*?)# --- end of example routes ---/.exec(text)?.[1];
    assert.ok(block, 'example block not found');
    const yaml = block
      .split('\n')
      .map((line) => line.replace(/^#/, ''))
      .join('\n');
    const routes = parse(yaml) as unknown[];
    const config = parseConfig({ routes });
    const names = config.routes.map((r) => r.name);
    assert.deepEqual(names, ['github', 'stripe', 'users']);
    const stripe = config.routes[1]!.cache;
    assert.deepEqual(stripe.keyHeaders, ['stripe-account', 'stripe-version']);
    assert.equal(stripe.ignoreNoStore, false, 'only the catalogue paths ignore no-store');
    assert.equal(stripe.paths[0]?.ignoreNoStore, true);
    assert.match(
      compileRuntime(config).explain(),
      /paths \/v1\/products\*: lifetime 300000 ms, no-store ignored/,
    );
  });
});
