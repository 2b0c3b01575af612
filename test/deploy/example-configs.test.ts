/**
 * The sidecache configs shipped as examples stay valid for the current schema: each goes through
 * `sidecache check-config --config FILE` (examples/configs/) or the same loader and compiler
 * (the compose and Kubernetes configs), so a schema change that breaks one fails here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { compileRuntime } from '../../src/config/runtime.js';
import { CLI } from '../helpers/sidecache.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFIGS = join(ROOT, 'examples/configs');

/** check-config through the CLI, with no SIDECACHE_* variables of ours. */
async function checkConfig(file: string): Promise<string> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SIDECACHE_')) env[k] = v;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', CLI, 'check-config', '--config', file], {
    env,
  });
  return stdout;
}

describe('example sidecache configs', () => {
  const files = readdirSync(CONFIGS).filter((f) => f.endsWith('.yaml'));

  it('examples/configs has github, stripe and internal-api', () => {
    assert.deepEqual(files.sort(), ['github.yaml', 'internal-api.yaml', 'stripe.yaml']);
  });

  for (const name of ['github.yaml', 'stripe.yaml', 'internal-api.yaml']) {
    it(`sidecache check-config --config examples/configs/${name}`, async () => {
      const out = await checkConfig(join(CONFIGS, name));
      assert.match(out, /^config OK/);
      assert.match(out, /route "\w+"/);
    });
  }

  for (const file of ['deploy/container.yaml', 'examples/compose/sidecache.yaml']) {
    it(`${file} loads and compiles`, () => {
      const { config } = loadConfig({ file: join(ROOT, file), env: {} });
      assert.ok(compileRuntime(config).explain().length > 0);
    });
  }

  it("the Kubernetes ConfigMap's config.yaml loads and compiles", () => {
    const configMap = parse(readFileSync(join(ROOT, 'examples/kubernetes/configmap.yaml'), 'utf8')) as {
      data: Record<string, string>;
    };
    const text = configMap.data['config.yaml'] as string;
    const dir = mkdtempSync(join(tmpdir(), 'sidecache-cm-'));
    try {
      writeFileSync(join(dir, 'config.yaml'), text);
      const { config } = loadConfig({ file: join(dir, 'config.yaml'), env: {} });
      assert.equal(config.routes.length, 3);
      compileRuntime(config);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
