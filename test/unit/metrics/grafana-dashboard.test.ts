/** The example Grafana dashboard is valid and only queries metrics sidecache exports. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { compileRuntime } from '../../../src/config/runtime.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { parsePromText } from '../../../src/metrics/prom-text.js';
import { createTunnelMetrics } from '../../../src/metrics/tunnel-metrics.js';

interface Panel {
  title: string;
  targets: { expr: string }[];
}

test('examples/grafana/sidecache-dashboard.json queries only exported metric families', async () => {
  const file = new URL('../../../examples/grafana/sidecache-dashboard.json', import.meta.url);
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels: Panel[] };
  const runtime = compileRuntime(parseConfig({ routes: [{ name: 'r', origin: 'https://a.example' }] }));
  const metrics = createMetrics(runtime);
  metrics.gaugeFrom('sidecache_in_flight_requests', 'Exchanges being served right now.', () => 0);
  createTunnelMetrics(metrics.registry); // registered by metrics/stage-metrics.ts in a running instance
  const exported = new Set(parsePromText(await metrics.registry.metrics()).keys());
  const titles = dashboard.panels.map((p) => p.title);
  for (const wanted of [
    'Hit ratio',
    'Saved seconds by kind',
    'Request rate by route',
    'Connection reuse by origin',
  ])
    assert.ok(titles.includes(wanted), `panel ${wanted}`);
  assert.ok(titles.some((t) => t.startsWith('Upstream latency')));
  for (const panel of dashboard.panels) {
    assert.ok(panel.targets.length > 0, panel.title);
    for (const { expr } of panel.targets) {
      for (const [name] of expr.matchAll(/sidecache_[a-z_]+/g)) {
        const family = name.replace(/_(bucket|sum|count)$/, '');
        assert.ok(exported.has(family), `${panel.title}: ${name} is exported`);
      }
    }
  }
});
