/**
 * Regression alarms (issue 22): the example Prometheus alert rules pass `promtool test rules` and
 * name only metrics sidecache exports; `sidecache report --check` exits 2 when a route crosses the
 * hit-ratio or p99 threshold it is given, 0 otherwise.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startOrigin } from '../../helpers/origin.js';
import { runCli, startTestSidecache } from '../../helpers/sidecache.js';
import { requireTool } from '../../helpers/system-tool.js';

const DIR = fileURLToPath(new URL('../../../examples/prometheus/', import.meta.url));
const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

function sourceText(dir: string): string {
  let out = '';
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out += e.isDirectory() ? sourceText(p) : e.name.endsWith('.ts') ? readFileSync(p, 'utf8') : '';
  }
  return out;
}

describe('example alert rules', () => {
  it('pass promtool check rules and promtool test rules', (t) => {
    const promtool = requireTool(
      t,
      ['/usr/bin/promtool', '/usr/local/bin/promtool'],
      'apt-get install -y prometheus',
    );
    if (promtool === null) return;
    const check = spawnSync(promtool, ['check', 'rules', 'sidecache-alerts.yaml'], {
      cwd: DIR,
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /4 rules found/);
    const test = spawnSync(promtool, ['test', 'rules', 'sidecache-alerts.test.yaml'], {
      cwd: DIR,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(test.status, 0, test.stdout + test.stderr);
  });

  it('name only metrics sidecache exports', () => {
    const rules = readFileSync(join(DIR, 'sidecache-alerts.yaml'), 'utf8').replace(/^\s*#.*$/gm, '');
    const names = new Set(
      [...rules.matchAll(/\bsidecache_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')),
    );
    assert.ok(names.size >= 4);
    const src = sourceText(SRC);
    for (const n of names) assert.ok(src.includes(`'${n}'`), `${n} is registered in src/`);
  });
});

describe('sidecache report --check', () => {
  it('exits 2 when a route crosses --min-hit-ratio or --max-p99, 0 within them', async () => {
    const origin = await startOrigin(async (_req, res) => {
      await new Promise((r) => setTimeout(r, 30));
      res.writeHead(200, { 'cache-control': 'no-store' }).end('x');
    });
    const sc = await startTestSidecache({ routes: [{ name: 'api', origin: origin.url }] });
    try {
      for (let i = 0; i < 4; i++) await (await fetch(`${sc.url}/api/x`)).text();
      const check = (...flags: string[]) => runCli(['report', '--admin', sc.adminUrl, '--check', ...flags]);
      const low = await check('--min-hit-ratio', '0.5');
      assert.equal(low.code, 2, low.stdout + low.stderr);
      assert.match(low.stdout, /^FAIL api: hit ratio 0\.0%.*hit ratio 0\.0% < 50\.0%/m);
      const slow = await check('--max-p99', '0.01');
      assert.equal(slow.code, 2, slow.stdout + slow.stderr);
      assert.match(slow.stdout, /^FAIL api: .*\(p99 ≤ [\d.]+ ms bucket > 10\.0 ms\)$/m);
      const fine = await check('--min-hit-ratio', '0', '--max-p99', '5');
      assert.equal(fine.code, 0, fine.stdout + fine.stderr);
      assert.match(fine.stdout, /^ok {3}api: hit ratio 0\.0%, p99 ≤ [\d.]+ (ms|s)$/m);
      const missing = await check('--check-route', 'nope');
      assert.equal(missing.code, 2);
      assert.match(missing.stdout, /FAIL nope: no such route/);
    } finally {
      await sc.close();
      await origin.close();
    }
  });
});
