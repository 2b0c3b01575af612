/** `promtool check metrics` (Prometheus's own linter) on the real /metrics after some traffic. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { send } from '../../helpers/client.js';
import { startOrigin } from '../../helpers/origin.js';
import { startTestSidecache } from '../../helpers/sidecache.js';
import { requireTool } from '../../helpers/system-tool.js';

test('promtool check metrics accepts /metrics after traffic of every kind', async (t) => {
  const promtool = requireTool(
    t,
    ['/usr/bin/promtool', '/usr/local/bin/promtool'],
    'apt-get install -y prometheus',
  );
  if (promtool === null) return;
  const origin = await startOrigin((req, res) => {
    res.writeHead(req.url === '/missing' ? 404 : 200).end('ok');
  });
  const sc = await startTestSidecache({ routes: [{ name: 'api', origin: origin.url }] });
  t.after(async () => {
    await sc.close();
    await origin.close();
  });
  for (const path of ['/api/a', '/api/a', '/api/missing', '/nowhere/x']) await send(sc.url, path);
  sc.instance.metrics.observeDnsLookup({
    host: 'api.example',
    result: 'hit',
    mode: 'system',
    durationMs: 0.1,
    savedMs: 4,
  });
  const text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
  assert.match(text, /sidecache_saved_seconds_total/);
  const result = spawnSync(promtool, ['check', 'metrics'], {
    input: text,
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(result.status, 0, `promtool check metrics:\n${result.stdout}${result.stderr}`);
});
