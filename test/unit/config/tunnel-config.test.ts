import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/load.js';
import { compileRuntime } from '../../../src/config/runtime.js';
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
