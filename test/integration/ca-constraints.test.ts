/**
 * A name-constrained interception CA: the extension is in the certificate (read by openssl), a
 * real verifier (openssl verify) accepts its leaf for an intercepted host and rejects one for any
 * other, hosts outside the constraints are found, and both `sidecache check-config` and the start
 * log warn about them; /metrics tells when the CA expires.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { loadOrCreateCa } from '../../src/tls/ca.js';
import { createLeafIssuer } from '../../src/tls/leaf-certs.js';
import { constraintsFor, outsideConstraints } from '../../src/tls/name-constraints.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { DnsZone } from '../helpers/dns-zone.js';
import { CLI, spawnSidecache } from '../helpers/sidecache.js';

const run = promisify(execFile);
const DAY = 24 * 3600_000;

/** Runs a command; resolves with its exit code and output either way. */
async function exec(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(cmd, args, { timeout: 30_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (err: { code?: number; stdout?: string; stderr?: string }) => ({
      code: typeof err.code === 'number' ? err.code : -1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    }),
  );
}

describe('tls/name-constraints: a CA restricted to the intercept list', () => {
  const base = mkdtempSync(join(tmpdir(), 'sidecache-nc-test-'));
  // check-config resolves the config's names: through a nameserver on loopback.
  let dns: TestDnsServer;
  before(async () => {
    dns = await startDnsServer(
      new DnsZone({ 'ok.test': { A: ['127.0.0.1'] }, 'pay.test': { A: ['127.0.0.1'] } }),
    );
  });
  after(async () => {
    await dns?.stop();
    rmSync(base, { recursive: true, force: true });
  });

  it('puts a critical Name Constraints extension in a new CA, with the validity asked for', async () => {
    const dir = join(base, 'ca1');
    const now = Date.parse('2026-06-01T00:00:00Z');
    const ca = await loadOrCreateCa(
      dir,
      { validityDays: 30, nameConstraints: ['ok.test', '*.Example.com.', '127.0.0.2'] },
      { now: () => now },
    );
    assert.equal(ca.notAfter, now + 30 * DAY);
    assert.deepEqual(ca.constraints, {
      permittedDns: ['ok.test', 'example.com'],
      excludedDns: [],
      permittedIp: ['127.0.0.2/32'],
      excludedIp: [],
    });
    assert.equal(statSync(join(dir, 'ca-key.pem')).mode & 0o777, 0o600);
    const text = await exec('openssl', ['x509', '-in', ca.certPath, '-noout', '-text']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /X509v3 Name Constraints: critical/);
    assert.match(
      text.stdout,
      /Permitted:\s+DNS:ok\.test\s+DNS:example\.com\s+IP:127\.0\.0\.2\/255\.255\.255\.255/,
    );
    // Reloaded from disk, the constraints are read back.
    const again = await loadOrCreateCa(dir, { validityDays: 1, nameConstraints: null });
    assert.equal(again.created, false);
    assert.deepEqual(again.constraints, ca.constraints);
  });

  it('openssl verify accepts its leaf for an intercepted host and rejects one for any other name or address', async () => {
    const dir = join(base, 'ca2');
    const ca = await loadOrCreateCa(dir, { validityDays: 30, nameConstraints: ['ok.test'] });
    assert.deepEqual(ca.constraints?.excludedIp, ['0.0.0.0/0', '::/0']);
    // An issuer without the intercept check, standing for someone holding the CA key.
    const issuer = createLeafIssuer(ca, { validityMs: DAY, cacheEntries: 10 });
    const verify = async (host: string) => {
      const file = join(base, `leaf-${host}.pem`);
      writeFileSync(file, (await issuer.leafFor(host)).certPem);
      return exec('openssl', ['verify', '-CAfile', ca.certPath, file]);
    };
    const ok = await verify('ok.test');
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const sub = await verify('api.ok.test');
    assert.equal(sub.code, 0, sub.stdout + sub.stderr);
    for (const host of ['www.google.com', '127.0.0.1']) {
      const bad = await verify(host);
      assert.notEqual(bad.code, 0, `${host}: ${bad.stdout}`);
      assert.match(bad.stdout + bad.stderr, /(permitted|excluded) subtree violation/, host);
    }
  });

  it('finds the intercept entries a constrained CA does not cover', () => {
    const c = constraintsFor(['ok.test', '*.example.com']);
    assert.deepEqual(
      outsideConstraints(c, [
        'ok.test',
        'API.ok.test.',
        '*.ok.test',
        'example.com',
        'x.example.com',
        'other.test',
        'notok.test',
        '*',
        '127.0.0.1',
        '::1',
      ]),
      ['other.test', 'notok.test', '*', '127.0.0.1', '::1'],
    );
    const ips = constraintsFor(['10.0.0.1']);
    assert.deepEqual(outsideConstraints(ips, ['10.0.0.1', '10.0.0.2', 'ok.test']), ['10.0.0.2', 'ok.test']);
  });

  it('refuses to constrain a CA to "*", writing nothing', async () => {
    const dir = join(base, 'ca-star');
    await assert.rejects(loadOrCreateCa(dir, { validityDays: 30, nameConstraints: ['ok.test', '*'] }), {
      code: 'SC_ERR_CONFIG',
      message: /"\*"/,
    });
    assert.throws(() => readdirSync(dir), { code: 'ENOENT' });
  });

  it('sidecache check-config warns when intercept names a host outside the CA constraints', async () => {
    const dir = join(base, 'ca3');
    await loadOrCreateCa(dir, { validityDays: 30, nameConstraints: ['ok.test'] });
    const cli = (intercept: string[]) =>
      exec(process.execPath, [
        '--import',
        'tsx',
        CLI,
        'check-config',
        '--dns',
        dns.address,
        '--ca-dir',
        dir,
        ...intercept.flatMap((h) => ['--allow', h, '--intercept', h]),
      ]);
    const inside = await cli(['ok.test']);
    assert.equal(inside.code, 0, inside.stderr);
    assert.match(inside.stdout, /interception CA: .*ca\.pem, expires .*Name Constraints: permits ok\.test/);
    assert.doesNotMatch(inside.stderr, /warning/);
    const outside = await cli(['ok.test', 'pay.test']);
    assert.equal(outside.code, 0, outside.stderr);
    assert.match(
      outside.stderr,
      /warning: intercept names pay\.test, outside the Name Constraints of the CA in .*ca\.pem/,
    );
  });

  it('the start log warns about such a host, and /metrics exports the CA expiry', async () => {
    const dir = join(base, 'ca4');
    const ca = await loadOrCreateCa(dir, { validityDays: 45, nameConstraints: ['ok.test'] });
    const sc = await spawnSidecache([
      '--dns',
      dns.address,
      '--ca-dir',
      dir,
      ...['ok.test', 'pay.test'].flatMap((h) => ['--allow', h, '--intercept', h]),
    ]);
    try {
      const warning = sc
        .output()
        .split('\n')
        .find((l) => l.includes('outside the Name Constraints'));
      assert.ok(warning, sc.output());
      const line = JSON.parse(warning) as { level: string | number; msg: string };
      assert.ok(line.level === 40 || line.level === 'warn', warning);
      assert.match(line.msg, /intercept names pay\.test/);
      const metrics = await (await fetch(`${sc.adminUrl}/metrics`)).text();
      const m = /^sidecache_ca_expiry_timestamp_seconds (\d+)$/m.exec(metrics);
      assert.ok(m, 'sidecache_ca_expiry_timestamp_seconds is exported');
      assert.equal(Number(m[1]), Math.floor(ca.notAfter / 1000));
    } finally {
      await sc.stop();
    }
  });
});
