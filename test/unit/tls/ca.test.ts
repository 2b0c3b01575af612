import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SidecacheError } from '../../../src/errors.js';
import { loadOrCreateCa } from '../../../src/tls/ca.js';
import { createLeafIssuer } from '../../../src/tls/leaf-certs.js';

const DAY = 24 * 3600_000;

/** A leaf issuer that counts what it mints. */
function countingIssuer(
  ca: Awaited<ReturnType<typeof loadOrCreateCa>>,
  opts: { validityMs: number; cacheEntries: number },
  permits?: (host: string) => boolean,
): { issuer: ReturnType<typeof createLeafIssuer>; minted: () => number } {
  let minted = 0;
  const issuer = createLeafIssuer(ca, opts, {
    onIssued: () => {
      minted++;
    },
    ...(permits ? { permits } : {}),
  });
  return { issuer, minted: () => minted };
}

describe('tls/ca: the interception CA', () => {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'sidecache-ca-test-'));
    dirs.push(d);
    return join(d, 'nested', 'ca');
  };
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('is made on first use with a 0600 key in a 0700 directory, and reused as-is afterwards', async () => {
    const dir = tempDir();
    const first = await loadOrCreateCa(dir);
    assert.equal(first.created, true);
    assert.equal(statSync(join(dir, 'ca-key.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const cert = new X509Certificate(first.certPem);
    assert.equal(cert.ca, true);
    assert.match(cert.subject, /sidecache interception CA/);
    const again = await loadOrCreateCa(dir);
    assert.equal(again.created, false);
    assert.equal(again.certPem, first.certPem);
    assert.equal(readFileSync(join(dir, 'ca.pem'), 'utf8'), first.certPem);
  });

  it('refuses a key file that group or others can read', async () => {
    const dir = tempDir();
    await loadOrCreateCa(dir);
    chmodSync(join(dir, 'ca-key.pem'), 0o644);
    await assert.rejects(loadOrCreateCa(dir), (err: unknown) => {
      assert.ok(err instanceof SidecacheError);
      assert.equal(err.code, 'SC_ERR_CONFIG');
      assert.match(err.message, /mode 0644.*chmod 600/);
      return true;
    });
  });

  it('refuses a directory that holds only half a CA', async () => {
    const dir = tempDir();
    await loadOrCreateCa(dir);
    rmSync(join(dir, 'ca-key.pem'));
    await assert.rejects(loadOrCreateCa(dir), { code: 'SC_ERR_CONFIG' });
  });
});

describe('tls/leaf-certs: leaves minted on demand', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-leaf-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('names a DNS host as a DNS SAN and an IP literal as an IP SAN, signed by the CA, short-lived and backdated', async () => {
    const ca = await loadOrCreateCa(dir);
    let now = Date.parse('2026-01-10T12:00:00Z');
    const issuer = createLeafIssuer(ca, { validityMs: 7 * DAY, cacheEntries: 10 }, { now: () => now });
    const caCert = new X509Certificate(ca.certPem);

    const dns = new X509Certificate((await issuer.leafFor('api.github.com')).certPem);
    assert.equal(dns.subjectAltName, 'DNS:api.github.com');
    assert.ok(dns.verify(caCert.publicKey));
    assert.equal(dns.checkIssued(caCert), true);
    assert.equal(dns.ca, false);
    assert.ok(Date.parse(dns.validFrom) < now, 'backdated');
    assert.equal(Date.parse(dns.validTo), now + 7 * DAY);

    const ip = new X509Certificate((await issuer.leafFor('127.0.0.1')).certPem);
    assert.equal(ip.subjectAltName, 'IP Address:127.0.0.1');
    assert.equal(ip.checkIP('127.0.0.1'), '127.0.0.1');
    const v6 = new X509Certificate((await issuer.leafFor('::1')).certPem);
    assert.match(v6.subjectAltName ?? '', /^IP Address:0:0:0:0:0:0:0:1$|^IP Address:::1$/);

    // Cached until a quarter of the validity is left, then minted again.
    const a = await issuer.leafFor('api.github.com');
    assert.equal((await issuer.leafFor('api.github.com')).certPem, a.certPem);
    now += 5 * DAY;
    assert.equal((await issuer.leafFor('api.github.com')).certPem, a.certPem);
    now += 1 * DAY;
    assert.notEqual((await issuer.leafFor('api.github.com')).certPem, a.certPem);
  });

  it('mints once for concurrent requests for one host', async () => {
    const { issuer, minted } = countingIssuer(await loadOrCreateCa(dir), {
      validityMs: DAY,
      cacheEntries: 10,
    });
    const leaves = await Promise.all(Array.from({ length: 5 }, () => issuer.leafFor('api.stripe.com')));
    assert.equal(minted(), 1);
    assert.equal(new Set(leaves.map((l) => l.certPem)).size, 1);
  });
});

describe('tls/leaf-certs: bounded, and only for permitted hosts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-leaf-bound-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps at most cacheEntries leaves, evicting the least recently used', async () => {
    const { issuer, minted } = countingIssuer(await loadOrCreateCa(dir), {
      validityMs: DAY,
      cacheEntries: 2,
    });
    for (const host of ['a.test', 'b.test', 'c.test', 'd.test']) await issuer.leafFor(host);
    assert.equal(issuer.size(), 2);
    assert.equal(minted(), 4);
    await issuer.leafFor('d.test');
    assert.equal(minted(), 4, 'd.test is still cached');
    await issuer.leafFor('a.test');
    assert.equal(minted(), 5, 'a.test was evicted and is minted again');
    assert.equal(issuer.size(), 2);
  });

  it('mints nothing for a host it does not permit, and compares names without case or trailing dot', async () => {
    const { issuer, minted } = countingIssuer(
      await loadOrCreateCa(dir),
      { validityMs: DAY, cacheEntries: 10 },
      (host) => host === 'ok.test',
    );
    await assert.rejects(issuer.leafFor('www.google.com'), { code: 'SC_ERR_EGRESS_DENIED' });
    assert.equal(minted(), 0);
    const leaf = await issuer.leafFor('OK.Test.');
    assert.equal(new X509Certificate(leaf.certPem).subjectAltName, 'DNS:ok.test');
    assert.equal((await issuer.leafFor('ok.test')).certPem, leaf.certPem);
    assert.equal(minted(), 1);
  });
});
