/**
 * The container's memory limit at start, through the real CLI: `serve` refuses a cache that cannot
 * fit beside the process's own needs (exit 2, a message that says what to lower), and
 * `check-config` prints the expected peak RSS and the limit. The limit is a real file named by
 * SIDECACHE_MEMORY_LIMIT_FILE, as cgroup v2's memory.max would be.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'sidecache-memory-limit-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function cli(args: string[], limitText: string) {
  const limit = file(`limit-${limitText}`, `${limitText}\n`);
  return spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, SIDECACHE_MEMORY_LIMIT_FILE: limit, NODE_OPTIONS: '' },
  });
}

test('serve refuses a cache that cannot fit in the container memory limit', { timeout: 60_000 }, () => {
  const config = file('big.yaml', `cache:\n  maxSizeBytes: ${256 * MiB}\n`);
  const r = cli(
    ['serve', '--config', config, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'],
    String(256 * MiB),
  );
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /SC_ERR_CONFIG/);
  assert.match(r.stderr, /expected peak RSS of .* over the container's memory limit of 256 MiB/);
  assert.match(r.stderr, /lower cache\.maxSizeBytes to at most \d+ MiB/);
});

test('check-config prints the expected peak RSS; a share of the limit sizes the cache', {
  timeout: 60_000,
}, () => {
  const config = file('share.yaml', 'cache:\n  maxSizeBytes: "10%"\n');
  const r = cli(['check-config', '--config', config], String(1024 * MiB));
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /memory: expected peak RSS \d+(\.\d)? MiB \(cache\.maxSizeBytes 102\.4 MiB\); container memory limit 1024 MiB .*: fits/,
  );
  const none = cli(
    ['check-config', '--config', file('plain.yaml', `cache:\n  maxSizeBytes: ${32 * MiB}\n`)],
    'max',
  );
  assert.equal(none.status, 0, none.stderr);
  assert.match(none.stdout, /memory: expected peak RSS .*no container memory limit found/);
});
