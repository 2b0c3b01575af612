/**
 * `check-config` resolves the config's names (through the configured DNS: a real nameserver on
 * loopback here, and `dns.hosts`) and says where they lead: route origins resolving privately are
 * reachable, `allow` names and patterns that resolve privately will be refused. A name that does
 * not resolve, or whose nameserver never answers, is said so without failing the check.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { DnsZone } from '../helpers/dns-zone.js';
import { runCli } from '../helpers/sidecache.js';

let dir: string;
let dns: TestDnsServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sc-check-reach-'));
  dns = await startDnsServer(
    new DnsZone({
      'user-service.test': { A: ['10.0.3.7'] },
      'billing.internal': { A: ['10.8.0.9'] },
      'db.test': { A: ['192.168.4.4'] },
      'public.test': { A: ['93.184.215.14'] },
      'blackhole.test': { behaviour: 'silent' },
      'gone.test': { behaviour: 'nxdomain' },
    }),
  );
});
after(async () => {
  await dns.stop();
  await rm(dir, { recursive: true, force: true });
});

async function checkConfig(
  config: object,
): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, stringify(config));
  const started = Date.now();
  const done = await runCli(['check-config', '-c', file]);
  return { ...done, ms: Date.now() - started };
}

describe('check-config resolves what it can', () => {
  it('says a route origin resolving privately is reachable, and which allow entries will be refused', async () => {
    const out = await checkConfig({
      routes: [
        { name: 'users', origin: 'http://user-service.test:8080' },
        { name: 'billing', origin: 'http://billing.internal:80' },
        { name: 'pinned', origin: 'http://pinned.test:80' },
      ],
      allow: ['*.internal', 'db.test', 'public.test', '*.example.com'],
      dns: { mode: 'udp', servers: [dns.address], hosts: { 'pinned.test': '172.18.0.4' } },
    });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^config OK/);
    assert.match(
      out.stdout,
      /route "users": user-service\.test resolves to 10\.0\.3\.7 \(private\): reachable because it is a route origin/,
    );
    assert.match(out.stdout, /route "pinned": pinned\.test resolves to 172\.18\.0\.4 \(private\): reachable/);
    assert.match(
      out.stdout,
      /allow pattern "\*\.internal" matches names that resolve privately \(.*billing\.internal resolves to 10\.8\.0\.9\), so they will be refused unless the address block is allowed/,
    );
    assert.match(
      out.stdout,
      /allow "db\.test": resolves to 192\.168\.4\.4 \(private\), so requests to it will be refused unless the address block is allowed \(add "192\.168\.4\.4\/32" or its block/,
    );
    assert.match(out.stdout, /allow "public\.test": resolves to 93\.184\.215\.14 \(public\)\n/);
    assert.doesNotMatch(out.stdout, /\*\.example\.com" matches/);
  });

  it('an allowed block that holds the address is named instead of a generic hint', async () => {
    const out = await checkConfig({
      allow: ['db.test', '10.0.0.0/8'],
      dns: { mode: 'udp', servers: [dns.address] },
    });
    assert.equal(out.code, 0, out.stderr);
    assert.match(
      out.stdout,
      /allow "db\.test": .*unless the address is in an allowed block \(allowed: 10\.0\.0\.0\/8;/,
    );
  });

  it('names that do not resolve, or get no answer, are reported within a bounded time, and the check passes', async () => {
    const out = await checkConfig({
      routes: [
        { name: 'gone', origin: 'http://gone.test:80' },
        { name: 'slow', origin: 'http://blackhole.test:80' },
      ],
      allow: ['gone.test'],
      // The nameserver's own timeout is far longer than check-config waits.
      dns: { mode: 'udp', servers: [dns.address], timeoutMs: 60_000 },
    });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /route "gone": gone\.test does not resolve here \(ENOTFOUND\)/);
    assert.match(
      out.stdout,
      /route "slow": blackhole\.test does not resolve here \(no answer within 2000 ms\)/,
    );
    assert.match(out.stdout, /allow "gone\.test": does not resolve here \(ENOTFOUND\)/);
    assert.ok(out.ms < 20_000, `check-config took ${out.ms} ms`);
  });
});
