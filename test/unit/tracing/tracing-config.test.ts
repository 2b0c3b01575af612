/**
 * Switching tracing on: the config keys and the standard OTEL_* variables, the traces URL, and that
 * nothing outside src/tracing/otel.ts loads an OpenTelemetry package (so with tracing off none is).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig, parseConfig } from '../../../src/config/load.js';
import { tracesUrl } from '../../../src/tracing/index.js';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

function withConfigFile(yaml: string, run: (file: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'sc-tracing-cfg-'));
  try {
    const file = join(dir, 'sc.yaml');
    writeFileSync(file, yaml);
    run(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('tracing config', () => {
  it('is off by default: no endpoint, parent-based ratio 1, no propagation', () => {
    const { tracing, routes } = parseConfig({ routes: [{ name: 'a', origin: 'http://a.example' }] });
    assert.equal(tracing.endpoint, null);
    assert.equal(tracing.sampler, 'parentbased_traceidratio');
    assert.equal(tracing.ratio, 1);
    assert.equal(tracing.propagateUpstream, false);
    assert.deepEqual(tracing.alwaysSample, { errors: false, slowMs: null });
    assert.equal(routes[0]?.tracing.propagateUpstream, undefined);
  });

  it('takes OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER(_ARG) over the file', () => {
    withConfigFile('tracing:\n  endpoint: http://file.example:4318\n  serviceName: from-file\n', (file) => {
      const { config } = loadConfig({
        file,
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
          OTEL_SERVICE_NAME: 'edge',
          OTEL_TRACES_SAMPLER: 'parentbased_always_off',
          OTEL_TRACES_SAMPLER_ARG: '0.25',
        },
      });
      assert.equal(config.tracing.endpoint, 'http://collector:4318');
      assert.equal(config.tracing.serviceName, 'edge');
      assert.equal(config.tracing.sampler, 'parentbased_always_off');
      assert.equal(config.tracing.ratio, 0.25);
      const traces = loadConfig({
        file,
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:4318/v1/traces',
        },
      }).config;
      assert.equal(
        traces.tracing.endpoint,
        'http://traces:4318/v1/traces',
        'the traces-specific variable wins',
      );
    });
  });

  it('refuses an unknown sampler and a ratio outside 0..1, naming the variable', () => {
    withConfigFile('{}\n', (file) => {
      assert.throws(
        () => loadConfig({ file, env: { OTEL_TRACES_SAMPLER: 'jaeger_remote' } }),
        /OTEL_TRACES_SAMPLER/,
      );
      assert.throws(
        () => loadConfig({ file, env: { OTEL_TRACES_SAMPLER_ARG: '2' } }),
        /OTEL_TRACES_SAMPLER_ARG/,
      );
    });
  });

  it('the traces URL: /v1/traces added to a base, kept when present', () => {
    assert.equal(tracesUrl('http://collector:4318'), 'http://collector:4318/v1/traces');
    assert.equal(tracesUrl('http://collector:4318/'), 'http://collector:4318/v1/traces');
    assert.equal(tracesUrl('http://gw.example/otlp'), 'http://gw.example/otlp/v1/traces');
    assert.equal(tracesUrl('http://collector:4318/v1/traces'), 'http://collector:4318/v1/traces');
  });

  it('only src/tracing/otel.ts imports @opentelemetry, and it is imported only dynamically', () => {
    const files = readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    const importers: string[] = [];
    const staticOtel: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(SRC, f), 'utf8');
      if (/from '@opentelemetry\//.test(text)) importers.push(relative(SRC, join(SRC, f)));
      if (/from '\.\/otel\.js'|from '\.\.\/tracing\/otel\.js'/.test(text)) staticOtel.push(f);
    }
    assert.deepEqual(importers, [join('tracing', 'otel.ts')]);
    assert.deepEqual(staticOtel, []);
    assert.match(readFileSync(join(SRC, 'tracing/index.ts'), 'utf8'), /await import\('\.\/otel\.js'\)/);
  });
});
