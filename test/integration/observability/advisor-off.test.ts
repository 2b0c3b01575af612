/**
 * `advisor.enabled: false` (or `--no-advisor`): the policy advisor's stage and observer are not in
 * the pipeline, nothing is observed, /advice.json and `sidecache report` say it is off, and
 * `report --suggest-config` refuses. Beside it, the same traffic through an instance with the
 * advisor on (the default) is observed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Advice } from '../../../src/advisor/suggest.js';
import { ReportError, runReport, writeSuggestedConfig } from '../../../src/commands/report.js';
import { loadConfig } from '../../../src/config/load.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';

describe('policy advisor off', () => {
  let origin: TestOrigin;
  let on: TestSidecache | undefined;
  let off: TestSidecache | undefined;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sc-advisor-off-'));
    origin = await startOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":1}');
    });
    const routes = [{ name: 'users', origin: origin.url }];
    on = await startTestSidecache({ routes });
    off = await startTestSidecache({ routes, advisor: { enabled: false } });
    for (const sc of [on, off]) {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${sc.url}/users/users/1`, { signal: AbortSignal.timeout(10_000) });
        assert.equal(res.status, 200);
        assert.equal(await res.text(), '{"id":1}');
      }
    }
  });
  after(async () => {
    await on?.close();
    await off?.close();
    await origin?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('is on by default and observes; off, nothing is observed and /advice.json says so', async () => {
    const seen = on?.instance.advisor?.observations() ?? [];
    assert.deepEqual(
      seen.map((o) => [o.route, o.template, o.calls, o.hashed]),
      [['users', '/users/{}', 3, 3]],
    );
    assert.equal(off?.instance.advisor, null, 'no advisor: no stage, no observer');
    const res = await fetch(`${off?.adminUrl}/advice.json`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    const advice = (await res.json()) as Advice;
    assert.equal(advice.enabled, false);
    assert.match(advice.why ?? '', /advisor is off \(advisor\.enabled: false/);
    assert.deepEqual([advice.suggestions, advice.notSuggested], [[], []]);
    const onAdvice = (await (await fetch(`${on?.adminUrl}/advice.json`)).json()) as Advice;
    assert.equal(onAdvice.enabled, true);
  });

  test('report says the advisor is off; --suggest-config refuses', async () => {
    const admin = off?.adminUrl ?? '';
    const text = await runReport({ admin, json: false, timeoutMs: 10_000 });
    assert.match(text, /^suggested cache policy: none, the policy advisor is off/m);
    const base = join(dir, 'base.yaml');
    writeFileSync(base, 'routes: []\n');
    await assert.rejects(
      writeSuggestedConfig({ admin, baseFile: base, file: join(dir, 'out.yaml') }),
      (err: unknown) => err instanceof ReportError && /advisor is off/.test(err.message),
    );
  });

  test('--no-advisor sets advisor.enabled false; the default is on', () => {
    const file = join(dir, 'empty.yaml');
    writeFileSync(file, '{}\n');
    assert.equal(loadConfig({ file, argv: { advisor: false } }).config.advisor.enabled, false);
    assert.equal(loadConfig({ file }).config.advisor.enabled, true);
  });
});
