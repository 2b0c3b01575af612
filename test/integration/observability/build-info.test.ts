/** sidecache_build_info on /metrics of the real CLI: the package's version and the running Node.js. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parsePromText, samplesOf } from '../../../src/metrics/prom-text.js';
import { CLI, spawnSidecache } from '../../helpers/sidecache.js';

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

test('sidecache_build_info says which version runs on which Node.js, and --version agrees', async (t) => {
  const sc = await spawnSidecache([]);
  t.after(() => sc.stop());
  const families = parsePromText(await (await fetch(`${sc.adminUrl}/metrics`)).text());
  const family = families.get('sidecache_build_info');
  assert.ok(family, 'sidecache_build_info is exposed');
  assert.equal(family.type, 'gauge');
  const samples = samplesOf(families, 'sidecache_build_info');
  assert.deepEqual(
    samples.map((s) => ({ labels: s.labels, value: s.value })),
    [{ labels: { version: PACKAGE_VERSION, node: process.versions.node }, value: 1 }],
  );
  const version = spawnSync(process.execPath, ['--import', 'tsx', CLI, '--version'], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(version.stdout.trim(), PACKAGE_VERSION);
});
